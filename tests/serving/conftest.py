"""Runs to serve: small trainings on the tiny random BERT, made once per session."""

import pytest

from tests.conftest import synthetic_rows, write_jsonl

TEXTS = ["good film, great cast", "bad plot and dull acting", "an ordinary evening", "great", "dull dull dull"]


@pytest.fixture(scope="session")
def served_runs(tiny_model_dir, tiny_data, tmp_path_factory) -> dict:
    """name -> run directory: lora, dora and ia3 (two) on the two-label data, lora on three labels, full, prefix."""
    import lightft

    root = tmp_path_factory.mktemp("served")
    three = root / "three-labels"
    three.mkdir()
    write_jsonl(three / "train.jsonl", synthetic_rows(90, seed=3, classes=("neg", "pos", "meh")))
    write_jsonl(three / "test.jsonl", synthetic_rows(30, seed=4, classes=("neg", "pos", "meh")))
    plan = {"lora": ("lora", tiny_data, 1), "dora": ("dora", tiny_data, 2), "ia3": ("ia3", tiny_data, 3),
            "ia3-b": ("ia3", tiny_data, 4), "lora-3": ("lora", three, 5), "full": ("full", tiny_data, 6),
            "prefix": ("prefix", tiny_data, 7)}
    runs = {}
    for name, (method, data, seed) in plan.items():
        runs[name] = lightft.train(model=str(tiny_model_dir), data=str(data), method=method, epochs=1, batch_size=8,
                                   max_length=32, output=str(root / name), quiet=True, seed=seed,
                                   lr=1e-3 if method == "full" else 1e-2, baseline=False).path
    return runs
