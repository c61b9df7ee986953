"""Which modules an adapter attaches to: per-architecture defaults for ``auto``, and checked explicit names."""

from __future__ import annotations

from typing import NamedTuple

from torch import nn

from lightft.errors import LightftError

# Attention query/value projections per model_type (peft has no defaults for some of these).
AUTO_TARGETS: dict[str, list[str]] = {
    "bert": ["query", "value"],
    "roberta": ["query", "value"],
    "xlm-roberta": ["query", "value"],
    "electra": ["query", "value"],
    "distilbert": ["q_lin", "v_lin"],
    "deberta": ["in_proj"],
    "deberta-v2": ["query_proj", "value_proj"],
    "mpnet": ["q", "v"],
    "modernbert": ["Wqkv"],
}


def linear_module_names(model: nn.Module, exclude: list[str]) -> list[str]:
    """Distinct last-name components of the linear layers outside the head (the possible targets)."""
    names = set()
    for full, module in model.named_modules():
        if isinstance(module, (nn.Linear, nn.Conv1d)) and full.split(".")[0] not in exclude:
            names.add(full.rsplit(".", 1)[-1])
    return sorted(names)


def resolve_targets(model: nn.Module, spec: str, head: list[str]) -> list[str] | str:
    """Turn ``--targets`` into what peft takes; unknown names fail with the candidates listed."""
    model_type = model.config.model_type
    if spec == "auto":
        if model_type in AUTO_TARGETS:
            return AUTO_TARGETS[model_type]
        from peft.utils.constants import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING as PEFT_DEFAULTS

        if model_type in PEFT_DEFAULTS:
            return list(PEFT_DEFAULTS[model_type])
        raise LightftError(
            f"--targets auto has no default for model type {model_type!r}; pass module names with --targets, "
            f"e.g. one of: {', '.join(linear_module_names(model, head))}"
        )
    if spec == "all-linear":
        return "all-linear"
    wanted = [t.strip() for t in spec.split(",") if t.strip()]
    candidates = linear_module_names(model, head)
    missing = [t for t in wanted if t not in candidates]
    if not wanted or missing:
        raise LightftError(
            f"--targets {spec!r}: no module named {', '.join(map(repr, missing or [spec]))} in this "
            f"{model_type} model; candidates are: {', '.join(candidates)} (or 'auto', 'all-linear')"
        )
    return wanted


# Attention key/value projections per model_type, for IA3's auto targets (IA3 rescales keys, values and the FFN).
IA3_KEY_VALUE: dict[str, list[str]] = {
    "bert": ["key", "value"],
    "roberta": ["key", "value"],
    "xlm-roberta": ["key", "value"],
    "electra": ["key", "value"],
    "distilbert": ["k_lin", "v_lin"],
    "deberta": ["in_proj"],
    "deberta-v2": ["key_proj", "value_proj"],
    "mpnet": ["k", "v"],
    "modernbert": ["Wqkv"],  # fused: the query rows are rescaled too
}


class IA3Targets(NamedTuple):
    modules: list[str]  # full module names
    feedforward: list[str]  # the subset whose *input* IA3 rescales: the FFN down-projections


def _encoder_linears(model: nn.Module, head: list[str]) -> dict[str, nn.Linear]:
    return {name: m for name, m in model.named_modules()
            if isinstance(m, nn.Linear) and name.split(".")[0] not in head}


def targeted_linears(model: nn.Module, targets: list[str] | str, head: list[str]) -> dict[str, nn.Linear]:
    """The linear layers that ``resolve_targets``' answer selects, by full name."""
    linears = _encoder_linears(model, head)
    if targets == "all-linear":
        return linears
    return {n: m for n, m in linears.items() if n.rsplit(".", 1)[-1] in targets}


def _is_ffn_output(module: nn.Linear) -> bool:
    """The FFN down-projection (intermediate -> hidden) is the one encoder linear layer that narrows its input."""
    return module.in_features > module.out_features


def ia3_targets(model: nn.Module, spec: str, head: list[str]) -> IA3Targets:
    """IA3's targets and feedforward modules as full names. ``auto`` is the attention keys and values plus the FFN
    output layer, as in the IA3 paper and peft's defaults for BERT (which also catch ``attention.output.dense``,
    whose name ends the same way: full names avoid that). Explicit ``--targets`` names are checked as for LoRA;
    those that are FFN down-projections are scaled on their input."""
    linears = _encoder_linears(model, head)
    model_type = model.config.model_type
    if spec == "auto":
        if model_type not in IA3_KEY_VALUE:
            raise LightftError(
                f"--targets auto has no IA3 default for model type {model_type!r}; pass module names with --targets, "
                f"e.g. the key and value projections and the FFN output among: "
                f"{', '.join(linear_module_names(model, head))}"
            )
        kv = IA3_KEY_VALUE[model_type]
        names = [n for n, m in linears.items() if n.rsplit(".", 1)[-1] in kv or _is_ffn_output(m)]
    elif spec == "all-linear":
        names = list(linears)
    else:
        wanted = resolve_targets(model, spec, head)
        names = [n for n in linears if n.rsplit(".", 1)[-1] in wanted]
    return IA3Targets(names, [n for n in names if _is_ffn_output(linears[n])])
