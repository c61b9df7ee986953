"""Unpadded (packed, varlen-attention) logits must equal the padded model's logits and gradients."""

import pytest
import torch

pytest.importorskip("transformers")
peft = pytest.importorskip("peft")
from transformers import AutoConfig, AutoModelForSequenceClassification  # noqa: E402

from lightft.model.unpadded import (  # noqa: E402
    UNPADDED_ARCHITECTURES,
    pack,
    position_offset_for,
    supports_unpadded,
    unpadded_logits,
)

LENGTHS = [7, 1, 13, 4, 10]
VOCAB = 100


def tiny_config(model_type, dropout=0.1):
    if model_type == "distilbert":
        sizes = dict(dim=32, n_layers=2, n_heads=4, hidden_dim=64, dropout=dropout, attention_dropout=dropout,
                     seq_classif_dropout=dropout)
    else:
        sizes = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
                     hidden_dropout_prob=dropout, attention_probs_dropout_prob=dropout)
    return AutoConfig.for_model(model_type, vocab_size=VOCAB, num_labels=3, **sizes)


def tiny_model(model_type, dropout=0.1):
    torch.manual_seed(0)
    return AutoModelForSequenceClassification.from_config(tiny_config(model_type, dropout)).eval()


def random_sequences(pad_token_id, lengths=LENGTHS):
    g = torch.Generator().manual_seed(1)
    # token ids above the pad id: RoBERTa derives padded-path positions from where pad tokens are
    return [torch.randint(pad_token_id + 1, VOCAB, (n,), generator=g).tolist() for n in lengths]


def padded_logits(model, sequences, pad_token_id):
    ids = torch.full((len(sequences), max(map(len, sequences))), pad_token_id)
    mask = torch.zeros_like(ids)
    for i, seq in enumerate(sequences):
        ids[i, : len(seq)] = torch.tensor(seq)
        mask[i, : len(seq)] = 1
    return model(input_ids=ids, attention_mask=mask).logits


def packed_logits(model, sequences, pad_token_id):
    packed = pack(sequences, pad_token_id=pad_token_id, position_offset=position_offset_for(model))
    return unpadded_logits(model, packed)


def lora_bert(**lora_kwargs):
    config = peft.LoraConfig(task_type="SEQ_CLS", r=4, lora_alpha=8, target_modules=["query", "value"], **lora_kwargs)
    model = peft.get_peft_model(tiny_model("bert", dropout=0.0), config)
    for name, param in model.named_parameters():  # LoRA B starts at zero: make the adapter non-trivial
        if "lora_B" in name:
            torch.nn.init.normal_(param, std=0.1)
    return model


def test_pack_layout():
    packed = pack([[5, 6, 7], [8], [9, 10, 0, 0]], pad_token_id=0, position_offset=2)
    assert packed["input_ids"].tolist() == [[5, 6, 7, 8, 9, 10]]
    assert packed["input_ids"].dtype == torch.int64  # what the embeddings take
    assert packed["position_ids"].tolist() == [[2, 3, 4, 2, 2, 3]]
    assert packed["cu_seqlens"].dtype == torch.int32
    assert packed["cu_seqlens"].tolist() == [0, 3, 4, 6]
    assert packed["starts"].tolist() == [0, 3, 4]
    assert packed["max_seqlen"] == 3
    with pytest.raises(ValueError):
        pack([[1, 2], [0, 0]], pad_token_id=0)


def test_bucketed_pack_fills_with_self_contained_padding_segments():
    packed = pack([[5, 6, 7], [8] * 14, [9, 10]], pad_token_id=0, bucket=True, cap=18)
    assert packed["input_ids"].shape == (1, 20)  # 19 real tokens -> bucket 20 (eight sizes per doubling)
    assert packed["max_seqlen"] == 16  # bucket of the longest (14)
    assert packed["starts"].tolist() == [0, 3, 17]  # logits are read from the real sequences only
    assert packed["cu_seqlens"].tolist() == [0, 3, 17, 19, 20]  # one padding segment of 1 token
    assert packed["position_ids"][0, -1].item() == 0
    big = pack([[1] * 60] * 3, pad_token_id=0, bucket=True, cap=64)  # 180 -> 192: 12 padding tokens, one segment
    assert big["input_ids"].shape == (1, 192) and big["cu_seqlens"].tolist()[-2:] == [180, 192]
    assert big["input_ids"][0, 180:].tolist() == [0] * 12  # the padding segment holds pad ids
    many = pack([[1] * 3] * 43, pad_token_id=0, bucket=True, cap=4)  # 129 -> 144: 15 padding tokens in 4+4+4+3
    assert many["max_seqlen"] == 4 and many["cu_seqlens"].tolist()[-5:] == [129, 133, 137, 141, 144]


