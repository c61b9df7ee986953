"""Pausing a run on request: SIGUSR1 to ``lightft train`` (or ``compare``) saves the training state at the next
update (or at the end of the running epoch's validation) and stops with exit status 75, so a cluster job about to be
preempted resumes where it stood when the same command runs again (SLURM: ``#SBATCH --signal=USR1@120``).

The CLI's signal handler only sets the flag (``request``); the training loop reads it where the state is whole
(``training/loop.py``). Ctrl-C and SIGTERM keep their meaning: finish with the best epoch so far."""

from __future__ import annotations

import threading

EXIT_STATUS = 75  # EX_TEMPFAIL: not done; run the same command again
_REQUESTED = threading.Event()


def request(*_signal_handler_args) -> None:
    """Ask the training running in this process to pause (usable as a signal handler)."""
    _REQUESTED.set()


def requested() -> bool:
    return _REQUESTED.is_set()


def clear() -> None:
    _REQUESTED.clear()


class Paused(BaseException):
    """Training stopped on a pause request with its state saved: the same command resumes it. A BaseException, as
    KeyboardInterrupt is, so no ``except Exception`` takes it for a failure, and not a KeyboardInterrupt, which would
    finish the run with its best epoch."""

    def __init__(self, state, message: str | None = None):
        super().__init__(message or f"paused: the training state is saved in {state}; the same command resumes it")
        self.state = state
