"""CPU threads when other processes compete for the cores.

torch's OpenMP threads spin at the end of every parallel region, waiting for each other. When another busy
process holds one of the cores, a waiting thread spins while the thread it waits for is descheduled, so each
parallel op costs a scheduler tick (about 8 ms) instead of microseconds. On the 2-core development machine, one
other torch process made a small lightft training run 3-23x slower: 12-100 s instead of about 4.4 s
(docs/performance.md, "CPU: sharing the cores"). ``OMP_WAIT_POLICY=PASSIVE`` avoids this, but it must be set
before torch loads and costs about 30% when the machine is free.

``ThreadGovernor`` instead probes the cores every ``PROBE_EVERY_SECONDS`` of training, evaluation or prediction.
It times a small parallel op on torch's threads and on one thread, for at most ``PROBE_SECONDS`` each. Once the
parallel op is more than ``CONTENDED_RATIO`` times slower at ``STRIKES`` probes in a row, the rest of that phase
runs on one thread, with one warning per process. It stays out of the way when the user chose the thread count
(``OMP_NUM_THREADS``), on GPUs, and with one thread.
"""

from __future__ import annotations

import math
import os
import time

import torch

from lightft.errors import warn_user

PROBE_SECONDS = 0.02  # per side; a contended parallel op takes ~8 ms, a free one ~15 us
PROBE_OPS = 200
PROBE_EVERY_SECONDS = 2.0  # about 10 ms per probe: at most 0.5% of the time
CONTENDED_RATIO = 3.0  # free: 2 threads take ~0.65x the single-thread time; contended: 100x and more
STRIKES = 1  # contended probes in a row before switching; 2 missed a steady second torch process in 2 runs of 2
_warned = False  # one warning per process: the baseline evaluation, training and the test evaluation each probe


def _seconds_per_op(threads: int, x: torch.Tensor) -> float:
    torch.set_num_threads(threads)
    x.mul_(1.0)  # warm the team up at this size
    start, n = time.perf_counter(), 0
    while n < PROBE_OPS and time.perf_counter() - start < PROBE_SECONDS:
        x.mul_(1.0)
        n += 1
    return (time.perf_counter() - start) / n


def contended(threads: int) -> bool:
    """True when a parallel op on ``threads`` threads runs far slower than on one: other processes hold cores."""
    before = torch.get_num_threads()
    x = torch.ones(1 << 17)  # above ATen's parallel grain size (32,768 elements), so the op uses the threads
    try:
        parallel = _seconds_per_op(threads, x)
        single = _seconds_per_op(1, x)
    finally:
        torch.set_num_threads(before)
    return parallel > CONTENDED_RATIO * single


class ThreadGovernor:
    """One thread for the rest of a phase (training, an evaluation) once the CPU is found contended (see the module
    docstring); ``restore`` gives the count back when the phase ends."""

    def __init__(self, device: torch.device, work: str = "training"):
        self.work = work  # what goes on with one thread, for the warning
        self.threads = torch.get_num_threads()
        self.active = device.type == "cpu" and self.threads > 1 and "OMP_NUM_THREADS" not in os.environ
        self.reduced = False
        self.last = -math.inf
        self.strikes = 0  # contended probes in a row

    def check(self) -> None:
        """Probe at most every ``PROBE_EVERY_SECONDS`` (call it as often as you like); a contended CPU is sticky:
        scheduling comes in bursts, and a run that went back to all threads on one quiet probe lost more than a
        free machine's second thread gains."""
        if not self.active or self.reduced or time.perf_counter() - self.last < PROBE_EVERY_SECONDS:
            return
        self.last = time.perf_counter()
        self.strikes = self.strikes + 1 if contended(self.threads) else 0
        if self.strikes >= STRIKES:
            global _warned
            torch.set_num_threads(1)
            self.reduced = True
            if _warned:
                return
            _warned = True
            warn_user(f"other processes are using this machine's CPU cores: {self.work} goes on with 1 thread "
                      f"instead of {self.threads} (competing threads made every step many times slower); set "
                      "OMP_NUM_THREADS to choose the count yourself")

    def restore(self) -> None:
        if self.reduced:
            torch.set_num_threads(self.threads)
            self.reduced = False
