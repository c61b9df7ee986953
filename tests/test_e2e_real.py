"""End to end on the real MiniLM encoder (cut to 2 layers) and real data from ../shared/datasets."""

from __future__ import annotations

import json

import pytest

import lightft
from lightft.cli import main
from tests.conftest import SHARED

pytestmark = pytest.mark.e2e


def need(name: str):
    path = SHARED / name
    if not path.is_dir():
        pytest.skip(f"{path} not present")
    return path


def test_trec_six_classes_end_to_end(minilm2_dir, tmp_path):
    trec = need("trec")
    run = lightft.train(model=str(minilm2_dir), data=str(trec), method="lora", epochs=3, limit_train=1200,
                        limit_eval=300, max_length=48, batch_size=16, lr=1e-2, output=str(tmp_path / "trec"), quiet=True)
    m = run.metrics
    assert m["data"]["labels"] == ["ABBR", "DESC", "ENTY", "HUM", "LOC", "NUM"]
    assert len(m["eval"]["confusion_matrix"]) == 6 and len(m["eval"]["per_class"]) == 6
    assert m["eval"]["accuracy"] > m["baseline"]["accuracy"] + 0.3, (m["baseline"]["accuracy"], m["eval"]["accuracy"])
    preds = lightft.load(run.path).predict(["Who wrote Hamlet ?", "How many miles is it to Boston ?"])
    assert all(p["label"] in m["data"]["labels"] and abs(sum(p["probabilities"].values()) - 1) < 1e-6 for p in preds)


def test_compare_table_matches_metrics(minilm2_dir, tmp_path, capsys):
    imdb = need("imdb")
    out = tmp_path / "cmp"
    with pytest.raises(SystemExit) as done:
        main(["compare", "--model", str(minilm2_dir), "--data", str(imdb), "--methods", "baseline,head,lora",
              "--limit-train", "160", "--limit-eval", "60", "--max-length", "64", "--epochs", "1", "--output", str(out),
              "--quiet"])
    assert done.value.code == 0
    printed = capsys.readouterr().out
    table = json.loads((out / "compare.json").read_text())["rows"]
    assert [r["method"] for r in table] == ["baseline", "head", "lora"]
    for row in table[1:]:
        metrics = json.loads((out / row["method"] / "metrics.json").read_text())
        assert row["accuracy"] == metrics["eval"]["accuracy"]
        assert row["trainable_params"] == metrics["params"]["trainable"]
        assert f"{100 * metrics['eval']['accuracy']:.2f}%" in printed
    first = json.loads((out / "head" / "metrics.json").read_text())
    assert table[0]["accuracy"] == first["baseline"]["accuracy"]  # the baseline is measured once, in the first run
    assert (out / "compare.md").read_text().count("\n| ") == 4  # header + 3 rows
    assert (out / "compare.svg").read_text().count("<circle") == 4  # head + lora, two panels
