"""Find the classifier head of a sequence-classification model: everything outside the pretrained backbone.

Heads differ by architecture (BERT ``classifier``; RoBERTa ``classifier`` with dense + out_proj;
DistilBERT ``pre_classifier`` + ``classifier``; DeBERTa ``pooler`` + ``classifier``), so the head is
found structurally, not from a name list: the top-level children that hold parameters, minus the
backbone at ``base_model_prefix``. Nothing of the head can be left out by a missing name.
"""

from __future__ import annotations

from torch import nn


def head_module_names(model: nn.Module) -> list[str]:
    backbone = getattr(model, "base_model_prefix", None)
    names = [
        name
        for name, child in model.named_children()
        if name != backbone and any(True for _ in child.parameters())
    ]
    if not names:
        raise ValueError(f"{type(model).__name__} has no classifier head outside its backbone {backbone!r}")
    return names
