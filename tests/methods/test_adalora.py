"""AdaLoRA's rank allocation against best-epoch selection: what is tested and saved is what was validated."""

from __future__ import annotations

import warnings

import torch
from transformers import BertConfig, BertForSequenceClassification

from lightft.config import TrainConfig
from lightft.methods import get_method
from lightft.model.forward import Forward
from lightft.runtime import make_accelerator
from lightft.training.loop import Hyper, fit, restore
from tests.training.test_loop import data


def _live(pattern) -> int:
    return sum(sum(bool(x) for x in mask) for mask in pattern.values())


def test_an_early_best_epoch_keeps_its_own_rank_pattern():
    """156 updates: peft masks every deltaT = 2 updates, so an epoch can end with masked singular values grown back;
    what is tested and saved must still be exactly the weights epoch 1 was validated with."""
    torch.manual_seed(0)
    model = BertForSequenceClassification(BertConfig(vocab_size=100, hidden_size=16, num_hidden_layers=1,
                                                     num_attention_heads=2, intermediate_size=16,
                                                     max_position_embeddings=64))
    method = get_method("adalora")
    model = method.attach(model, TrainConfig.from_dict(dict(model="x", data="x", method="adalora", rank=4)).validate())
    hooks = method.training_hooks(model)
    scores = iter([0.9, 0.5, 0.4, 0.3])  # epoch 1 (39 updates: between two masks), still pruning, is the best
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = fit(model, data(156), Hyper(lr=5e-2, epochs=4, batch_size=4), forward=Forward(pad_token_id=0),
                     validate=lambda m: {"accuracy": 0.5, "macro_f1": next(scores), "loss": 0.7},
                     accelerator=make_accelerator(torch.device("cpu"), "fp32", 1), quiet=True, hooks=hooks)
    final = hooks.config.rank_pattern
    assert hooks.config.deltaT == 2 and result.best_epoch == 1
    assert _live(final) == 4 * len(final)  # pruned to the target by the last epoch
    assert _live(hooks.best_pattern) > _live(final)
    restore(model, result.best_state)
    validated = {n: p.detach().clone() for n, p in model.named_parameters() if "lora_E" in n}
    hooks.finish(model)
    # neither the last epoch's pattern nor the best epoch's last mask may zero a value epoch 1 was validated with
    assert all(torch.equal(validated[n], p) for n, p in model.named_parameters() if "lora_E" in n)
    assert hooks.config.rank_pattern == hooks.best_pattern  # and peft saves that epoch's ranks


def test_a_saved_adalora_run_loads_without_peft_rank_pattern_noise(fast):
    """peft 0.21 warns on every load that the saved rank_pattern's keys (lora_E parameters) match no module; the
    warning is filtered where lightft loads adapters, and nothing else is."""
    import lightft

    run = lightft.train(method="adalora", **{**fast, "epochs": 1, "lr": 1e-2})
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        got = lightft.load(run.path, precision="fp32").predict(["good film"])
    assert got[0]["label"] in ("neg", "pos")
