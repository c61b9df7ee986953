"""Micro-batching: requests that arrive together are predicted together, by one worker thread.

Each request (a run's name and its texts) waits in a queue. The worker takes the first one, then whatever else
arrives within ``max_wait_ms`` (nothing is waited for once ``max_batch_size`` texts are in hand), groups the texts
by run and predicts each group in one call: under load, requests that queued while the model was busy go together
without any waiting. The model is only ever touched from this thread (activating one run's adapter on a shared
base is not thread-safe), and a failure fails only the requests of the group it happened in.
"""

from __future__ import annotations

import queue
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Callable, Sequence

_STOP = object()


@dataclass
class _Request:
    name: str
    texts: Sequence[str]
    future: Future = field(default_factory=Future)


@dataclass
class BatchStats:
    """Counts since the batcher started: ``texts / forwards`` is the mean micro-batch size."""

    requests: int = 0
    texts: int = 0
    batches: int = 0  # what the worker took from the queue at once
    forwards: int = 0  # predict calls: one per run within a batch
    busy_seconds: float = 0.0

    def as_dict(self) -> dict:
        return {"requests": self.requests, "texts": self.texts, "batches": self.batches, "forwards": self.forwards,
                "texts_per_forward": round(self.texts / self.forwards, 2) if self.forwards else 0.0,
                "busy_seconds": round(self.busy_seconds, 3)}


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

    def submit(self, name: str, texts: Sequence[str]) -> Future:
        if self._thread is None:
            raise RuntimeError("the micro-batcher is not running; call start() first")
        request = _Request(name, list(texts))
        self._queue.put(request)
        return request.future

    def _work(self) -> None:
        while True:
            first = self._queue.get()
            if first is _STOP:
                return
            batch, stop = self._gather(first)
            self._run(batch)
            if stop:
                return

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
        for request in batch:
            if request.future.set_running_or_notify_cancel():  # a cancelled request (client gone) is skipped
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
        self.stats.requests += len(batch)
        self.stats.texts += sum(len(r.texts) for r in batch)
        self.stats.batches += 1
        self.stats.busy_seconds += time.perf_counter() - start
