"""``--compile``: torch.compile over the model's repeated layers (the default) or over the whole forward.

By default each repeated block (BERT's ``BertLayer``s, RoBERTa's, ...: the children of the model's largest
``nn.ModuleList`` of one class) is compiled with ``nn.Module.compile``. Identical layers share one compiled graph,
so compiling costs about one layer: for MiniLM-L6 LoRA on the 2-core dev CPU the first two steps took 30 s against
140 s when the whole model is compiled (docs/performance.md). ``model:<mode>`` compiles the whole logits function
instead, which also removes the Python work between layers (embeddings, head, peft wrappers) at the price of
compiling all of it. Shapes are dynamic from the first call (``dynamic=True``), so a new length does not
recompile and batches keep their own sizes. Only for CUDA graphs (``reduce-overhead``, one recording per shape) do the
collators pad batches to bucket sizes (``uses_cuda_graphs``), so that they see few shapes: for the other modes the
padding bought nothing and cost its share of every step (docs/performance.md, run 7).

Measured on an H100 (docs/performance.md): training with token-budget batches pays with the layers compiled
(``--compile``), inference with the whole model (``predict --compile``); the compiled layers predicted slower than
eager. CUDA graphs per layer (``reduce-overhead``) are refused for training: run 4 died there with a segmentation
fault (torch 2.11). The whole model in CUDA graphs (``model:reduce-overhead``) trained on an H100 in run 15, with the
losses of the same step without graphs: a 32-row BERT-base LoRA step took 18.3 ms against 51.8 ms without graphs
in the same run (28.0 ms in run 14), since without graphs that step waits on the host (GPU 24–38% busy). Those
graphs hand out the gradients of the last backward in memory that the next replay overwrites, so a step that
accumulates gradients owns them first (``training/loop.py``, ``own_gradients``): with accumulation, stock CUDA-graph
trees otherwise lose all but the last micro-batch's gradient (pytorch/pytorch#96693). Under several processes they
are refused for training: DDP with them has never run.

Module floats (dropout ``p``, LoRA ``scaling``, LayerNorm ``eps``) are specialised as constants while tracing
(``specialize_float``). Torch's default turns each into a 0-d float64 CPU tensor input, and inductor then
builds a C++ kernel to cast it: on a CUDA machine that meant a C++ toolchain check and compile inside the first
step, about half of the 85 s cold time to first step on an H200 (docs/performance.md, run 8).

A spec is ``[layers:|model:]<mode>`` with a torch.compile mode (``default``, ``reduce-overhead``,
``max-autotune-no-cudagraphs``, ...). ``BACKEND`` is inductor; tests swap in a counting backend. If compilation
fails (no C++ compiler, no triton, an inductor bug) the run goes on eagerly after one ``LightftWarning``.
"""

from __future__ import annotations

import contextlib
import warnings
from typing import Any, Callable

import torch
import torch._dynamo
from torch import nn

from lightft.errors import LightftWarning

BACKEND: Any = "inductor"
RECOMPILE_LIMIT = 64  # torch's default (8) would silently fall back to eager after 8 shapes or models
_WHOLE: dict[tuple[Any, str], Callable] = {}  # (backend, mode) -> compiled logits function
_FAILED: set[str] = set()  # specs whose compilation failed in this process: eager from then on
CUDA_GRAPH_MODES = ("reduce-overhead", "max-autotune")


def parse(spec: str) -> tuple[str, str]:
    """``"reduce-overhead"`` -> ``("layers", "reduce-overhead")``; ``"model:default"`` -> ``("model", "default")``."""
    scope, _, mode = spec.rpartition(":")
    scope = scope or "layers"
    if scope not in ("layers", "model"):
        raise ValueError(f"compile spec {spec!r}: the scope must be layers or model")
    return scope, mode or "default"


def uses_cuda_graphs(spec: str | None) -> bool:
    """Whether ``spec`` replays CUDA graphs (on a GPU; inductor leaves them out on a CPU). Batches are then padded to
    bucket sizes, since a graph is recorded per shape; the other modes compile with dynamic shapes and take any
    size. Gradients are then owned before they accumulate (``own_gradients``)."""
    return spec is not None and parse(spec)[1] in CUDA_GRAPH_MODES


