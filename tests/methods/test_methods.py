"""Every method x architecture on tiny random models: what trains, what stays bit-identical, save/load, merge."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from transformers import AutoConfig, AutoModelForSequenceClassification

from lightft.config import TrainConfig
from lightft.data.labels import LabelMap
from lightft.errors import LightftError
from lightft.methods import METHODS, count_parameters, get_method
from lightft.methods.targets import resolve_targets
from lightft.model.heads import head_module_names

REPO = Path(__file__).resolve().parents[2]
TINY = dict(vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
            max_position_embeddings=64)
ARCHS = {
    "bert": {},
    "roberta": {"pad_token_id": 1},
    "xlm-roberta": {"pad_token_id": 1},
    "distilbert": {"dim": 32, "n_layers": 2, "n_heads": 4, "hidden_dim": 64},
    "deberta-v2": {"pooler_hidden_size": 32, "relative_attention": True, "position_buckets": 8,
                   "pos_att_type": ["p2c", "c2p"]},
    "electra": {"embedding_size": 32},
    "mpnet": {},
    "modernbert": {"global_attn_every_n_layers": 1, "local_attention": 16, "pad_token_id": 0,
                   "bos_token_id": 2, "eos_token_id": 3, "cls_token_id": 2, "sep_token_id": 3},
}
HEADS = {"bert": ["classifier"], "roberta": ["classifier"], "xlm-roberta": ["classifier"],
         "distilbert": ["pre_classifier", "classifier"], "deberta-v2": ["pooler", "classifier"],
         "electra": ["classifier"], "mpnet": ["classifier"], "modernbert": ["head", "classifier"]}
LABELS = LabelMap(("a", "b", "c"))


def tiny_model(arch: str, seed: int = 0):
    config = AutoConfig.for_model(arch, **{**TINY, **ARCHS[arch]}, num_labels=3)
    torch.manual_seed(seed)
    return AutoModelForSequenceClassification.from_config(config).eval()


def batch(seed=1):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, 100, (4, 12), generator=g)
    mask = torch.ones_like(ids)
    mask[0, 8:] = 0
    return {"input_ids": ids, "attention_mask": mask, "labels": torch.tensor([0, 1, 2, 1])}


def logits(model, b):
    with torch.no_grad():
        return model(input_ids=b["input_ids"], attention_mask=b["attention_mask"]).logits


@pytest.mark.parametrize("arch", list(ARCHS))
def test_heads_are_found_structurally(arch):
    assert head_module_names(tiny_model(arch)) == HEADS[arch]


def _base_name(name: str) -> str:
    """Map a peft-wrapped parameter name back to the plain model's name."""
    for prefix in ("base_model.model.",):
        name = name.removeprefix(prefix)
    return name.replace(".base_layer.", ".").replace(".original_module.", ".").replace(".modules_to_save.default.", ".")


@pytest.mark.parametrize("method", list(METHODS))
@pytest.mark.parametrize("arch", list(ARCHS))
def test_one_step_trains_only_the_method_parameters(arch, method, tmp_path):
    cfg = TrainConfig(model="unused", data="unused", method=method, targets="auto")
    m = get_method(method)
    model = m.attach(tiny_model(arch), cfg)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    head = HEADS[arch]
    assert any(_base_name(n).split(".")[0] in head for n in trainable), "head must train"
    model.train()
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    out = model(**batch())
    out.loss.backward()
    opt.step()
    for n, p in model.named_parameters():
        changed = not torch.equal(p.detach(), before[n])
        if n not in trainable:
            assert not changed, f"frozen {n} changed"
    if method == "full":
        assert trainable == set(before)
    if method in ("head",):
        assert all(_base_name(n).split(".")[0] in head for n in trainable)
    if method == "bitfit":
        assert all(n.endswith(".bias") or _base_name(n).split(".")[0] in head for n in trainable)

    # save -> load gives identical logits (merged where the method merges)
    model.eval()
    expected = logits(model, batch(2))
    m.save(model, tmp_path)
    base_dir = tmp_path / "base"
    tiny_model(arch).save_pretrained(base_dir)  # the frozen base the run was trained from (same seed)
    cfg.model = str(base_dir)
    reloaded = m.load(cfg, LABELS, tmp_path).eval()
    torch.testing.assert_close(logits(reloaded, batch(2)), expected, atol=1e-4, rtol=1e-4)
    if m.mergeable:
        assert not any("lora_" in n for n, _ in reloaded.named_parameters()), "merged model keeps no adapter"


def test_lora_r8_on_bert_base_cased_trains_about_0_27_percent():
    config = AutoConfig.from_pretrained(REPO / "bench" / "bert-base-cased.config.json", num_labels=2)
    model = AutoModelForSequenceClassification.from_config(config)
    model = get_method("lora").attach(model, TrainConfig(model="x", data="y", rank=8))
    counts = count_parameters(model)
    share = 100 * counts["trainable"] / counts["total"]
    print(f"LoRA r=8 on BERT-base-cased: {counts['trainable']:,} of {counts['total']:,} trainable = {share:.4f}%")
    # 12 layers x (query, value) x (768x8 + 8x768) + classifier 768x2+2 = 296,450
    assert counts["trainable"] == 12 * 2 * (768 * 8 * 2) + 768 * 2 + 2
    assert share == pytest.approx(0.27, abs=0.01)


def test_unknown_target_lists_candidates():
    model = tiny_model("bert")
    with pytest.raises(LightftError, match=r"--targets 'qkv': no module named 'qkv' in this bert model; candidates "
                                           r"are: dense, key, query, value"):
        resolve_targets(model, "qkv", head_module_names(model))


def test_auto_targets_per_architecture():
    assert resolve_targets(tiny_model("distilbert"), "auto", []) == ["q_lin", "v_lin"]
    assert resolve_targets(tiny_model("mpnet"), "auto", []) == ["q", "v"]
    assert resolve_targets(tiny_model("modernbert"), "auto", []) == ["Wqkv"]


def test_unknown_method():
    with pytest.raises(LightftError, match=r"unknown method 'qlora'; choose one of: head, lora, bitfit, full"):
        get_method("qlora")


def test_lora_adapter_is_standard_peft(tmp_path):
    model = get_method("lora").attach(tiny_model("roberta"), TrainConfig(model="x", data="y"))
    get_method("lora").save(model, tmp_path)
    cfg = json.loads((tmp_path / "adapter_config.json").read_text())
    assert cfg["peft_type"] == "LORA" and "classifier" in cfg["modules_to_save"]
    from safetensors.torch import load_file

    keys = load_file(tmp_path / "adapter_model.safetensors")
    assert any("classifier" in k and "out_proj" in k for k in keys), "RoBERTa head (dense + out_proj) is saved"
