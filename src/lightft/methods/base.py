"""What a fine-tuning method is: which weights it trains, its defaults, and how its artifact is saved and loaded."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from torch import nn

if TYPE_CHECKING:
    from lightft.config import TrainConfig
    from lightft.data.labels import LabelMap


@dataclass(frozen=True)
class Method:
    """A method in the registry. Subclasses implement ``attach``, ``save`` and ``load``."""

    name: str
    summary: str  # one line: what it trains
    lr: float  # default peak learning rate
    options: tuple[str, ...] = ()  # TrainConfig fields this method reads
    mergeable: bool = False  # whether inference folds the adapter into the base weights

    def attach(self, model: nn.Module, cfg: "TrainConfig") -> nn.Module:
        """Return the model to train, with exactly this method's parameters requiring grad."""
        raise NotImplementedError

    def save(self, model: nn.Module, directory: Path) -> None:
        """Write this method's weights into a run directory."""
        raise NotImplementedError

    def load(self, cfg: "TrainConfig", labels: "LabelMap", directory: Path) -> nn.Module:
        """Rebuild the trained model from a run directory, ready for inference."""
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