def own_gradients(parameters: list[nn.Parameter]) -> None:
    """Give each parameter a gradient of its own where it holds a CUDA-graph output: autograd keeps the first
    micro-batch's incoming gradient as ``.grad`` itself, and the next replay writes over that memory. All copies are
    made before any is assigned, so none lands in memory a dropped output just freed."""
    held = [p for p in parameters if p.grad is not None]
    copies = [p.grad.clone() for p in held]
    for p, grad in zip(held, copies):
        p.grad = grad


def repeated_blocks(model: nn.Module) -> list[nn.Module]:
    """The model's repeated layers: the members of its largest ``nn.ModuleList`` whose members share one class."""
    best: list[nn.Module] = []
    for module in model.modules():
        if isinstance(module, nn.ModuleList) and len(module) > len(best) and len({type(m) for m in module}) == 1:
            best = list(module)
    return best


def _options(mode: str) -> dict:
    _raise_recompile_limit()
    if BACKEND == "inductor":
        return {"mode": mode, "dynamic": True}
    return {"backend": BACKEND, "dynamic": True}


def _processes() -> int:
    distributed = torch.distributed
    return distributed.get_world_size() if distributed.is_available() and distributed.is_initialized() else 1


def _raise_recompile_limit() -> None:
    config = torch._dynamo.config  # the limit was called cache_size_limit before torch 2.7
    name = "recompile_limit" if hasattr(config, "recompile_limit") else "cache_size_limit"
    setattr(config, name, max(getattr(config, name), RECOMPILE_LIMIT))


def _specialized_floats():
    """Trace module floats as constants (see the module docstring); a no-op where torch lacks the switch."""
    config = torch._dynamo.config
    if not hasattr(config, "specialize_float"):
        return contextlib.nullcontext()
    return config.patch(specialize_float=True)


def _compile_layers(model: nn.Module, spec: str, mode: str) -> None:
    if getattr(model, "_lightft_compiled", None) == spec:
        return
    blocks = repeated_blocks(model)
    if not blocks:
        raise ValueError(f"{type(model).__name__} has no repeated layers to compile; use a model: compile spec")
    for block in blocks:
        block.compile(**_options(mode))
    model._lightft_compiled = spec


def _uncompile_layers(model: nn.Module) -> None:
    for block in repeated_blocks(model):
        block._compiled_call_impl = None
    model._lightft_compiled = None


def compiled_logits(spec: str, eager: Callable, model: nn.Module, batch: dict, unpadded: bool) -> torch.Tensor:
    """``eager(model, batch, unpadded)`` under the compile ``spec``; eager after a failed compilation."""
    if spec in _FAILED:
        return eager(model, batch, unpadded)
    scope, mode = parse(spec)
    if mode in CUDA_GRAPH_MODES:
        if torch.is_grad_enabled() and scope == "layers":
            raise ValueError(f"compile spec {spec!r} records CUDA graphs per layer, which lightft allows for "
                             "inference only: training with them died with a segmentation fault on an H100 (torch "
                             f"2.11, docs/performance.md); train with model:{mode} (the whole model) or default")
        if torch.is_grad_enabled() and _processes() > 1:
            raise ValueError(f"compile spec {spec!r} uses CUDA graphs, which lightft has not trained with under "
                             f"several processes (found {_processes()}); train data-parallel with model:default")
        torch.compiler.cudagraph_mark_step_begin()  # each call is a new step; callers copy what they keep
    try:
        with _specialized_floats():
            if scope == "layers":
                _compile_layers(model, spec, mode)
                return eager(model, batch, unpadded)
            key = (BACKEND, mode)
            if key not in _WHOLE:
                _WHOLE[key] = torch.compile(eager, **_options(mode))
            return _WHOLE[key](model, batch, unpadded)
    except torch._dynamo.exc.BackendCompilerFailed as exc:
        _FAILED.add(spec)  # a run must not die (or lose its training) because compiling failed
        if scope == "layers":
            _uncompile_layers(model)
        cause = getattr(exc, "inner_exception", None) or exc
        first = str(cause).strip().splitlines()
        warnings.warn(f"--compile failed ({type(cause).__name__}: {first[0] if first else ''}); running without it",
                      LightftWarning, stacklevel=3)
        return eager(model, batch, unpadded)
