import numpy as np
import pytest

from lightft.evaluation.metrics import classification_metrics


def test_metrics_on_a_known_confusion():
    labels = [0, 0, 0, 1, 1, 2]
    preds = [0, 0, 1, 1, 0, 2]
    logits = np.eye(3)[preds] * 5
    m = classification_metrics(logits, labels, ["a", "b", "c"])
    assert m["accuracy"] == pytest.approx(4 / 6)
    assert m["confusion_matrix"] == [[2, 1, 0], [1, 1, 0], [0, 0, 1]]
    assert m["per_class"]["a"]["precision"] == pytest.approx(2 / 3)
    assert m["per_class"]["b"]["recall"] == pytest.approx(1 / 2)
    f1 = [2 / 3, 1 / 2, 1.0]
    assert m["macro_f1"] == pytest.approx(sum(f1) / 3)
    assert m["n"] == 6 and m["loss"] > 0
