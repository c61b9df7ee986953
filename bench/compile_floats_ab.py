"""``--compile`` with and without lightft's float specialisation, for an A/B of the time to first step.

    PYTHONPATH=src python bench/compile_floats_ab.py off --workload cpu --methods lora --lr 2e-3 --skip-reference --compile default
    PYTHONPATH=src python bench/compile_floats_ab.py on  --workload cpu --methods lora --lr 2e-3 --skip-reference --compile default

The first argument is ``off`` (torch's default: module floats become 0-d float64 graph inputs) or ``on`` (lightft's
``compiled._specialized_floats``); the rest goes to ``bench/train_speed.py``. Give each its own empty
``TORCHINDUCTOR_CACHE_DIR`` for a cold compile (docs/performance.md, runs 8-10).
"""

import contextlib
import runpy
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import lightft.model.compiled as compiled  # noqa: E402

if __name__ == "__main__":
    mode = sys.argv.pop(1)
    if mode not in ("on", "off"):
        raise SystemExit(f"first argument: on or off, got {mode!r}")
    if mode == "off":
        compiled._specialized_floats = contextlib.nullcontext
    print(f"float specialisation {mode.upper()}", flush=True)
    sys.argv[0] = str(ROOT / "bench" / "train_speed.py")
    runpy.run_path(sys.argv[0], run_name="__main__")
