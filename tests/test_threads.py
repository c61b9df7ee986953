"""The CPU thread governor: one thread while other processes hold the cores, the full count otherwise, never
touching a count the user chose."""

import time

import pytest
import torch

from lightft import threads
from lightft.errors import LightftWarning
from lightft.threads import ThreadGovernor


@pytest.fixture
def two_threads(monkeypatch):
    before = torch.get_num_threads()
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(threads, "_warned", False)
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


def test_one_thread_for_the_rest_of_the_run_once_contended(two_threads, monkeypatch):
    probes = []
    answers = iter([True, False, True, True])
    monkeypatch.setattr(threads, "contended", lambda n: probes.append(n) or next(answers))
    monkeypatch.setattr(threads, "PROBE_EVERY_SECONDS", 0.0)
    monkeypatch.setattr(threads, "STRIKES", 2)
    governor = ThreadGovernor(torch.device("cpu"))
    for _ in range(3):  # contended, free, contended: one busy moment at a time is not enough
        governor.check()
        assert torch.get_num_threads() == 2
    with pytest.warns(LightftWarning, match=r"1 thread instead of 2 .*OMP_NUM_THREADS"):
        governor.check()
    assert torch.get_num_threads() == 1
    governor.check()  # sticky: no more probes, no second warning
    assert probes == [2] * 4 and torch.get_num_threads() == 1
    governor.restore()
    assert torch.get_num_threads() == 2


def test_probes_are_spaced_in_time(two_threads, monkeypatch):
    probes = []
    monkeypatch.setattr(threads, "contended", lambda n: probes.append(n) or False)
    governor = ThreadGovernor(torch.device("cpu"))
    for _ in range(50):
        governor.check()
    assert probes == [2]  # the first check probes; the next is PROBE_EVERY_SECONDS later


@pytest.mark.parametrize("case", ["user set OMP_NUM_THREADS", "cuda", "one thread"])
def test_leaves_the_count_alone(two_threads, monkeypatch, case):
    monkeypatch.setattr(threads, "contended", lambda n: True)
    device = torch.device("cuda" if case == "cuda" else "cpu")
    if case == "user set OMP_NUM_THREADS":
        monkeypatch.setenv("OMP_NUM_THREADS", "2")
    if case == "one thread":
        torch.set_num_threads(1)
    expected = torch.get_num_threads()
    governor = ThreadGovernor(device)
    governor.check()
    assert not governor.active and torch.get_num_threads() == expected


def test_the_probe_is_short_and_keeps_the_thread_count(two_threads):
    started = time.perf_counter()
    assert threads.contended(2) in (True, False)
    assert time.perf_counter() - started < 1.0  # two sides of at most PROBE_SECONDS, plus warm-up ops
    assert torch.get_num_threads() == 2


def test_a_contended_run_trains_on_one_thread_and_gives_the_count_back(two_threads, monkeypatch, fast):
    import lightft

    seen = []
    monkeypatch.setattr(threads, "contended", lambda n: seen.append(torch.get_num_threads()) or True)
    monkeypatch.setattr(threads, "PROBE_EVERY_SECONDS", 0.0)
    with pytest.warns(LightftWarning, match="other processes are using"):
        lightft.train(method="head", **fast)
    assert seen and torch.get_num_threads() == 2  # probed, reduced while training, restored after


def test_a_run_that_raises_still_gives_the_count_back(two_threads, monkeypatch, fast):
    import lightft
    import lightft.training.loop as loop
    from lightft.errors import LightftError

    monkeypatch.setattr(threads, "contended", lambda n: True)
    monkeypatch.setattr(threads, "PROBE_EVERY_SECONDS", 0.0)
    monkeypatch.setattr(loop, "LOG_EVERY", 1)
    monkeypatch.setattr(loop, "_finite", lambda *a, **k: (_ for _ in ()).throw(LightftError("diverged")))
    with pytest.warns(LightftWarning), pytest.raises(LightftError):
        lightft.train(method="head", **fast)
    assert torch.get_num_threads() == 2


def test_contended_evaluation_runs_on_one_thread_and_gives_the_count_back(two_threads, monkeypatch, tiny_model_dir):
    from transformers import AutoModelForSequenceClassification

    from lightft.evaluation import predict_logits
    from lightft.model.forward import Forward

    model = AutoModelForSequenceClassification.from_pretrained(tiny_model_dir).eval()
    ids = [[101, 2000 + i, 2001, 102][: 2 + i % 3] for i in range(24)]
    kw = dict(forward=Forward(pad_token_id=0), batch_size=4, device=torch.device("cpu"), quiet=True)
    monkeypatch.setattr(threads, "contended", lambda n: False)  # whatever else this machine is running
    free = predict_logits(model, ids, **kw)
    seen = []
    monkeypatch.setattr(threads, "contended", lambda n: seen.append(torch.get_num_threads()) or True)
    monkeypatch.setattr(threads, "PROBE_EVERY_SECONDS", 0.0)
    with pytest.warns(LightftWarning, match=r"evaluation goes on with 1 thread instead of 2"):
        contended = predict_logits(model, ids, **kw)
    assert seen == [2] and torch.get_num_threads() == 2  # one probe, then sticky; the count comes back after
    torch.testing.assert_close(torch.from_numpy(contended), torch.from_numpy(free))


def test_one_warning_per_process(two_threads, monkeypatch):
    import warnings

    monkeypatch.setattr(threads, "contended", lambda n: True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for work in ("evaluation", "training", "evaluation"):  # a CLI run: baseline, training, test evaluation
            governor = ThreadGovernor(torch.device("cpu"), work=work)
            governor.check()
            assert torch.get_num_threads() == 1  # each phase still goes to one thread...
            governor.restore()
    assert len([w for w in caught if issubclass(w.category, LightftWarning)]) == 1  # ...but warns once
