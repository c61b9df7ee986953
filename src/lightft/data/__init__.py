"""Data: read labelled text from files or the hub, map labels to ids, split, tokenize and batch."""

from lightft.data.labels import LabelMap
from lightft.data.prepare import Splits, prepare_splits

__all__ = ["LabelMap", "Splits", "prepare_splits"]
