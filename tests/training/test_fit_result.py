"""FitResult's rates: after the first step (steady) and over the second half (late, what --compile is judged by)."""

import pytest

from lightft.training.loop import FitResult


def result(**kw):
    base = dict(history=[], best_epoch=1, best_state={}, seconds=100.0, samples=1000, tokens=50_000,
                peak_memory_mb=0.0, loss_curve=[], first_step_seconds=60.0, first_step_samples=10)
    return FitResult(**{**base, **kw})


def test_late_rate_starts_at_the_first_sync_past_half_the_samples():
    r = result(clock=[(200, 70.0), (400, 75.0), (600, 80.0), (800, 90.0)])
    assert r.late_rate() == pytest.approx((1000 - 600) / (100.0 - 80.0))  # 20 samples/s, compilation left out
    assert r.steady_rate() == pytest.approx(990 / 40.0)


def test_late_rate_is_none_without_a_sync_in_the_second_half():
    assert result(clock=[(200, 70.0)]).late_rate() is None
    assert result(clock=[]).late_rate() is None
    assert result().summary()["late_samples_per_second"] is None
