"""lightft side of the speed benchmarks: the same workload through lightft's own loop and inference.

Uses the library's real pieces (method registry, ``fit`` on accelerate, ``Forward`` with padding-free
batches where supported, ``predict_logits``), fed the same token ids as ``bench/reference.py``.
"""

from __future__ import annotations

import time
from typing import Sequence

import torch

from lightft.config import TrainConfig
from lightft.data.batching import TokenizedDataset
from lightft.evaluation import predict_logits
from lightft.methods import count_parameters, get_method
from lightft.model.forward import Forward
from lightft.model.gelu_epilogue import fuse_gelu_epilogue
from lightft.runtime import (make_accelerator, peak_memory_mb, reset_peak_memory, resolve_precision, seed_everything,
                             store_frozen_in_bf16)
from lightft.training import Hyper, fit


def compile_failed(forward: Forward) -> bool:
    """True when ``--compile`` fell back to eager (a benchmark must not report that as a compiled figure)."""
    from lightft.model import compiled

    return forward.compile is not None and forward.compile in compiled._FAILED


def free_memory() -> None:
    """Drop the previous run's tensors so peak-memory figures are this run's alone."""
    import gc

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def lightft_train(model, ids: Sequence[Sequence[int]], labels: Sequence[int], *, method: str, batch_size: int, lr: float,
                  max_steps: int, bf16: bool | None = None, seed: int = 0, lora_dropout: float = 0.1, max_tokens: int | None = None,
                  unpadded: str = "auto", pad_token_id: int = 0, group_by_length: bool = False,
                  compile: bool | str = False, max_length: int | None = None, grad_accum: int = 1) -> dict:
    """Train for exactly ``max_steps`` batches (one epoch over ``max_steps * batch_size`` rows) and measure it.

    ``bf16=None`` takes lightft's own default for the device (``--precision auto``). ``compile``: True or a
    torch.compile mode; its samples/s are then taken over the second half of the steps (``FitResult.late_rate``),
    after compilation, and the time to first step includes the first compile.
    """
    n = max_steps * batch_size if max_tokens is None else len(ids)
    data = TokenizedDataset([list(x) for x in ids[:n]], list(labels[:n]))
    cfg = TrainConfig(model="bench", data="bench", method=method, rank=8, alpha=16, dropout=lora_dropout)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    precision = resolve_precision("auto", device) if bf16 is None else ("bf16" if bf16 else "fp32")
    free_memory()
    reset_peak_memory(device)
    start = time.perf_counter()
    seed_everything(seed)  # the adapter's initialisation, as the reference seeds before get_peft_model
    model = get_method(method).attach(model, cfg).to(device)
    store_frozen_in_bf16(model, precision, device)
    accelerator = make_accelerator(device, precision)
    forward = Forward.choose(model, pad_token_id, unpadded, device, compile=compile, max_length=max_length)
    hp = Hyper(lr=lr, epochs=1, batch_size=batch_size, seed=seed, max_tokens=max_tokens, group_by_length=group_by_length,
               grad_accum=grad_accum)
    result = fit(model, data, hp, forward=forward, validate=lambda m: {"macro_f1": 0.0, "accuracy": 0.0, "loss": 0.0},
                 accelerator=accelerator, quiet=True)
    counts = count_parameters(model)
    curve = result.loss_curve
    rate = result.late_rate() if compile else result.steady_rate()
    return {
        "samples_per_s": rate,
        "tokens_per_s": rate * result.tokens / result.samples if rate else None,  # same window as samples/s
        "late_samples_per_s": result.late_rate(),  # second half of the steps, for eager vs compiled
        "time_to_first_step_s": (time.perf_counter() - start) - result.seconds + result.first_step_seconds,
        "total_s": time.perf_counter() - start,
        "samples": result.samples,
        "peak_memory_mb": peak_memory_mb(device),
        "first_loss": curve[0][1] if curve else None,
        "last_loss": curve[-1][1] if curve else None,
        "loss_curve": curve,
        "unpadded": forward.unpadded,
        "compile": forward.compile,
        "compile_failed": compile_failed(forward),
        "precision": precision,
        "trainable_params": counts["trainable"],
        "total_params": counts["total"],
    }


def lightft_infer(model, ids: Sequence[Sequence[int]], *, batch_size: int, bf16: bool | None = None,
                  method_merged: bool = True, unpadded: str = "auto", pad_token_id: int = 0,
                  max_tokens: int | None = None, compile: bool | str = False, max_length: int | None = None) -> dict:
    """Inference the way ``lightft predict`` runs it (merged weights, length-sorted, padding-free on CUDA).

    ``bf16=None`` takes lightft's default for the device (``--precision auto``). With ``compile`` the warm-up
    pass covers every batch shape (it runs the whole set once), and its time is reported as ``warmup_s``."""
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    bf16 = resolve_precision("auto", device) == "bf16" if bf16 is None else bf16
    model = model.to(device).eval().requires_grad_(False)
    # as `lightft predict` holds it (predict.Predictor): linear weights in bf16, the rest fp32, under autocast, and
    # on a GPU the feed-forward GEMM + GELU as one call (model/gelu_epilogue.py).
    # (GPU runs 1-5 cast the whole model to bf16 instead.)
    store_frozen_in_bf16(model, "bf16" if bf16 else "fp32", device)
    fuse_gelu_epilogue(model, device)
    forward = Forward.choose(model, pad_token_id, unpadded, device, compile=compile, max_length=max_length)
    seqs = [list(x) for x in ids]
    kw = dict(forward=forward, batch_size=batch_size, device=device, precision="bf16" if bf16 else "fp32", quiet=True,
              max_tokens=max_tokens)
    warm = time.perf_counter()
    predict_logits(model, seqs if compile else seqs[: batch_size * 2], **kw)  # warm-up
    if device.type == "cuda":
        torch.cuda.synchronize()
    warmup_s = time.perf_counter() - warm
    reset_peak_memory(device)
    start = time.perf_counter()
    logits = predict_logits(model, seqs, **kw)
    seconds = time.perf_counter() - start
    return {"samples_per_s": len(seqs) / seconds, "tokens_per_s": sum(map(len, seqs)) / seconds,
            "peak_memory_mb": peak_memory_mb(device), "logits": torch.from_numpy(logits), "unpadded": forward.unpadded,
            "warmup_s": warmup_s, "compile_failed": compile_failed(forward)}
