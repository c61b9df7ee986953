"""Evaluate: run a model over tokenized texts and turn its logits into classification metrics."""

from lightft.evaluation.metrics import classification_metrics
from lightft.evaluation.runner import evaluate_split, predict_logits

__all__ = ["classification_metrics", "evaluate_split", "predict_logits"]
