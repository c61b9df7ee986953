"""How a batch becomes logits: padded (any model) or padding-free (packed tokens, varlen attention), eager or
compiled."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import torch
import torch._dynamo
from torch import nn

from lightft.data.batching import PackCollator, PadCollator
from lightft.errors import LightftWarning

RECOMPILE_LIMIT = 64  # torch's default (8) would silently fall back to eager after 8 shapes or models


@dataclass(frozen=True)
class Forward:
    """The batch layout and forward pass for one model; train and evaluate share it.

    ``compile`` is None (eager), a ``torch.compile`` mode (``"default"`` for ``--compile``, ``"reduce-overhead"``
    for CUDA graphs, ``"max-autotune"``...) or a backend object (tests count compilations with one). Compiled,
    shapes are dynamic from the first call (``dynamic=True``), so a new length does not recompile, and batches are
    padded to ``bucket_length`` sizes (capped at ``max_length``) so the model sees few distinct shapes: one CUDA
    graph is recorded per shape under ``reduce-overhead``."""

    pad_token_id: int
    unpadded: bool = False
    position_offset: int = 0
    compile: Any = None
    max_length: int | None = None

    @classmethod
    def choose(cls, model: nn.Module, pad_token_id: int, mode: str, device: torch.device, *,
               compile: bool | str = False, max_length: int | None = None) -> "Forward":
        """``mode`` auto: padding-free on CUDA where the architecture and method support it; on: always
        (CPU uses a slow reference attention, for tests); off: never. ``compile``: True (torch.compile's default
        mode) or a mode name."""
        from lightft.errors import LightftError
        from lightft.model.unpadded import (disable_unpadded, enable_unpadded, position_offset_for,
                                            supports_unpadded, varlen_available)

        prompt_method = getattr(getattr(model, "active_peft_config", None), "is_prompt_learning", False)
        able = supports_unpadded(model) and not prompt_method
        if mode == "on" and not able:
            raise LightftError(
                f"--unpadded on is not supported for {type(model).__name__}"
                f"{' with a soft-prompt method' if prompt_method else ''}; use --unpadded auto or off"
            )
        use = mode == "on" or (mode == "auto" and able and device.type == "cuda" and varlen_available())
        if use:
            enable_unpadded(model)  # here, not inside a compiled region
        else:
            disable_unpadded(model)  # a model that ran packed before (the baseline) goes back to stock attention
            if device.type == "cpu":  # CPU dropout masks from aten::bernoulli_ cost up to half a step
                from lightft.model.fast_dropout import install_fast_dropout

                install_fast_dropout(model, attention=not prompt_method)
        return cls(pad_token_id, use, position_offset_for(model) if use else 0,
                   ("default" if compile is True else compile) or None, max_length)

    def collator(self):
        bucket = self.compile is not None
        if self.unpadded:
            return PackCollator(self.pad_token_id, self.position_offset, bucket=bucket, cap=self.max_length)
        return PadCollator(self.pad_token_id, bucket=bucket, cap=self.max_length)

    def logits(self, model: nn.Module, batch: dict) -> torch.Tensor:
        if self.compile is None:
            return _eager_logits(model, batch, self.unpadded)
        if self.compile in _FAILED:
            return _eager_logits(model, batch, self.unpadded)
        if self.compile == "reduce-overhead":  # CUDA graphs: each call is a new step; outputs are copied by callers
            torch.compiler.cudagraph_mark_step_begin()
        try:
            return _compiled(self.compile)(model, batch, self.unpadded)
        except torch._dynamo.exc.BackendCompilerFailed as exc:  # no C++ compiler, no triton, an inductor bug...
            _FAILED.add(self.compile)  # a run must not die (or lose its training) because compiling failed
            cause = getattr(exc, "inner_exception", None) or exc
            first = str(cause).strip().splitlines()
            warnings.warn(f"--compile failed ({type(cause).__name__}: {first[0] if first else ''}); running without it",
                          LightftWarning, stacklevel=2)
            return _eager_logits(model, batch, self.unpadded)


def _eager_logits(model: nn.Module, batch: dict, unpadded: bool) -> torch.Tensor:
    if unpadded:
        from lightft.model.unpadded import unpadded_logits

        return unpadded_logits(model, batch)
    return model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits


_COMPILED: dict[Any, Any] = {}
_FAILED: set = set()  # modes or backends whose compilation failed in this process: eager from then on


def _compiled(how):
    """One compiled ``_eager_logits`` per mode or backend; dynamo guards on the model, its mode and the shapes."""
    if how not in _COMPILED:
        config = torch._dynamo.config  # the limit was called cache_size_limit before torch 2.7
        limit = "recompile_limit" if hasattr(config, "recompile_limit") else "cache_size_limit"
        setattr(config, limit, max(getattr(config, limit), RECOMPILE_LIMIT))
        options = {"mode": how, "dynamic": True} if isinstance(how, str) else {"backend": how, "dynamic": True}
        _COMPILED[how] = torch.compile(_eager_logits, **options)
    return _COMPILED[how]
