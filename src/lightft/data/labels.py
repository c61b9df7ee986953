"""The label <-> id map, saved as labels.json in the run directory and reused by predict."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from lightft.errors import LightftError
from lightft.rundir import read_json, write_json


def balanced_weights(labels: Sequence[int], num_classes: int) -> list[float]:
    """``--class-weights balanced``: n / (classes x rows of the class), as scikit-learn's "balanced", counting the
    classes that have rows (a class without any weighs 0: it is never in the loss); the weights average 1 over the
    rows, so the loss keeps its scale (and the learning rate its meaning)."""
    counts = [0] * num_classes
    for label in labels:
        counts[label] += 1
    present = sum(1 for count in counts if count)
    return [len(labels) / (present * count) if count else 0.0 for count in counts]


@dataclass(frozen=True)
class LabelMap:
    """Labels in id order: ``names[i]`` is the label of class id ``i``."""

    names: tuple[Any, ...]

    @classmethod
    def from_labels(cls, labels: Sequence[Any]) -> "LabelMap":
        """Integers keep their order (0..K-1 stay their own ids); strings sort alphabetically."""
        return cls(tuple(sorted(set(labels), key=lambda v: (isinstance(v, str), v))))

    def __len__(self) -> int:
        return len(self.names)

    @property
    def id2label(self) -> dict[int, str]:
        return {i: str(name) for i, name in enumerate(self.names)}

    @property
    def label2id(self) -> dict[str, int]:
        return {str(name): i for i, name in enumerate(self.names)}

    def encode(self, labels: Sequence[Any], split: str, *, of_run: bool = False) -> list[int]:
        """Class ids of ``labels``; ``of_run``: this map is a trained run's labels.json, not this data's train."""
        index = {name: i for i, name in enumerate(self.names)}
        unknown = sorted({str(v) for v in labels if v not in index})
        if unknown:
            count = sum(1 for v in labels if v not in index)
            where = (f"label(s) {_some(unknown)} appear in {'the file' if split == 'all' else f'the {split} split'} "
                     f"({count} row{'s' if count > 1 else ''})")
            known = _some([str(n) for n in self.names])
            if of_run:
                raise LightftError(f"{where}, but the run was trained on {known} only; evaluate it on data labelled "
                                   "with those classes (rename the labels, or drop the rows of other classes)")
            raise LightftError(f"{where} but never in train, which has {known}; fix the labels or drop those rows")
        return [index[v] for v in labels]

    def save(self, path: Path) -> None:
        write_json(path, {"labels": list(self.names), "id2label": self.id2label})

    @classmethod
    def load(cls, path: Path) -> "LabelMap":
        try:
            labels = read_json(path)["labels"]
            if not isinstance(labels, list) or len(labels) < 2:
                raise ValueError("expected a list of at least 2 labels")
        except (ValueError, KeyError, TypeError) as exc:  # json.JSONDecodeError is a ValueError
            raise LightftError(f"{path} is damaged ({exc}); restore the run directory from a copy or train it "
                               "again") from None
        return cls(tuple(labels))


def _some(values: list[str], shown: int = 8) -> str:
    """Up to ``shown`` values for a message (a wrong --label-column can make thousands of 'labels')."""
    listed = ", ".join(repr(v if len(v) <= 40 else v[:37] + "...") for v in values[:shown])
    return listed + (f" and {len(values) - shown} more" if len(values) > shown else "")
