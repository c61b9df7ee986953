"""Batched, length-sorted inference over token-id lists, with results back in input order."""

from __future__ import annotations

import time
from typing import Sequence

import numpy as np
import torch
from torch import nn

from lightft import progress
from lightft.data.batching import eval_batches
from lightft.evaluation.metrics import classification_metrics
from lightft.model.forward import Forward
from lightft.runtime import autocast
from lightft.threads import ThreadGovernor


@torch.inference_mode()
def predict_logits(model: nn.Module, input_ids: list[list[int]], *, forward: Forward, batch_size: int,
                   device: torch.device, precision: str = "fp32", quiet: bool = False, desc: str = "evaluating",
                   max_tokens: int | None = None, probe_threads: bool = True) -> np.ndarray:
    """Logits for every sequence, shape (n, num_labels), float32, in input order. ``probe_threads=False`` skips the
    ThreadGovernor's probe (about 40 ms at the first batch), as a server's many small micro-batches must."""
    was_training = model.training
    model.eval()
    collate = forward.collator()
    batches = eval_batches([len(x) for x in input_ids], batch_size, max_tokens, collate.width)
    out: list[torch.Tensor] = [None] * len(batches)  # type: ignore[list-item]
    order: list[int] = []
    governor = ThreadGovernor(device if probe_threads else torch.device("meta"), work="evaluation")  # one CPU
    # thread while other processes hold the cores (a governor for another device than the CPU does nothing)
    try:
        with progress.bar(len(input_ids), desc, quiet=quiet) as bar:
            for b, rows in enumerate(batches):
                governor.check()  # a probe every PROBE_EVERY_SECONDS at most
                batch = collate([{"input_ids": input_ids[i], "index": i} for i in rows])
                if device.type == "cuda":  # pinned + non-blocking: the host does not wait for the previous batch
                    batch = {k: v.pin_memory().to(device, non_blocking=True) if torch.is_tensor(v) else v
                             for k, v in batch.items()}
                with autocast(device, precision):
                    logits = forward.logits(model, batch)
                out[b] = logits.to(torch.float32, copy=True)  # a CUDA-graph output is overwritten by the next call
                order += rows
                bar.update(len(rows))
    finally:
        governor.restore()
        model.train(was_training)
    if not out:
        return np.zeros((0, 0), dtype=np.float32)
    stacked = torch.cat(out).cpu().numpy()  # one device->host copy for the whole split
    result = np.empty_like(stacked)
    result[np.asarray(order)] = stacked
    return result


def evaluate_split(model: nn.Module, input_ids: list[list[int]], labels: Sequence[int], names: Sequence[str], **kwargs) -> dict:
    """Metrics for one split, plus its wall time and throughput."""
    start = time.perf_counter()
    logits = predict_logits(model, input_ids, **kwargs)
    seconds = time.perf_counter() - start
    metrics = classification_metrics(logits, labels, names)
    metrics["seconds"] = round(seconds, 3)
    metrics["samples_per_second"] = round(len(input_ids) / seconds, 2) if seconds > 0 else None
    return metrics
