"""Micro-batching: requests that arrive together are predicted together, by one worker thread.

Each request (a run's name and its texts) waits in a queue. The worker takes the first one, then whatever else
arrives within ``max_wait_ms`` (nothing is waited for once ``max_batch_size`` texts are in hand), groups the texts
by run and predicts each group in one call: under load, requests that queued while the model was busy go together
without any waiting. The model is only ever touched from this thread (activating one run's adapter on a shared
base is not thread-safe), and a failure fails only the requests of the group it happened in.
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from concurrent.futures import Future, InvalidStateError
from dataclasses import dataclass, field
from typing import Callable, Sequence

_STOP = object()


class WorkerStopped(RuntimeError):
    """The worker thread is gone (never started, closed, or killed by an error that is not an ``Exception``)."""


@dataclass
class _Request:
    name: str
    texts: Sequence[str]
    future: Future = field(default_factory=Future)


@dataclass
class BatchStats:
    """Counts since the batcher started: ``texts / forwards`` is the mean micro-batch size."""

    requests: int = 0  # predicted (cancelled ones are counted apart)
    cancelled: int = 0  # the client went away while the request queued
    texts: int = 0
    batches: int = 0  # what the worker took from the queue at once
    forwards: int = 0  # predict calls: one per run within a batch
    busy_seconds: float = 0.0

    def as_dict(self) -> dict:
        return {"requests": self.requests, "cancelled": self.cancelled, "texts": self.texts, "batches": self.batches,
                "forwards": self.forwards, "texts_per_forward": round(self.texts / self.forwards, 2) if self.forwards else 0.0,
                "busy_seconds": round(self.busy_seconds, 3)}


def _fail(requests: Sequence[_Request], exc: BaseException) -> None:
    for r in requests:
        with contextlib.suppress(InvalidStateError):  # done meanwhile (a client's cancel, the worker's own _fail)
            r.future.set_exception(exc)


def _raise(exc: Exception):
    raise exc


class MicroBatcher:
    """``submit(name, texts)`` returns a Future of ``predict(name, texts)``'s result, computed in a batch."""

    def __init__(self, predict: Callable[[str, Sequence[str]], list], *, max_batch_size: int = 64,
                 max_wait_ms: float = 2.0):
        self.predict = predict
        self.max_batch_size = max_batch_size
        self.max_wait = max_wait_ms / 1000
        self.stats = BatchStats()
        self._queue: queue.Queue = queue.Queue()
        self._thread: threading.Thread | None = None
        self._dead = False  # set by a dying worker before it empties the queue

    def start(self) -> "MicroBatcher":
        if self._thread is None:
            self._thread = threading.Thread(target=self._work, name="lightft-batcher", daemon=True)
            self._thread.start()
        return self

    def close(self, timeout: float | None = 30) -> None:
        """Finish what is queued, then stop the worker."""
        if self._thread is not None:
            self._queue.put(_STOP)
            self._thread.join(timeout)
            self._thread = None

    def __enter__(self) -> "MicroBatcher":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def alive(self) -> bool:
        """True while the worker thread runs (``/health`` reports it)."""
        return self._thread is not None and self._thread.is_alive()

    def submit(self, name: str, texts: Sequence[str]) -> Future:
        if self._thread is None:
            raise WorkerStopped("the micro-batcher is not running (not started yet, or closed)")
        if self._dead or not self._thread.is_alive():
            raise WorkerStopped("the micro-batcher's worker thread stopped after an error; restart the server")
        request = _Request(name, list(texts))
        self._queue.put(request)
        if self._dead:  # the worker died between the check and the put: its last look at the queue may have missed it
            _fail([request], WorkerStopped("the prediction worker stopped; restart the server"))
        return request.future

    def _work(self) -> None:
        batch: list[_Request] = []
        try:
            while True:
                first = self._queue.get()
                if first is _STOP:
                    return
                batch, stop = self._gather(first)
                try:
                    self._run(batch)
                except Exception as exc:  # outside predict's own handling (a malformed result): these requests
                    _fail(batch, exc)  # fail, the worker goes on
                if stop:
                    return
        except BaseException as exc:  # the thread dies: nobody may wait forever on a request it will never run
            self._dead = True
            _fail(batch, WorkerStopped(f"the prediction worker stopped: {type(exc).__name__}: {exc}"))
            while True:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is not _STOP:
                    _fail([item], WorkerStopped("the prediction worker stopped; restart the server"))
            raise

    def _gather(self, first: _Request) -> tuple[list[_Request], bool]:
        """The first request and those that arrive within max_wait, up to max_batch_size texts."""
        batch, size = [first], len(first.texts)
        deadline = time.monotonic() + self.max_wait
        while size < self.max_batch_size:
            try:  # whatever already queued is taken without waiting
                item = self._queue.get_nowait()
            except queue.Empty:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                try:
                    item = self._queue.get(timeout=remaining)
                except queue.Empty:
                    break
            if item is _STOP:
                return batch, True
            batch.append(item)
            size += len(item.texts)
        return batch, False

    def _run(self, batch: list[_Request]) -> None:
        start = time.perf_counter()
        groups: dict[str, list[_Request]] = {}
        ran = [r for r in batch if r.future.set_running_or_notify_cancel()]  # a cancelled one (client gone) is skipped
        for request in ran:
            groups.setdefault(request.name, []).append(request)
        for name, requests in groups.items():
            texts = [t for r in requests for t in r.texts]
            try:
                rows = self.predict(name, texts)
            except Exception as exc:  # each request alone, so that one cannot fail the others; the worker goes on
                self.stats.forwards += 1
                for r in requests:
                    try:
                        r.future.set_result(self.predict(name, r.texts) if len(requests) > 1 else _raise(exc))
                    except Exception as alone:
                        r.future.set_exception(alone)
                continue
            self.stats.forwards += 1
            at = 0
            for r in requests:
                r.future.set_result(rows[at : at + len(r.texts)])
                at += len(r.texts)
        self.stats.requests += len(ran)
        self.stats.cancelled += len(batch) - len(ran)
        self.stats.texts += sum(len(r.texts) for r in ran)
        self.stats.batches += 1
        self.stats.busy_seconds += time.perf_counter() - start
