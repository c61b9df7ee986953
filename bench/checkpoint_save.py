"""What a training-state save costs: MiniLM-L6 full fine-tuning's state (trained weights, the kept epoch's weights,
AdamW's two moments) saved three times and read back through ``lightft.training.checkpoint``.

    PYTHONPATH=src python bench/checkpoint_save.py

Prints seconds per save and the state's size on disk. With the default ``--checkpoint-minutes 10`` one save per
10 minutes of training is the whole overhead; LoRA's state is a few hundred kilobytes.
"""

from __future__ import annotations

import pathlib
import tempfile
import time

import torch
from transformers import AutoModelForSequenceClassification

from lightft.quickstart import minilm_path
from lightft.training.checkpoint import Checkpoint, EpochSums, Snapshot, rng_state


def main() -> None:
    model = AutoModelForSequenceClassification.from_pretrained(minilm_path(), num_labels=2)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model(torch.tensor([[101, 2000, 102]])).logits.sum().backward()
    optimizer.step()  # AdamW's moments exist after a step
    weights = {n: p.detach().clone() for n, p in model.named_parameters()}
    kept = {n: p.detach().clone() for n, p in model.named_parameters()}
    snap = Snapshot(state={}, tally={"curve": [], "clock": []}, sums=EpochSums(), model=weights, best=kept,
                    optimizer=optimizer.state_dict(), scheduler={}, hooks=({}, {}), rng=rng_state())
    with tempfile.TemporaryDirectory(dir=".") as folder:
        state = Checkpoint(pathlib.Path(folder) / ".run.checkpoint", 1, config={})
        for i in range(3):
            start = time.perf_counter()
            state.save(snap)
            size = sum(f.stat().st_size for f in state.path.iterdir())
            print(f"save {i + 1}: {time.perf_counter() - start:.2f} s, {size / 1e6:.0f} MB", flush=True)
        start = time.perf_counter()
        state.load()
        print(f"load: {time.perf_counter() - start:.2f} s")


if __name__ == "__main__":
    main()
