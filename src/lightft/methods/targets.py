"""Which modules an adapter attaches to: per-architecture defaults for ``auto``, and checked explicit names."""

from __future__ import annotations

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
