"""Learning-rate sweep used to pick per-method defaults (tuned on SST-2 only; checked on IMDB and TREC).

    PYTHONPATH=src python bench/lr_sweep.py --methods lora,full,head --out sweep.json

Each run: MiniLM-L6, SST-2 (2,000 seeded train rows, the 872-row validation split for selection, 872 test
rows), max length 64, 2 epochs, batch 16, every other flag at its default. Prints validation and test
accuracy per (method, lr).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import lightft  # noqa: E402
from lightft.quickstart import minilm_path  # noqa: E402

GRID = {
    "lora": [2e-4, 5e-4, 1e-3, 2e-3],
    "full": [2e-5, 5e-5, 1e-4],
    "head": [1e-3, 5e-3, 2e-2],
}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "datasets" / "sst2"))
    p.add_argument("--methods", default="lora,full,head")
    p.add_argument("--out")
    args = p.parse_args()
    rows = []
    for method in args.methods.split(","):
        for lr in GRID[method]:
            with tempfile.TemporaryDirectory() as tmp:
                run = lightft.train(model=str(minilm_path()), data=args.data, method=method, lr=lr, epochs=2,
                                    limit_train=2000, limit_eval=872, max_length=64, baseline=False,
                                    output=f"{tmp}/run", quiet=True)
            row = {"method": method, "lr": lr, "validation_accuracy": run.metrics["validation"]["accuracy"],
                   "test_accuracy": run.metrics["eval"]["accuracy"], "train_seconds": run.metrics["train"]["seconds"]}
            rows.append(row)
            print(json.dumps(row), flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
