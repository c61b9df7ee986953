"""Where and how the math runs: device, precision (bf16 autocast on GPU, fp32 on CPU) and seeding."""

from __future__ import annotations

import contextlib
import os
import random

import numpy as np
import torch


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def resolve_precision(precision: str, device: torch.device) -> str:
    """``auto`` means bf16 on a GPU that supports it, fp32 elsewhere."""
    if precision == "auto":
        return "bf16" if device.type == "cuda" and torch.cuda.is_bf16_supported() else "fp32"
    return precision


def autocast(device: torch.device, precision: str):
    if precision == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def peak_memory_mb(device: torch.device) -> float:
    """Peak accelerator memory since the last reset, or the process's peak RSS on CPU."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def reset_peak_memory(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def cpu_threads() -> int:
    return int(os.environ.get("OMP_NUM_THREADS", torch.get_num_threads()))


def make_accelerator(device: torch.device, precision: str, grad_accum: int = 1):
    """The Accelerator for a run: bf16 autocast or fp32, non-blocking host-to-device batch copies."""
    from accelerate import Accelerator
    from accelerate.utils import DataLoaderConfiguration

    return Accelerator(cpu=device.type == "cpu", mixed_precision="bf16" if precision == "bf16" else "no",
                       gradient_accumulation_steps=grad_accum,
                       dataloader_config=DataLoaderConfiguration(non_blocking=device.type == "cuda"))


def store_frozen_in_bf16(model, precision: str, device: torch.device) -> int:
    """Keep frozen weights in bf16 when training under bf16 autocast on a GPU; return how many were cast.

    Autocast otherwise re-casts every frozen fp32 weight to bf16 at every step (``aten::copy_`` was the
    largest GPU cost in the LoRA profile, docs/performance.md); trainable tensors stay fp32 for AdamW.
    """
    if precision != "bf16" or device.type != "cuda":
        return 0
    cast = 0
    for p in model.parameters():
        if not p.requires_grad and p.dtype == torch.float32:
            p.data = p.data.to(torch.bfloat16)
            cast += 1
    return cast
