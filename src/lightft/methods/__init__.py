"""Methods: the registry of fine-tuning methods (what each trains, its defaults, how it saves and loads).

Default learning rates: head, lora and full were picked by a sweep on SST-2 (``bench/lr_sweep.py``, results in
docs/defaults.md) and checked on IMDB and TREC, which were not tuned on; ia3's 2e-2 was picked on TREC validation
after 5e-3 fell 3.4 points short of a tuned Trainer + peft script there, and checked on IMDB (+2.1 points); LoRA's short-budget optimum is well above
the 4e-4..5e-4 of long GLUE schedules. full keeps 5e-5 (1e-4 was marginally better on MiniLM, but is a known
divergence risk on BERT-base and larger). The other methods' rates are scaled from LoRA's and are starting points for BERT-sized encoders with AdamW and the head trained at the same rate:
adapters whose update starts at zero and is scaled down (IA3, VeRA, FourierFT) and soft prompts need rates well
above LoRA's; rsLoRA scales its update by alpha/sqrt(r) instead of alpha/r (2.8x more at r=8), so its rate is lower.

AdaLoRA starts at rank ceil(1.5 x --rank) and prunes to --rank on average by importance; its orthogonality penalty
and per-update allocation run through ``Method.training_hooks`` (``peft_methods.AdaLoraHooks``).
"""

from __future__ import annotations

from lightft.errors import LightftError, did_you_mean
from lightft.methods.base import Method, count_parameters
from lightft.methods.peft_methods import (
    AdaLoraMethod,
    PeftMethod,
    PromptMethod,
    adalora_config,
    block_size_divides,
    boft_config,
    dora_config,
    fourierft_config,
    ia3_config,
    ia3_find_targets,
    loha_config,
    lokr_config,
    lora_config,
    no_boft_jit,
    oft_config,
    prefix_config,
    prompt_config,
    ptuning_config,
    rslora_config,
    vera_config,
)
from lightft.methods.tensor_methods import FullMethod, SubsetMethod

LORA_OPTIONS = ("rank", "alpha", "dropout", "targets", "init")
PROMPT_OPTIONS = ("num_virtual_tokens",)

METHODS: dict[str, Method] = {
    m.name: m
    for m in (
        SubsetMethod("head", "only the classifier head; the encoder stays frozen", lr=2e-2),
        PeftMethod("lora", "low-rank updates B·A on the target projections, plus the head", lr=2e-3,
                   options=LORA_OPTIONS, mergeable=True, make_config=lora_config),
        PeftMethod("dora", "LoRA with the weight split into magnitude and direction (DoRA), plus the head", lr=2e-3,
                   options=LORA_OPTIONS, mergeable=True, make_config=dora_config),
        PeftMethod("rslora", "LoRA scaled by alpha/sqrt(r) so higher ranks keep learning (rsLoRA), plus the head",
                   lr=7e-4, options=LORA_OPTIONS, mergeable=True, make_config=rslora_config),
        AdaLoraMethod("adalora", "LoRA in SVD form P·diag(E)·Q with an orthogonality penalty, ranks pruned from "
                      "1.5x --rank to --rank by importance (AdaLoRA), plus the head", lr=1e-2,
                      options=("rank", "alpha", "dropout", "targets"), mergeable=True, make_config=adalora_config),
        PeftMethod("ia3", "learned rescaling vectors on keys, values and the FFN (IA3), plus the head", lr=2e-2,
                   options=("targets",), mergeable=True, make_config=ia3_config, find_targets=ia3_find_targets),
        PeftMethod("loha", "low-rank Hadamard product updates (LoHa), plus the head", lr=5e-3,
                   options=("rank", "alpha", "targets"), mergeable=True, make_config=loha_config),
        PeftMethod("lokr", "low-rank Kronecker product updates (LoKr), plus the head", lr=5e-3,
                   options=("rank", "alpha", "targets"), mergeable=True, make_config=lokr_config),
        PeftMethod("vera", "scaling vectors on frozen random low-rank projections shared by all layers (VeRA), "
                   "plus the head", lr=1e-2, options=("vera_rank", "dropout", "targets"), mergeable=True,
                   make_config=vera_config),
        PeftMethod("fourierft", "a few trainable Fourier coefficients of each weight update (FourierFT), plus the "
                   "head", lr=1e-1, options=("n_frequency", "targets"), mergeable=True, make_config=fourierft_config),
        PeftMethod("oft", "block-diagonal orthogonal rotations of the target weights (OFT), plus the head", lr=3e-3,
                   options=("block_size", "targets"), mergeable=True, make_config=oft_config, fits=block_size_divides),
        PeftMethod("boft", "orthogonal rotations in exact Cayley form, one butterfly factor (BOFT), plus the head",
                   lr=1e-3, options=("block_size", "targets"), mergeable=True, make_config=boft_config,
                   fits=block_size_divides, setup=no_boft_jit),
        PromptMethod("prefix", "trainable key/value vectors prepended in every layer (prefix tuning), plus the head",
                     lr=3e-2, options=PROMPT_OPTIONS, make_config=prefix_config, kv_prefix=True),
        PromptMethod("prompt", "trainable embeddings prepended to the input (prompt tuning), plus the head", lr=1e-1,
                     options=PROMPT_OPTIONS, make_config=prompt_config),
        PromptMethod("ptuning", "prepended embeddings produced by a trainable MLP (P-tuning), plus the head", lr=1e-2,
                     options=PROMPT_OPTIONS, make_config=ptuning_config),
        SubsetMethod("bitfit", "every bias term of the encoder, plus the head", lr=5e-3,
                     extra=lambda name: name.endswith(".bias")),
        FullMethod("full", "every weight of the encoder and the head", lr=5e-5),
    )
}


def get_method(name: str) -> Method:
    if name not in METHODS:
        raise LightftError(f"unknown method {name!r}{did_you_mean(name, METHODS)}; choose one of: {', '.join(METHODS)} (see `lightft methods`)")
    return METHODS[name]


__all__ = ["METHODS", "Method", "count_parameters", "get_method"]
