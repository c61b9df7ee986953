"""Progress bars: redrawn on a terminal, plain lines in a log file, none when quiet."""

from __future__ import annotations

import io

from lightft import progress


def test_a_bar_into_a_log_file_writes_lines_not_carriage_return_frames(monkeypatch):
    log = io.StringIO()  # not a terminal: `lightft train ... 2> train.log`
    monkeypatch.setattr("sys.stderr", log)
    monkeypatch.delenv("TQDM_DISABLE", raising=False)
    clock = iter(range(0, 10_000, 10))  # each look at the clock 10 s later
    monkeypatch.setattr(progress.time, "monotonic", lambda: next(clock))
    with progress.bar(100, "training", quiet=False) as bar:
        for _ in range(100):
            bar.update(1)
            bar.set_postfix(loss="0.5")
    lines = log.getvalue().splitlines(True)
    assert "\r" not in log.getvalue() and all(line.endswith("\n") for line in lines)
    assert lines[0].startswith("training:   0%|") and lines[-1].startswith("training: 100%|##########| 100/100")
    assert 20 <= len(lines) <= 60  # one line every LOG_INTERVAL (30 s), not one per update


def test_a_quiet_bar_or_tqdm_disable_writes_nothing(monkeypatch):
    log = io.StringIO()
    monkeypatch.setattr("sys.stderr", log)
    monkeypatch.delenv("TQDM_DISABLE", raising=False)
    with progress.bar(3, "x", quiet=True) as bar:
        bar.update(3)
    monkeypatch.setenv("TQDM_DISABLE", "1")
    with progress.bar(3, "x", quiet=False) as bar:
        bar.update(3)
    assert log.getvalue() == ""
