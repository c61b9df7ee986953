"""How a batch becomes logits: padded (any model) or padding-free (packed tokens, varlen attention), eager or
compiled."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
from torch import nn

from lightft.data.batching import PackCollator, PadCollator


@dataclass(frozen=True)
class Forward:
    """The batch layout and forward pass for one model; train and evaluate share it.

    ``compile`` is None (eager) or a compile spec (``model/compiled.py``): ``"default"`` for ``--compile`` (the
    repeated layers, torch.compile's default mode), ``"reduce-overhead"`` for CUDA graphs, ``"model:default"`` for
    the whole forward. Compiled with CUDA graphs, batches are padded to ``bucket_length`` sizes (capped at
    ``max_length``); other compile modes take any shape (``compiled.uses_cuda_graphs``)."""

    pad_token_id: int
    unpadded: bool = False
    position_offset: int = 0
    compile: str | None = None
    max_length: int | None = None

    @classmethod
    def choose(cls, model: nn.Module, pad_token_id: int, mode: str, device: torch.device, *,
               compile: bool | str = False, max_length: int | None = None) -> "Forward":
        """``mode`` auto: padding-free on CUDA where the architecture and method support it; on: always
        (CPU uses a slow reference attention, for tests); off: never. ``compile``: True (``"default"``) or a spec."""
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
            if device.type == "cpu" and fast_dropout_enabled():  # aten::bernoulli_ masks cost up to half a step
                from lightft.model.fast_dropout import install_fast_dropout

                # soft-prompt methods too: a baseline evaluation installs it on the model before they attach, and a
                # run's numerics must not depend on whether it measured a baseline (a resumed run skips it)
                install_fast_dropout(model)
        return cls(pad_token_id, use, position_offset_for(model) if use else 0,
                   ("default" if compile is True else compile) or None, max_length)

    def collator(self):
        from lightft.model.compiled import uses_cuda_graphs

        bucket = uses_cuda_graphs(self.compile)
        if self.unpadded:
            return PackCollator(self.pad_token_id, self.position_offset, bucket=bucket, cap=self.max_length)
        return PadCollator(self.pad_token_id, bucket=bucket, cap=self.max_length)

    def logits(self, model: nn.Module, batch: dict) -> torch.Tensor:
        if self.compile is None:
            if getattr(model, "_lightft_compiled", None):  # layers compiled for training run eager here
                with torch.compiler.set_stance("force_eager"):
                    return _eager_logits(model, batch, self.unpadded)
            return _eager_logits(model, batch, self.unpadded)
        from lightft.model.compiled import compiled_logits

        return compiled_logits(self.compile, _eager_logits, model, batch, self.unpadded)


def fast_dropout_enabled() -> bool:
    """lightft's cheaper CPU dropout masks (``model/fast_dropout.py``) are on unless ``LIGHTFT_FAST_DROPOUT=0``,
    which keeps torch's own dropout and SDPA: slower on CPU, the same masks as plain transformers draws
    (docs/defaults.md, "The LoHa/OFT gap over four seeds, and the fast dropout masks")."""
    return os.environ.get("LIGHTFT_FAST_DROPOUT", "1") != "0"


def _eager_logits(model: nn.Module, batch: dict, unpadded: bool) -> torch.Tensor:
    if unpadded:
        from lightft.model.unpadded import unpadded_logits

        return unpadded_logits(model, batch)
    return model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