@pytest.mark.parametrize("model_type", ["bert", "roberta", "distilbert"])
def test_bucketed_pack_gives_the_same_logits_and_grads(model_type):
    model = tiny_model(model_type, dropout=0.0).train()
    pad = model.config.pad_token_id
    seqs = random_sequences(pad)
    offset = position_offset_for(model)
    labels = torch.tensor([0, 1, 2, 1, 0])
    results = []
    for bucket in (False, True):
        model.zero_grad(set_to_none=True)
        logits = unpadded_logits(model, pack(seqs, pad_token_id=pad, position_offset=offset, bucket=bucket, cap=16))
        torch.nn.functional.cross_entropy(logits, labels).backward()
        results.append((logits.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}))
    (plain, plain_grads), (bucketed, bucketed_grads) = results
    torch.testing.assert_close(bucketed, plain, atol=1e-5, rtol=0)
    for name, grad in plain_grads.items():
        torch.testing.assert_close(bucketed_grads[name], grad, atol=1e-5, rtol=1e-4, msg=name)


def test_position_offset_and_support():
    assert position_offset_for(tiny_model("roberta")) == 2  # pad_token_id 1 + 1
    assert position_offset_for(tiny_model("bert")) == 0
    assert supports_unpadded(lora_bert())
    assert not supports_unpadded(AutoModelForSequenceClassification.from_config(
        AutoConfig.for_model("gpt2", n_embd=32, n_layer=1, n_head=4, vocab_size=VOCAB)))


@pytest.mark.parametrize("model_type", sorted(UNPADDED_ARCHITECTURES))
def test_logits_match_padded(model_type):
    model = tiny_model(model_type)
    pad = model.config.pad_token_id
    seqs = random_sequences(pad)
    with torch.no_grad():
        expected = padded_logits(model, seqs, pad)
        got = packed_logits(model, seqs, pad)
        # the switched model still gives the same padded logits (attention falls back to SDPA)
        again = padded_logits(model, seqs, pad)
    assert got.shape == (len(seqs), 3)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)
    torch.testing.assert_close(again, expected, atol=1e-5, rtol=0)


def test_lora_logits_match_padded():
    model = lora_bert().eval()
    seqs = random_sequences(0)
    with torch.no_grad():
        torch.testing.assert_close(packed_logits(model, seqs, 0), padded_logits(model, seqs, 0), atol=1e-5, rtol=0)


def _lora_grads(model, logits_fn, labels):
    model.zero_grad(set_to_none=True)
    torch.nn.functional.cross_entropy(logits_fn(), labels).backward()
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}


@pytest.mark.parametrize("checkpointing", [False, True], ids=["plain", "grad-checkpointing"])
def test_lora_grads_match_padded(checkpointing):
    model = lora_bert()
    if checkpointing:  # recomputation runs in backward: it must stay on the packed attention path
        if hasattr(model, "activation_checkpointing_enable"):  # transformers >= 5.25; the old name warns there
            model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
        else:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model.train()  # dropout is 0 in this config, so train mode is deterministic
    seqs = random_sequences(0)
    labels = torch.tensor([0, 1, 2, 1, 0])
    padded = _lora_grads(model, lambda: padded_logits(model, seqs, 0), labels)
    packed = _lora_grads(model, lambda: packed_logits(model, seqs, 0), labels)
    assert any("lora_A" in n for n in packed) and any("classifier" in n for n in packed)
    for name, grad in padded.items():
        assert grad.abs().sum() > 0, name
        torch.testing.assert_close(packed[name], grad, atol=1e-4, rtol=1e-4, msg=name)


def test_prefix_tuning_after_a_packed_baseline_uses_stock_attention():
    """Found on the H100: the baseline ran packed, then prefix tuning's padded masks hit the switched attention."""
    from transformers import BertConfig, BertForSequenceClassification

    from lightft.config import TrainConfig
    from lightft.methods import get_method
    from lightft.model.forward import Forward
    from lightft.model.unpadded import pack, unpadded_logits

    torch.manual_seed(0)
    model = BertForSequenceClassification(BertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=2,
                                                     num_attention_heads=4, intermediate_size=64)).eval()
    unpadded_logits(model, pack([[2, 5, 6, 3], [2, 7, 3]], pad_token_id=0))  # the packed baseline
    prefix = get_method("prefix").attach(model, TrainConfig(model="x", data="y", method="prefix", max_length=32))
    assert prefix.get_base_model().config._attn_implementation == "lightft_varlen"
    forward = Forward.choose(prefix, 0, "auto", torch.device("cpu"))
    assert not forward.unpadded
    # stock SDPA masks build the prefix's masks (lightft_sdpa, SDPA with cheaper dropout masks, on CPU)
    from lightft.model.forward import fast_dropout_enabled

    assert prefix.get_base_model().config._attn_implementation == ("lightft_sdpa" if fast_dropout_enabled() else "sdpa")
    ids = torch.tensor([[2, 5, 6, 3], [2, 7, 3, 0]])
    logits = forward.logits(prefix, {"input_ids": ids, "attention_mask": (ids != 0).long()})
    assert logits.shape == (2, 2)
