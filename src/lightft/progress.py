"""Progress bars: one place that decides whether they show (``--quiet``, or ``TQDM_DISABLE`` in the environment)."""

from __future__ import annotations

import os

from tqdm.auto import tqdm


def bar(total: int, desc: str, *, quiet: bool, unit: str = "text") -> tqdm:
    """A transient bar over ``total`` items; hidden when ``quiet`` or when ``TQDM_DISABLE`` is set (not "0")."""
    hidden = quiet or os.environ.get("TQDM_DISABLE", "") not in ("", "0")
    return tqdm(total=total, desc=desc, unit=unit, disable=hidden, leave=False)
