"""MicroBatcher: requests that queue together are predicted together, grouped by run, each answered with its own
rows; a failure fails only its group."""

import threading
import time

import pytest

from lightft.serving.batcher import MicroBatcher


class Recorder:
    """A predict function that records its calls and can hold the worker until released."""

    def __init__(self, fail_for=()):
        self.calls: list[tuple[str, list[str]]] = []
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()
        self.fail_for = set(fail_for)

    def __call__(self, name, texts):
        self.entered.set()
        self.gate.wait(10)
        self.calls.append((name, list(texts)))
        if name in self.fail_for:
            raise RuntimeError(f"out of memory in {name}")
        return [f"{name}:{t}" for t in texts]


def hold_worker(batcher, predict):
    """Block the worker inside a first request, so that what is submitted next queues up."""
    predict.gate.clear()
    first = batcher.submit("warm", ["x"])
    assert predict.entered.wait(5)
    return first


def test_requests_queued_while_the_model_is_busy_go_in_one_forward_and_each_gets_its_rows():
    predict = Recorder()
    with MicroBatcher(predict, max_batch_size=64, max_wait_ms=0) as batcher:
        first = hold_worker(batcher, predict)
        futures = [batcher.submit("a", [f"t{i}", f"u{i}"]) for i in range(10)]
        predict.gate.set()
        assert first.result(5) == ["warm:x"]
        assert [f.result(5) for f in futures] == [[f"a:t{i}", f"a:u{i}"] for i in range(10)]
    assert predict.calls[1] == ("a", [t for i in range(10) for t in (f"t{i}", f"u{i}")])  # one call, in order
    assert len(predict.calls) == 2
    assert batcher.stats.as_dict() == {"requests": 11, "cancelled": 0, "texts": 21, "batches": 2, "forwards": 2,
                                       "texts_per_forward": 10.5, "busy_seconds": batcher.stats.as_dict()["busy_seconds"]}


def test_a_batch_is_grouped_by_run_and_capped_at_max_batch_size():
    predict = Recorder()
    with MicroBatcher(predict, max_batch_size=4, max_wait_ms=0) as batcher:
        hold_worker(batcher, predict)
        futures = [batcher.submit("ab"[i % 2], [str(i)]) for i in range(8)]
        big = batcher.submit("a", [str(i) for i in range(10)])  # larger than the cap: predicted whole, alone
        predict.gate.set()
        assert [f.result(5) for f in futures] == [[f"{'ab'[i % 2]}:{i}"] for i in range(8)]
        assert len(big.result(5)) == 10
    calls = predict.calls[1:]
    assert calls[:4] == [("a", ["0", "2"]), ("b", ["1", "3"]), ("a", ["4", "6"]), ("b", ["5", "7"])]
    assert calls[4] == ("a", [str(i) for i in range(10)])


def test_the_worker_waits_up_to_max_wait_for_company_when_idle():
    predict = Recorder()
    with MicroBatcher(predict, max_batch_size=64, max_wait_ms=300) as batcher:
        a = batcher.submit("a", ["1"])
        time.sleep(0.05)
        b = batcher.submit("a", ["2"])
        assert a.result(5) == ["a:1"] and b.result(5) == ["a:2"]
    assert predict.calls == [("a", ["1", "2"])]


def test_a_failure_fails_only_its_group_and_the_worker_goes_on():
    predict = Recorder(fail_for={"bad"})
    with MicroBatcher(predict, max_wait_ms=0) as batcher:
        hold_worker(batcher, predict)
        bad, good = batcher.submit("bad", ["1"]), batcher.submit("good", ["2"])
        predict.gate.set()
        with pytest.raises(RuntimeError, match="out of memory in bad"):
            bad.result(5)
        assert good.result(5) == ["good:2"]
        assert batcher.submit("good", ["3"]).result(5) == ["good:3"]


def test_when_a_group_fails_each_request_is_predicted_alone():
    calls = []

    def predict(name, texts):
        calls.append(list(texts))
        if "poison" in texts:
            raise RuntimeError("cannot tokenize")
        return [t.upper() for t in texts]

    gate = threading.Event()
    with MicroBatcher(lambda n, t: (gate.wait(5), predict(n, t))[1], max_wait_ms=0) as batcher:
        first = batcher.submit("a", ["x"])
        time.sleep(0.1)
        good, bad = batcher.submit("a", ["fine"]), batcher.submit("a", ["poison"])
        gate.set()
        assert first.result(5) == ["X"] and good.result(5) == ["FINE"]
        with pytest.raises(RuntimeError, match="cannot tokenize"):
            bad.result(5)
    assert calls[1:] == [["fine", "poison"], ["fine"], ["poison"]]


def test_a_cancelled_request_is_skipped_and_close_finishes_what_is_queued():
    predict = Recorder()
    batcher = MicroBatcher(predict, max_wait_ms=0).start()
    hold_worker(batcher, predict)
    gone, kept = batcher.submit("a", ["gone"]), batcher.submit("a", ["kept"])
    assert gone.cancel()  # the client went away
    predict.gate.set()
    batcher.close()
    assert kept.done() and kept.result() == ["a:kept"]
    assert ("a", ["gone"]) not in predict.calls and ("a", ["kept"]) in predict.calls
    assert batcher.stats.requests == 2 and batcher.stats.cancelled == 1  # "warm" and "kept" ran
    with pytest.raises(RuntimeError, match="not running"):
        batcher.submit("a", ["late"])


def test_a_malformed_result_fails_its_requests_and_the_worker_goes_on():
    calls = []

    def predict(name, texts):  # a bug outside predict's own error handling: None instead of rows
        calls.append(name)
        return None if name == "broken" else [f"{name}:{t}" for t in texts]

    with MicroBatcher(predict, max_wait_ms=0) as batcher:
        with pytest.raises(TypeError):
            batcher.submit("broken", ["a"]).result(5)
        assert batcher.alive
        assert batcher.submit("ok", ["b"]).result(5) == ["ok:b"]


class Fatal(BaseException):
    pass


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")  # the thread dies on purpose
def test_a_dead_worker_fails_what_waits_and_refuses_new_requests():
    from lightft.serving.batcher import WorkerStopped

    predict = Recorder()
    batcher = MicroBatcher(predict, max_wait_ms=0).start()
    predict.gate.clear()
    predict.fail_for = ()
    first = batcher.submit("warm", ["x"])
    assert predict.entered.wait(5)
    queued = batcher.submit("later", ["y"])

    def die(name, texts):
        raise Fatal("killed")

    batcher.predict = die  # the queued request meets it
    predict.gate.set()  # "warm" finishes with the recorder, then the worker dies on "later"
    assert first.result(5) == ["warm:x"]
    with pytest.raises(WorkerStopped, match="the prediction worker stopped: Fatal: killed"):
        queued.result(5)
    batcher._thread.join(5)
    assert not batcher.alive
    with pytest.raises(WorkerStopped, match="worker thread stopped after an error; restart the server"):
        batcher.submit("ok", ["z"])
