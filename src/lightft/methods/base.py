"""What a fine-tuning method is: which weights it trains, its defaults, and how its artifact is saved and loaded."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import nn

if TYPE_CHECKING:
    from lightft.config import TrainConfig
    from lightft.data.labels import LabelMap


class TrainingHooks:
    """What a method adds to the training loop (none by default). ``fit`` calls ``start`` once with the run's
    number of optimizer updates, adds ``extra_loss(model)`` to the objective of every batch, and calls
    ``after_update(update)`` after each optimizer step, before gradients are zeroed, and ``on_best(model)`` when
    an epoch becomes the best so far (as its weights are kept); the pipeline calls ``finish(model)`` after the best
    epoch's weights are restored, before testing and saving."""

    def start(self, total_updates: int) -> None:
        pass

    def extra_loss(self, model: nn.Module) -> torch.Tensor | None:
        return None

    def after_update(self, update: int) -> None:
        pass

    def on_best(self, model: nn.Module) -> None:
        pass

    def finish(self, model: nn.Module) -> None:
        pass

    def state(self) -> tuple[dict[str, torch.Tensor], dict]:
        """What the hooks carry from one update to the next (tensors, JSON-able values), saved with a checkpoint."""
        return {}, {}

    def load_state(self, tensors: dict[str, torch.Tensor], values: dict) -> None:
        pass


@dataclass(frozen=True)
class Method:
    """A method in the registry. Subclasses implement ``attach``, ``save`` and ``load``."""

    name: str
    summary: str  # one line: what it trains
    lr: float  # default peak learning rate
    options: tuple[str, ...] = ()  # TrainConfig fields this method reads
    mergeable: bool = False  # whether inference folds the adapter into the base weights
    needs_base: bool = True  # whether loading a run needs the base model (full runs hold every weight)

    def attach(self, model: nn.Module, cfg: "TrainConfig") -> nn.Module:
        """Return the model to train, with exactly this method's parameters requiring grad."""
        raise NotImplementedError

    def training_hooks(self, model: nn.Module) -> TrainingHooks:
        """Per-run hooks into the training loop for ``model`` (as returned by ``attach``)."""
        return TrainingHooks()

    def save(self, model: nn.Module, directory: Path) -> None:
        """Write this method's weights into a run directory."""
        raise NotImplementedError

    def load(self, cfg: "TrainConfig", labels: "LabelMap", directory: Path, *, merge: bool = True) -> nn.Module:
        """Rebuild the trained model from a run directory, ready for inference; ``merge=False`` keeps a peft
        adapter apart from the base weights (several runs' adapters can then share one base model)."""
        raise NotImplementedError


def count_parameters(model: nn.Module) -> dict[str, int]:
    """Trainable and total parameter counts (each tensor counted once)."""
    seen: set[int] = set()
    trainable = total = 0
    for p in model.parameters():
        if id(p) in seen:
            continue
        seen.add(id(p))
        total += p.numel()
        trainable += p.numel() if p.requires_grad else 0
    return {"trainable": trainable, "total": total}
