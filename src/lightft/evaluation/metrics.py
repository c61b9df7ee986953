"""Classification metrics from logits: accuracy, macro-F1, per-class P/R/F1, confusion matrix, loss."""

from __future__ import annotations

from typing import Sequence

import numpy as np


def cross_entropy(logits: np.ndarray, labels: np.ndarray) -> float:
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    return float(-log_probs[np.arange(len(labels)), labels].mean())


def classification_metrics(logits: np.ndarray, labels: Sequence[int], names: Sequence[str]) -> dict:
    """All metrics as plain JSON-ready data; rendering lives in ``lightft.report``."""
    labels = np.asarray(labels, dtype=np.int64)
    logits = np.asarray(logits, dtype=np.float64)
    k = len(names)
    preds = logits.argmax(axis=1)
    confusion = np.zeros((k, k), dtype=np.int64)  # rows: true class, columns: predicted
    np.add.at(confusion, (labels, preds), 1)
    tp = np.diag(confusion).astype(np.float64)
    predicted = confusion.sum(axis=0).astype(np.float64)
    actual = confusion.sum(axis=1).astype(np.float64)
    precision = np.divide(tp, predicted, out=np.zeros(k), where=predicted > 0)
    recall = np.divide(tp, actual, out=np.zeros(k), where=actual > 0)
    f1 = np.divide(2 * precision * recall, precision + recall, out=np.zeros(k), where=(precision + recall) > 0)
    present = (actual > 0) | (predicted > 0)  # macro-F1 over classes in the labels or the predictions, as sklearn
    return {
        "accuracy": float((preds == labels).mean()),
        "macro_f1": float(f1[present].mean()) if present.any() else 0.0,
        "loss": cross_entropy(logits, labels),
        "n": int(len(labels)),
        "per_class": {
            str(name): {"precision": float(precision[i]), "recall": float(recall[i]), "f1": float(f1[i]), "support": int(actual[i])}
            for i, name in enumerate(names)
        },
        "confusion_matrix": confusion.tolist(),
    }
