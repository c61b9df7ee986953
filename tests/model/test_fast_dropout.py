"""The CPU fast dropout must be dropout: the right drop rate, an unchanged expectation, the same mask in the
backward pass, seeded repeatability, and models that compute what they did before the switch."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lightft.model.fast_dropout import FastDropout, fast_dropout, install_fast_dropout, keep_scale, padded_attention
from tests.methods.test_methods import ARCHS, batch, tiny_model


def test_drop_rate_and_expectation():
    torch.manual_seed(0)
    x = torch.rand(2_000_000) + 0.5
    y = fast_dropout(x, 0.1)
    dropped = (y == 0).float().mean().item()
    assert abs(dropped - 0.1) < 2e-3
    assert keep_scale(0.1) == pytest.approx(1 / (1 - 6554 / 65536))
    torch.testing.assert_close(y[y != 0], x[y != 0] * keep_scale(0.1))
    assert y.mean().item() == pytest.approx(x.mean().item(), rel=3e-3)


def test_backward_uses_the_forward_mask():
    torch.manual_seed(0)
    x = torch.randn(64, 33, requires_grad=True)
    y = fast_dropout(x, 0.3)
    y.backward(torch.ones_like(y))
    expected = (y != 0).float() * keep_scale(0.3)
    torch.testing.assert_close(x.grad, expected)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_same_seed_same_mask_and_dtype_kept(dtype):
    x = torch.randn(5, 7, 11, dtype=dtype)
    torch.manual_seed(3)
    a = fast_dropout(x, 0.2)
    torch.manual_seed(3)
    b = fast_dropout(x, 0.2)
    assert a.dtype == dtype and torch.equal(a, b)


def test_idle_and_edge_probabilities_are_plain_dropout():
    x = torch.randn(10, 10)
    assert torch.equal(fast_dropout(x, 0.5, training=False), x)
    assert torch.equal(fast_dropout(x, 0.0), x)
    assert torch.equal(fast_dropout(x, 1.0), torch.zeros_like(x))


class _Attn(nn.Module):
    is_causal = False  # an encoder layer (transformers' SDPA path reads this)


@pytest.mark.parametrize("mask_kind", ["none", "bool", "float"])
def test_padded_attention_equals_sdpa_when_nothing_is_dropped(mask_kind):
    torch.manual_seed(0)
    q, k, v = (torch.randn(2, 4, 9, 8) for _ in range(3))
    keep = torch.ones(2, 1, 9, 9, dtype=torch.bool)
    keep[0, ..., 6:] = False  # the first row's last three keys are padding
    mask = {"none": None, "bool": keep, "float": torch.zeros(2, 1, 9, 9).masked_fill(~keep, -1e9)}[mask_kind]
    module = _Attn().train()
    # 1e-6 rounds to zero dropped lanes: the fast path runs (module training, dropout > 0) but keeps everything
    out, _ = padded_attention(module, q, k, v, mask, scaling=0.3, dropout=1e-6)
    ref = F.scaled_dot_product_attention(q, k, v, attn_mask=None if mask is None else mask, scale=0.3)
    torch.testing.assert_close(out, ref.transpose(1, 2), rtol=1e-5, atol=1e-5)


def test_padded_attention_drops_attention_probabilities():
    torch.manual_seed(0)
    q, k, v = (torch.randn(2, 4, 9, 8) for _ in range(3))
    module = _Attn().train()
    out, _ = padded_attention(module, q, k, v, None, dropout=0.5)
    ref = F.scaled_dot_product_attention(q, k, v)
    assert not torch.allclose(out, ref.transpose(1, 2))
    module.eval()  # not training (transformers then passes dropout 0): plain SDPA
    out, _ = padded_attention(module, q, k, v, None, dropout=0.0)
    torch.testing.assert_close(out, ref.transpose(1, 2))


@pytest.mark.parametrize("arch", list(ARCHS))
def test_switched_models_keep_weights_and_eval_logits_and_train(arch):
    model = tiny_model(arch)
    b = batch()
    keys = list(model.state_dict())
    with torch.no_grad():
        before = model(input_ids=b["input_ids"], attention_mask=b["attention_mask"]).logits
    switched = install_fast_dropout(model)
    assert switched > 0 and not any(type(m) is nn.Dropout for m in model.modules())
    assert list(model.state_dict()) == keys
    with torch.no_grad():
        after = model(input_ids=b["input_ids"], attention_mask=b["attention_mask"]).logits
    torch.testing.assert_close(after, before)
    model.train()
    out = model(input_ids=b["input_ids"], attention_mask=b["attention_mask"], labels=b["labels"])
    out.loss.backward()
    assert torch.isfinite(out.loss)
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def test_bert_attention_dropout_path_matches_stock_when_nothing_is_dropped():
    from transformers import AutoConfig, AutoModelForSequenceClassification

    config = AutoConfig.for_model("bert", vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                  intermediate_size=64, hidden_dropout_prob=0.0, attention_probs_dropout_prob=1e-6,
                                  num_labels=3)
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_config(config).eval()
    b = batch()
    with torch.no_grad():
        stock = model(input_ids=b["input_ids"], attention_mask=b["attention_mask"]).logits
    install_fast_dropout(model)
    assert model.config._attn_implementation == "lightft_sdpa"
    model.train()  # attention dropout "on" (1e-6 drops nothing): the fast math path with the padding mask
    with torch.no_grad():
        fast = model(input_ids=b["input_ids"], attention_mask=b["attention_mask"]).logits
    torch.testing.assert_close(fast, stock, rtol=1e-5, atol=1e-5)


def test_fast_dropout_module_is_a_dropout():
    m = FastDropout(0.25)
    assert isinstance(m, nn.Dropout) and m.p == 0.25


@pytest.mark.parametrize("env, fast", [(None, True), ("0", False)])
def test_forward_choose_installs_fast_dropout_unless_switched_off(monkeypatch, env, fast):
    from lightft.model.forward import Forward

    if env is None:
        monkeypatch.delenv("LIGHTFT_FAST_DROPOUT", raising=False)
    else:
        monkeypatch.setenv("LIGHTFT_FAST_DROPOUT", env)
    model = tiny_model("bert")
    Forward.choose(model, 0, "auto", torch.device("cpu"))
    assert any(type(m) is FastDropout for m in model.modules()) is fast
    assert any(type(m) is nn.Dropout for m in model.modules()) is not fast
    assert model.config._attn_implementation == ("lightft_sdpa" if fast else "sdpa")
