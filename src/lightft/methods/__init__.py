"""Methods: the registry of fine-tuning methods (what each trains, its defaults, how it saves and loads)."""

from __future__ import annotations

from lightft.errors import LightftError
from lightft.methods.base import Method, count_parameters
from lightft.methods.peft_methods import PeftMethod, lora_config
from lightft.methods.tensor_methods import FullMethod, SubsetMethod

LORA_OPTIONS = ("rank", "alpha", "dropout", "targets")

METHODS: dict[str, Method] = {
    m.name: m
    for m in (
        SubsetMethod("head", "only the classifier head; the encoder stays frozen", lr=2e-3),
        PeftMethod("lora", "low-rank updates B·A on the target projections, plus the head", lr=5e-4,
                   options=LORA_OPTIONS, mergeable=True, make_config=lora_config),
        SubsetMethod("bitfit", "every bias term of the encoder, plus the head", lr=1e-3,
                     extra=lambda name: name.endswith(".bias")),
        FullMethod("full", "every weight of the encoder and the head", lr=5e-5),
    )
}


def get_method(name: str) -> Method:
    if name not in METHODS:
        raise LightftError(f"unknown method {name!r}; choose one of: {', '.join(METHODS)} (see `lightft methods`)")
    return METHODS[name]


__all__ = ["METHODS", "Method", "count_parameters", "get_method"]
