"""Evaluate: run a model over tokenized texts and turn its logits into classification metrics."""

from lightft.evaluate.metrics import classification_metrics
from lightft.evaluate.runner import evaluate_split, predict_logits

__all__ = ["classification_metrics", "evaluate_split", "predict_logits"]
