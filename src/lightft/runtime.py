"""Where and how the math runs: device, precision (bf16 autocast on GPUs and on CPUs with native bf16 matmuls,
fp32 elsewhere) and seeding."""

from __future__ import annotations

import contextlib
import os
import random
from pathlib import Path

import numpy as np
import torch


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)


def default_device() -> torch.device:
    """The GPU if there is one (under ``accelerate launch``, this process's: ``cuda:LOCAL_RANK``), else the CPU."""
    if not torch.cuda.is_available():
        return torch.device("cpu")
    return torch.device(f"cuda:{os.environ.get('LOCAL_RANK', 0)}" if process_count() > 1 else "cuda")


def process_count() -> int:
    """How many processes train together: ``accelerate launch`` and ``torchrun`` set WORLD_SIZE; 1 otherwise."""
    try:
        return max(1, int(os.environ.get("WORLD_SIZE", "1")))
    except ValueError:
        return 1


def process_rank() -> int:
    """This process's place among them (0: the main process, the only one that writes)."""
    try:
        return int(os.environ.get("RANK", "0")) if process_count() > 1 else 0
    except ValueError:
        return 0


def broadcast_from_main(value):
    """The main process's ``value`` in every process (a picklable object; the process group starts here if it has
    not yet)."""
    if process_count() == 1:
        return value
    from accelerate import PartialState
    from accelerate.utils import broadcast_object_list

    PartialState(cpu=default_device().type == "cpu")
    return broadcast_object_list([value], from_process=0)[0]


def gather_from_all(value) -> list:
    """Every process's ``value`` (picklable), in rank order, in every process (the process group starts here if it
    has not yet)."""
    if process_count() == 1:
        return [value]
    import torch.distributed as dist
    from accelerate import PartialState

    PartialState(cpu=default_device().type == "cpu")
    values: list = [None] * dist.get_world_size()
    dist.all_gather_object(values, value)
    return values


def cpu_has_native_bf16() -> bool:
    """True when this CPU multiplies bf16 matrices natively (AMX tiles or AVX512-BF16), so bf16 autocast pays.

    On such CPUs a MiniLM LoRA step takes 604 ms under bf16 autocast against 1,327 ms in fp32
    (``bench/cpu_profile.py``, docs/performance.md); on older ones oneDNN emulates bf16 and autocast only adds casts.
    """
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            flags = next((line.split(":", 1)[1].split() for line in f if line.startswith("flags")), [])
    except OSError:  # not Linux: stay on fp32
        return False
    return "amx_bf16" in flags or "avx512_bf16" in flags


def resolve_precision(precision: str, device: torch.device) -> str:
    """``auto`` means bf16 autocast on a GPU that supports it or a CPU with native bf16 matmuls, fp32 elsewhere.

    ``LIGHTFT_CPU_BF16=0`` keeps CPUs on fp32 under ``auto``.
    """
    if precision == "auto":
        if device.type == "cuda":
            return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
        if device.type == "cpu" and os.environ.get("LIGHTFT_CPU_BF16", "1") != "0" and cpu_has_native_bf16():
            return "bf16"
        return "fp32"
    return precision


def autocast(device: torch.device, precision: str):
    if precision == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def peak_memory_mb(device: torch.device) -> float:
    """Peak accelerator memory since the last reset; on CPU the process's peak resident memory since the last reset
    (Linux's VmHWM), or since the process started where that cannot be reset."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    try:
        status = Path("/proc/self/status").read_text()
        return int(status.split("VmHWM:")[1].split()[0]) / 1024  # KiB
    except (OSError, IndexError, ValueError):
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def reset_peak_memory(device: torch.device) -> None:
    """Start a new peak: two runs in one Python process each report their own."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        return
    try:
        Path("/proc/self/clear_refs").write_text("5")  # Linux: reset the peak resident set size to the current one
    except OSError:
        pass


def cpu_threads() -> int:
    return int(os.environ.get("OMP_NUM_THREADS", torch.get_num_threads()))


def make_accelerator(device: torch.device, precision: str, grad_accum: int = 1):
    """The Accelerator for a run: bf16 autocast or fp32, non-blocking host-to-device batch copies, and no
    torch.compile of its own (lightft compiles only through ``--compile``, ``model/compiled.py``)."""
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState
    from accelerate.utils import DataLoaderConfiguration, DistributedType, DynamoBackend

    mixed = "bf16" if precision == "bf16" else "no"
    state = AcceleratorState._shared_state
    compiling = getattr(state.get("dynamo_plugin"), "backend", DynamoBackend.NO) != DynamoBackend.NO
    if state and (state.get("_mixed_precision") != mixed or compiling) \
            and state.get("distributed_type") == DistributedType.NO:
        # accelerate keeps one process-wide state: it refuses a second precision, and a dynamo backend left by an
        # earlier Trainer(torch_compile=True) would compile the whole model in prepare(). A single process that
        # trains twice (the Python API, a notebook, a benchmark after Trainer) starts from a clean state.
        AcceleratorState._reset_state()
    return Accelerator(cpu=device.type == "cpu", mixed_precision=mixed, dynamo_backend="no",
                       gradient_accumulation_steps=grad_accum,
                       dataloader_config=DataLoaderConfiguration(non_blocking=device.type == "cuda"))


def store_frozen_in_bf16(model, precision: str, device: torch.device) -> int:
    """Keep frozen ``nn.Linear`` weights and biases in bf16 when training under bf16 autocast; return how many
    tensors were cast.

    Autocast otherwise re-casts every frozen fp32 weight to bf16 at every step (``aten::copy_`` was the
    largest GPU cost in the LoRA profile, docs/performance.md, and 7% of a stock bf16 CPU step). Only linear layers
    are touched: autocast runs them in bf16 anyway, so the math is unchanged, while embeddings and norms keep
    their fp32 parameters (a norm mixing a frozen bf16 weight with a trained fp32 bias, as in BitFit, would
    not run). Trainable tensors stay fp32 for AdamW.

    peft adapters are left alone: a frozen part of an adapter (MiCA's B) is saved with it and must keep its
    precision, and DoRA computes its weight norm from the base weight, where bf16 storage changed the magnitude
    gradients by 0.5% (relative) in review.
    """
    if precision != "bf16":
        return 0
    keep = _adapter_modules(model)
    cast = 0
    for module in model.modules():
        if isinstance(module, torch.nn.Linear) and id(module) not in keep:
            for p in (module.weight, module.bias):
                if p is not None and not p.requires_grad and p.dtype == torch.float32:
                    p.data = p.data.to(torch.bfloat16)
                    cast += 1
    return cast


def _adapter_modules(model) -> set[int]:
    """ids of the modules inside peft adapters, and of DoRA's base layers."""
    from peft.tuners.tuners_utils import BaseTunerLayer

    keep: set[int] = set()
    for module in model.modules():
        if not isinstance(module, BaseTunerLayer):
            continue
        for name in module.adapter_layer_names + module.other_param_names:
            part = getattr(module, name, None)
            if isinstance(part, torch.nn.Module):
                keep.update(id(m) for m in part.modules())
        if getattr(module, "lora_magnitude_vector", None):  # DoRA
            keep.update(id(m) for m in module.get_base_layer().modules())
    return keep
