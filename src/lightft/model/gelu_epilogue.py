"""The feed-forward block's first GEMM and its GELU as one cuBLASLt call, for inference on a GPU.

BERT-family encoders (BERT, RoBERTa, ELECTRA, XLM-R, MiniLM) compute ``gelu(x @ W.T + b)`` as a GEMM that writes
the 3,072-wide pre-activation to memory and a second kernel (inductor's fused GELU when compiled) that reads it
back. ``torch._addmm_activation(..., use_gelu=True)`` applies the GELU in the GEMM's epilogue instead, so the
pre-activation never reaches memory. On an H100 (``bench/gpu_gelu_epilogue.py``, run 12) the layer took 1.02 ms
against 1.49 ms for inductor's GEMM + fused GELU at 131k tokens, and compiled BERT-base inference went from 7,521 to
7,799 samples/s with the same predictions (docs/performance.md). Its error against an fp32 exact GELU is that of
bf16 rounding alone (max 1.56e-2, mean 4.8e-4, against a mean of 7.1e-4 for the stock GEMM then GELU), since the
GELU sees the fp32 accumulator before the one rounding to bf16.

Inference only, and only where it pays and matches: a CUDA device, bf16 weights (``store_frozen_in_bf16``), the exact
GELU, and a plain ``nn.Linear`` (a LoRA layer kept unmerged for ``lightft serve`` stays as it is, also one that
a later run's adapter puts there after the swap: the stock forward runs then). Training keeps
the stock path: the backward needs the pre-activation this skips.
"""

from __future__ import annotations

import types

import torch
from torch import nn


def fuse_gelu_epilogue(model: nn.Module, device: torch.device) -> int:
    """Swap each eligible feed-forward ``dense -> GELU`` pair of ``model`` for one GEMM with a GELU epilogue; return
    how many were swapped (0 off CUDA)."""
    if not _pays_on(device):
        return 0
    swapped = 0
    for module in model.modules():
        if _eligible(module) and "_stock_forward" not in module.__dict__:  # serve calls this once per run, on one
            module._stock_forward = module.forward  # shared model: swapped once, the stock forward kept
            module.forward = types.MethodType(_dense_gelu, module)
            swapped += 1
    return swapped


def _pays_on(device) -> bool:  # on the CPU the op is a plain addmm then GELU: nothing to win
    return torch.device(device).type == "cuda"


def _eligible(module: nn.Module) -> bool:
    if not type(module).__name__.endswith("Intermediate"):  # BertIntermediate, RobertaIntermediate, ...: dense, act
        return False
    if set(module._modules) != {"dense", "intermediate_act_fn"}:  # e.g. RoBERTa-PreLayerNorm's has a LayerNorm too
        return False
    dense, act = getattr(module, "dense", None), getattr(module, "intermediate_act_fn", None)
    return (type(dense) is nn.Linear and dense.bias is not None and dense.weight.dtype == torch.bfloat16
            and not dense.weight.requires_grad and _exact_gelu(act))


def _exact_gelu(act) -> bool:
    """transformers' ``GELUActivation`` running ``F.gelu`` (BERT's "gelu"), not the tanh or Python variants."""
    return type(act).__name__ == "GELUActivation" and getattr(act, "act", None) is nn.functional.gelu


def _dense_gelu(self, hidden_states: torch.Tensor) -> torch.Tensor:
    dense = self.dense
    if type(dense) is not nn.Linear:  # an adapter added since (serve loads runs onto one model): its own forward
        return self._stock_forward(hidden_states)
    x = hidden_states.reshape(-1, hidden_states.shape[-1]).to(dense.weight.dtype)  # what autocast would cast
    out = torch._addmm_activation(dense.bias, x, dense.weight.t(), use_gelu=True)
    return out.view(*hidden_states.shape[:-1], out.shape[-1])
