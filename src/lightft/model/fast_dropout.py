"""Faster dropout on CPU, and a padded attention function that uses it.

On CPU, ``torch.nn.functional.dropout`` draws its mask with ``aten::bernoulli_``, one Mersenne-Twister draw
and a float compare per element: in a MiniLM LoRA step on the 2-core dev machine that was 33% of the step in
fp32 and 47% under bf16 autocast, ahead of every matmul (docs/performance.md, "CPU: where the time goes").
Here each 64-bit draw gives four 16-bit lanes, and an element is kept when its lane is at or above a threshold,
so the drop probability is ``round(p * 65536) / 65536`` (0.1 -> 0.100006) and kept values are scaled by the
inverse of the exact keep probability: the expectation is unchanged. Forward and backward together are about
3x faster than ``F.dropout`` on the attention-probability tensor. The mask comes from torch's CPU generator,
so a seeded run repeats exactly.

``install_fast_dropout`` swaps the class of every ``nn.Dropout`` in a model (the encoder's hidden dropout,
peft's ``lora_dropout``, the head's) for ``FastDropout``, which keeps ``p`` and ``inplace`` and the state
dict, and falls back to ``F.dropout`` for tensors that are not on the CPU. Attention-probability dropout
happens inside SDPA, so the model's attention implementation is switched to ``lightft_sdpa``: SDPA itself
unless the module is training on CPU with dropout, where it computes softmax(QK^T)V with the fast mask
(the same math path SDPA takes on CPU when dropout is on).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from transformers import AttentionInterface
from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, AttentionMaskInterface
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

ATTN_IMPLEMENTATION = "lightft_sdpa"
_LANES = 65536  # 16-bit lanes


def keep_scale(p: float) -> float:
    """The factor for kept values: the inverse of the exact keep probability ``1 - round(p * 65536) / 65536``."""
    return _LANES / (_LANES - round(p * _LANES))


def _keep_mask(shape: torch.Size, p: float) -> tuple[torch.Tensor, float]:
    """A boolean keep-mask of ``shape`` (drop probability ~``p``) and the scale for kept values."""
    n = shape.numel()
    words = torch.randint(-(2**63), 2**63 - 1, ((n + 3) // 4,), dtype=torch.int64)
    lanes = words.view(torch.int16)[:n].view(shape)
    return lanes >= round(p * _LANES) - _LANES // 2, keep_scale(p)


class _FastDropout(torch.autograd.Function):
    """Zero the dropped elements; scale the kept ones unless ``scaled`` is false (the caller scales later)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, p: float, scaled: bool = True) -> torch.Tensor:
        keep, scale = _keep_mask(x.shape, p)
        ctx.save_for_backward(keep)
        ctx.scale = scale if scaled else 1.0
        out = torch.where(keep, x, x.new_zeros(()))
        return out.mul_(scale) if scaled else out

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (keep,) = ctx.saved_tensors
        out = torch.where(keep, grad, grad.new_zeros(()))
        return (out.mul_(ctx.scale) if ctx.scale != 1.0 else out), None, None


def fast_dropout(x: torch.Tensor, p: float, training: bool = True) -> torch.Tensor:
    """``F.dropout(x, p, training)`` with the fast mask on CPU; plain ``F.dropout`` elsewhere or when idle."""
    if not training or not 0 < p < 1 or not x.is_cpu:
        return F.dropout(x, p, training)
    return _FastDropout.apply(x, p)


class FastDropout(nn.Dropout):
    """``nn.Dropout`` whose CPU mask is drawn 4x cheaper; same ``p``, same expectation, same state dict."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return fast_dropout(x, self.p, self.training)


def padded_attention(module, query, key, value, attention_mask, scaling=None, dropout=0.0, **kwargs):
    """transformers attention function over padded (B, H, L, D) tensors: SDPA, with the fast dropout mask
    when a module trains on CPU with attention dropout."""
    if not (module.training and 0 < dropout < 1 and query.is_cpu):
        return ALL_ATTENTION_FUNCTIONS["sdpa"](module, query, key, value, attention_mask, dropout=dropout,
                                                scaling=scaling, **kwargs)
    scale = query.shape[-1] ** -0.5 if scaling is None else scaling
    scores = torch.matmul(query * scale, key.transpose(-1, -2))
    if attention_mask is not None:
        if attention_mask.dtype == torch.bool:  # SDPA-style mask, True where a key may be attended
            attention_mask = torch.zeros(attention_mask.shape, dtype=scores.dtype).masked_fill_(
                ~attention_mask, torch.finfo(scores.dtype).min)
        scores = scores + attention_mask[..., : key.shape[-2]]
    probs = torch.softmax(scores, dim=-1)
    out = torch.matmul(_FastDropout.apply(probs, dropout, False), value) * keep_scale(dropout)
    return out.transpose(1, 2).contiguous(), None


AttentionInterface.register(ATTN_IMPLEMENTATION, padded_attention)
AttentionMaskInterface.register(ATTN_IMPLEMENTATION, ALL_MASK_ATTENTION_FUNCTIONS["sdpa"])


def install_fast_dropout(model: nn.Module, attention: bool = True) -> int:
    """Use ``FastDropout`` for every ``nn.Dropout`` in ``model`` and, where the model runs on transformers' SDPA
    attention and ``attention`` is true, ``lightft_sdpa``; return how many dropout modules were switched."""
    switched = 0
    for m in model.modules():
        if type(m) is nn.Dropout:
            m.__class__ = FastDropout
            switched += 1
    hf = model.get_base_model() if hasattr(model, "get_base_model") else model
    config = getattr(hf, "config", None)
    if (attention and config is not None and getattr(config, "_attn_implementation", None) == "sdpa"
            and hf._can_set_attn_implementation()):  # the model goes through transformers' AttentionInterface
        hf.set_attn_implementation(ATTN_IMPLEMENTATION)
    return switched
