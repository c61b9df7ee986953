"""Methods built on peft adapters (LoRA and its family): the head is always trained and saved with the adapter."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from torch import nn

from lightft.methods.base import Method
from lightft.methods.targets import resolve_targets
from lightft.model.heads import head_module_names
from lightft.model.load import load_model


@dataclass(frozen=True)
class PeftMethod(Method):
    """``make_config(cfg, targets, head)`` builds the peft config; the rest is shared by every peft method."""

    make_config: Callable = None  # type: ignore[assignment]

    def attach(self, model: nn.Module, cfg) -> nn.Module:
        from peft import get_peft_model

        head = head_module_names(model)
        targets = resolve_targets(model, cfg.targets, head)
        peft_model = get_peft_model(model, self.make_config(cfg, targets, head))
        return peft_model

    def save(self, model: nn.Module, directory: Path) -> None:
        model.save_pretrained(str(directory), safe_serialization=True)
        card = Path(directory) / "README.md"  # peft's empty model card; report.md describes the run
        if card.exists():
            card.unlink()

    def load(self, cfg, labels, directory: Path) -> nn.Module:
        from peft import PeftModel

        base = load_model(cfg.model, labels, seed=cfg.seed)
        model = PeftModel.from_pretrained(base, str(directory))
        return model.merge_and_unload() if self.mergeable else model


def lora_config(cfg, targets, head, **extra):
    from peft import LoraConfig, TaskType

    return LoraConfig(
        task_type=TaskType.SEQ_CLS,
        r=cfg.rank,
        lora_alpha=cfg.alpha,
        lora_dropout=cfg.dropout,
        target_modules=targets,
        modules_to_save=head,
        **extra,
    )
