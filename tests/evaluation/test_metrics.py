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


def test_macro_f1_counts_a_class_that_is_predicted_but_absent_from_the_labels():
    # labels hold classes 0 and 1; the model also predicts class 2. Like sklearn's f1_score(average="macro"), the
    # wrongly predicted class counts with F1 0 instead of being left out of the mean.
    logits = np.eye(3)[[0, 0, 1, 2]]
    m = classification_metrics(logits, [0, 0, 1, 1], ["a", "b", "c"])
    assert m["macro_f1"] == pytest.approx((1.0 + 2 / 3 + 0.0) / 3)
    unused = classification_metrics(np.eye(3)[[0, 1]], [0, 1], ["a", "b", "c"])
    assert unused["macro_f1"] == 1.0  # a class neither present nor predicted is left out
