"""Methods that train a subset of the model's own tensors (head, bitfit) or all of them (full)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from safetensors.torch import load_file, save_file
import torch
from torch import nn

from lightft.errors import LightftError
from lightft.methods.base import Method
from lightft.model.heads import head_module_names
from lightft.model.load import quiet_transformers, load_model

TRAINED_FILE = "trained.safetensors"


@dataclass(frozen=True)
class SubsetMethod(Method):
    """Train the head plus the tensors ``extra(name)`` selects; save only those tensors."""

    extra: Callable[[str], bool] = lambda name: False

    def attach(self, model: nn.Module, cfg) -> nn.Module:
        head = tuple(f"{h}." for h in head_module_names(model))
        for name, p in model.named_parameters():
            p.requires_grad_(name.startswith(head) or self.extra(name))
        return model

    def save(self, model: nn.Module, directory: Path) -> None:
        tensors = {n: p.detach().cpu().contiguous() for n, p in model.named_parameters() if p.requires_grad}
        save_file(tensors, str(Path(directory) / TRAINED_FILE), metadata={"format": "pt", "method": self.name})

    def load(self, cfg, labels, directory: Path, *, merge: bool = True) -> nn.Module:
        model = load_model(cfg.model, labels, seed=cfg.seed)
        tensors = load_file(str(Path(directory) / TRAINED_FILE))
        unexpected = sorted(set(tensors) - set(dict(model.named_parameters())))
        if unexpected:
            raise LightftError(
                f"{directory / TRAINED_FILE} holds tensors the base model {cfg.model!r} lacks "
                f"({', '.join(unexpected[:3])}); was the run trained on another model?"
            )
        model.load_state_dict(tensors, strict=False)
        return model


@dataclass(frozen=True)
class FullMethod(Method):
    """Every weight trains; the run directory holds a complete transformers model."""

    needs_base: bool = False

    def attach(self, model: nn.Module, cfg) -> nn.Module:
        for p in model.parameters():
            p.requires_grad_(True)
        return model

    def save(self, model: nn.Module, directory: Path) -> None:
        with quiet_transformers():  # no "Writing model shards" bar
            model.save_pretrained(str(directory), safe_serialization=True)

    def load(self, cfg, labels, directory: Path, *, merge: bool = True) -> nn.Module:
        from transformers import AutoModelForSequenceClassification

        return AutoModelForSequenceClassification.from_pretrained(str(directory), local_files_only=True,
                                                                  use_safetensors=True, dtype=torch.float32)
