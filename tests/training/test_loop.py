"""The training loop's arithmetic: gradient accumulation equals one big batch (the short last window included),
token-budget schedules count every epoch's batches, and a run whose weights break keeps its best epoch."""

import math

import pytest
import torch

from lightft.data.batching import TokenizedDataset
from lightft.errors import LightftError, LightftWarning
from lightft.methods.base import TrainingHooks
from lightft.model.forward import Forward
from lightft.runtime import make_accelerator
from lightft.training.loop import Hyper, fit


def tiny_bert():
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    config = BertConfig(vocab_size=100, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=32, max_position_embeddings=64, hidden_dropout_prob=0.0,
                        attention_probs_dropout_prob=0.0, classifier_dropout=0.0)
    return BertForSequenceClassification(config)


def data(n=20, seed=1):
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(3, 30, (n,), generator=g).tolist()
    ids = [torch.randint(1, 100, (k,), generator=g).tolist() for k in lengths]
    return TokenizedDataset(ids, [i % 2 for i in range(n)])


def steady(model):
    return {"accuracy": 0.5, "macro_f1": 0.5, "loss": 0.7}


def run(hp, validate=steady, hooks=None, model=None, rows=20):
    model = model or tiny_bert()
    result = fit(model, data(rows), hp, forward=Forward(pad_token_id=0), validate=validate,
                 accelerator=make_accelerator(torch.device("cpu"), "fp32", hp.grad_accum), quiet=True, hooks=hooks)
    return model, result


def test_accumulated_windows_train_like_one_batch_of_their_rows_including_the_short_last_one():
    # 20 rows: batch 8 gives 8, 8, 4; batch 4 x accumulation 2 gives the same rows as (4+4), (4+4), (4).
    # Before the loss was divided by the window's rows, the last window got half its gradient.
    one = run(Hyper(lr=1e-2, epochs=1, batch_size=8, warmup_ratio=0.0))[1].best_state
    accumulated = run(Hyper(lr=1e-2, epochs=1, batch_size=4, grad_accum=2, warmup_ratio=0.0))[1].best_state
    assert one.keys() == accumulated.keys()
    for name in one:
        torch.testing.assert_close(accumulated[name], one[name], rtol=1e-4, atol=1e-6)


class Counting(TrainingHooks):
    def start(self, total_updates):
        self.total, self.done = total_updates, 0

    def after_update(self, updates):
        self.done = updates


def test_token_budget_schedules_count_every_epochs_batches():
    hooks = Counting()
    run(Hyper(lr=1e-3, epochs=2, max_tokens=32), hooks=hooks, rows=400)  # 284 then 283 batches
    assert hooks.total == hooks.done == 284 + 283  # the schedule ends exactly at the last update (epoch batch counts differ)


def test_validation_loss_gone_nan_keeps_the_best_epoch_and_stops():
    calls = []

    def breaking(model):
        calls.append(1)
        return steady(model) if len(calls) == 1 else {"accuracy": 0.9, "macro_f1": 0.9, "loss": math.nan}

    with pytest.warns(LightftWarning, match=r"training diverged in epoch 2 \(the validation loss is nan\); kept epoch 1"):
        _, result = run(Hyper(lr=1e-3, epochs=4), validate=breaking)
    assert result.best_epoch == 1 and len(result.history) == 2 and result.history[1]["diverged"]


def test_training_loss_gone_nan_after_a_kept_epoch_keeps_it_and_stops():
    """Epoch 1 validated and kept; the first update of epoch 2 breaks the weights and its training loss goes nan.
    The run keeps epoch 1 (as when the validation loss goes nan) instead of failing and losing it."""
    model = tiny_bert()

    class Breaking(TrainingHooks):
        def after_update(self, update):
            if update == 3:  # 20 rows in batches of 16: two updates an epoch
                with torch.no_grad():
                    model.classifier.weight.fill_(math.nan)

    calls = []
    with pytest.warns(LightftWarning, match=r"training diverged in epoch 2 \(the mean training loss became nan by step "
                                            r"4\); kept epoch 1 and stopped\. A lower --lr \(it is 0\.001\) may"):
        _, result = run(Hyper(lr=1e-3, epochs=3), validate=lambda m: calls.append(1) or steady(m), hooks=Breaking(),
                        model=model)
    assert result.best_epoch == 1 and len(calls) == 1
    assert [h.get("diverged", False) for h in result.history] == [False, True]
    assert all(torch.isfinite(t).all() for t in result.best_state.values())


def test_an_interrupt_after_a_kept_epoch_finishes_with_it():
    """Ctrl-C (or SIGTERM) in epoch 2: epoch 1 is the result, not lost; in epoch 1, nothing is kept and it propagates."""
    def interrupting(at):
        class Interrupt(TrainingHooks):
            def after_update(self, update):
                if update == at:
                    raise KeyboardInterrupt

        return Interrupt()

    with pytest.warns(LightftWarning, match=r"interrupted in epoch 2: finishing with epoch 1, the best so far \(testing "
                                            r"and saving it\); interrupt again to stop without saving"):
        _, result = run(Hyper(lr=1e-3, epochs=3), hooks=interrupting(3))  # two updates an epoch
    assert result.interrupted and result.best_epoch == 1 and len(result.history) == 1
    assert result.summary()["interrupted"] is True and result.samples == 20  # epoch 1; the cut batch is not counted
    with pytest.raises(KeyboardInterrupt):
        run(Hyper(lr=1e-3, epochs=3), hooks=interrupting(1))


def test_validation_loss_nan_after_the_first_epoch_is_a_one_line_error():
    with pytest.raises(LightftError, match=r"training diverged: the validation loss became nan .*lower --lr"):
        run(Hyper(lr=1e-3, epochs=2), validate=lambda m: {"accuracy": 1.0, "macro_f1": 1.0, "loss": math.nan})


def test_updates_step_the_torch_optimizer_past_accelerates_wrapper(monkeypatch):
    """The loop steps and zeroes the torch optimizer itself at each update: accelerate's wrapper only adds host
    time per step there (two ``find_spec('lomo_optim')`` walks of sys.path and an ``inspect.signature``,
    bench/loop_overhead.py). With a gradient scaler it would do more, and the wrapper is kept."""
    from types import SimpleNamespace

    from accelerate.optimizer import AcceleratedOptimizer
    from accelerate.utils import DistributedType

    from lightft.training.loop import _bare_optimizer

    def refused(self, *args, **kwargs):
        raise AssertionError("accelerate's optimizer wrapper was called in the step loop")

    monkeypatch.setattr(AcceleratedOptimizer, "step", refused)
    monkeypatch.setattr(AcceleratedOptimizer, "zero_grad", refused)
    before = {n: p.detach().clone() for n, p in tiny_bert().named_parameters()}
    model, result = run(Hyper(lr=1e-2, epochs=1, batch_size=4, grad_accum=2, warmup_ratio=0.0))
    assert result.samples == 20 and any(not torch.equal(p, before[n]) for n, p in model.named_parameters())

    wrapped = SimpleNamespace(optimizer="the torch optimizer")
    plain = SimpleNamespace(scaler=None, distributed_type=DistributedType.NO)
    assert _bare_optimizer(wrapped, plain) == "the torch optimizer"
    assert _bare_optimizer(wrapped, SimpleNamespace(scaler=object(), distributed_type=DistributedType.NO)) is wrapped
    assert _bare_optimizer(wrapped, SimpleNamespace(scaler=None, distributed_type=DistributedType.XLA)) is wrapped
