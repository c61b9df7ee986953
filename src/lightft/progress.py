"""Progress bars: one place that decides whether they show (``--quiet``, or ``TQDM_DISABLE`` in the environment) and
how: a redrawn bar on a terminal, plain timestamped-by-rate lines in a log file."""

from __future__ import annotations

import os
import sys
import time

from tqdm.auto import tqdm

LOG_INTERVAL = 30.0  # seconds between lines when stderr is a file or pipe (a log), not a terminal


class LogLines(tqdm):
    """A bar for a log file: one plain line per ``LOG_INTERVAL`` seconds, and one at the end, instead of the
    carriage-return frames a redrawn bar leaves in a file (``lightft train ... 2> train.log``)."""

    _written_at = 0.0
    _written_n: float | None = None

    def display(self, msg=None, pos=None):
        if msg is not None:  # '' clears the bar on a terminal: nothing to clear in a log
            return False
        now = time.monotonic()
        if self._written_n is None or (now - self._written_at >= LOG_INTERVAL and self.n != self._written_n):
            self._write()
        return True

    def close(self):
        if not self.disable and self.n != self._written_n:
            self._write()  # where it ended
        super().close()

    def _write(self) -> None:
        self._written_at, self._written_n = time.monotonic(), self.n
        self.fp.write(str(self).strip() + "\n")
        self.fp.flush()


def bar(total: int, desc: str, *, quiet: bool, unit: str = "text") -> tqdm:
    """A transient bar over ``total`` items; hidden when ``quiet`` or when ``TQDM_DISABLE`` is set (not "0")."""
    hidden = quiet or os.environ.get("TQDM_DISABLE", "") not in ("", "0")
    widget = any(c.__module__ == "tqdm.notebook" for c in tqdm.__mro__)  # tqdm.auto in Jupyter: leave it be
    to_log = not widget and not _is_terminal(sys.stderr)
    if to_log and not hidden:
        return LogLines(total=total, desc=desc, unit=unit, disable=False, leave=False, ascii=True, file=sys.stderr)
    return tqdm(total=total, desc=desc, unit=unit, disable=hidden, leave=False)


def _is_terminal(stream) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
