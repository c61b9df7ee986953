"""predict --output: the file's suffix picks the format, the input's other columns ride along, round-tripped."""

from __future__ import annotations

import json

import pytest

from lightft.data.sources import read_table
from lightft.errors import LightftError
from lightft.prediction_table import check_columns, write_predictions

RESULTS = [{"text": "good film", "label": "pos", "score": 0.75, "probabilities": {"neg": 0.25, "pos": 0.75}},
           {"text": "bad, dull", "label": "neg", "score": 0.5625, "probabilities": {"neg": 0.5625, "pos": 0.4375}}]
COLUMNS = {"id": [7, 8], "label": ["pos", "pos"], "tags": [["a", "b"], None]}  # a gold label, a list, a gap


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".parquet"])
def test_tables_are_flat_with_the_input_columns_first(suffix, tmp_path):
    path = tmp_path / f"preds{suffix}"
    write_predictions(path, RESULTS, COLUMNS)
    table = read_table(path)
    assert list(table) == ["id", "input_label", "tags", "text", "label", "score", "p(neg)", "p(pos)"]
    assert table["text"] == ["good film", "bad, dull"] and table["label"] == ["pos", "neg"]
    assert table["input_label"] == ["pos", "pos"]
    if suffix == ".parquet":  # typed columns
        assert table["id"] == [7, 8] and table["p(neg)"] == [0.25, 0.5625] and table["tags"] == [["a", "b"], None]
    else:  # text cells: numbers as written, nothing as empty, lists as JSON
        assert table["id"] == ["7", "8"] and table["p(neg)"] == ["0.25", "0.5625"] and table["tags"] == ['["a", "b"]', ""]
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # written atomically: no temporary file left


def test_jsonl_gets_the_results_as_predict_returns_them_and_dash_is_standard_output(tmp_path, capsys):
    path = tmp_path / "preds.jsonl"
    write_predictions(path, RESULTS, COLUMNS)
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert rows[1] == {"id": 8, "input_label": "pos", "tags": None, **RESULTS[1]}
    write_predictions(path, RESULTS)  # text lines or arguments: the results as they are
    assert [json.loads(line) for line in path.read_text().splitlines()] == RESULTS
    write_predictions("-", RESULTS)
    assert [json.loads(line) for line in capsys.readouterr().out.splitlines()] == RESULTS
    assert [p.name for p in tmp_path.iterdir()] == ["preds.jsonl"]


def test_links_pipes_and_devices_are_written_through_not_replaced(tmp_path):
    import os
    import threading

    target = tmp_path / "real.csv"
    target.write_text("old\n")
    (tmp_path / "link.csv").symlink_to(target)
    write_predictions(tmp_path / "link.csv", RESULTS)
    assert (tmp_path / "link.csv").is_symlink() and target.read_text().startswith("text,label,score")
    fifo = tmp_path / "pipe.jsonl"
    os.mkfifo(fifo)
    got = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_text()))
    reader.start()
    write_predictions(fifo, RESULTS)
    reader.join(timeout=30)
    assert [json.loads(line) for line in got[0].splitlines()] == RESULTS and fifo.is_fifo()


@pytest.mark.parametrize("name", ["preds.json", "preds.jsonl.gz", "preds.txt", "preds.xlsx", "preds.pq", "preds"])
def test_a_suffix_that_promises_another_format_is_refused(name, tmp_path):
    with pytest.raises(LightftError, match=rf"^--output .*{name}: predictions are written as JSON Lines \(.jsonl\), "
                                           r"CSV \(.csv\), TSV \(.tsv\) or parquet \(.parquet\), chosen by the suffix, "
                                           r"and (\.\w+ is none of them|it has no suffix); name the file .* or pass - "):
        write_predictions(tmp_path / name, RESULTS)
    assert not list(tmp_path.iterdir())


def test_a_column_parquet_cannot_type_is_one_line(tmp_path):
    for values in ([7, "eight"], [2**64, 1], [{}, {}]):  # mixed kinds, beyond 64 bits, an empty struct
        with pytest.raises(LightftError, match=r"^--output .*preds.parquet: an input column holds values parquet "
                                               r"cannot hold in one column \(.*\); write .jsonl or .csv instead$"):
            check_columns(tmp_path / "preds.parquet", {"id": values})  # predict checks before predicting
        with pytest.raises(LightftError, match=r"parquet cannot hold"):
            write_predictions(tmp_path / "preds.parquet", RESULTS, {"id": values})
    check_columns(tmp_path / "preds.csv", {"id": [7, "eight"]})  # text formats take anything
    assert not list(tmp_path.iterdir())


def test_renamed_columns_never_overwrite_another_and_lengths_must_match(tmp_path):
    """An earlier --output file fed back in holds both label and input_label: neither is lost."""
    path = tmp_path / "again.jsonl"
    write_predictions(path, RESULTS[:1], {"input_label": ["gold"], "label": ["pos"], "score": [float("nan")]})
    assert json.loads(path.read_text()) == {"input_label": "gold", "input_input_label": "pos", "input_score": None,
                                            **RESULTS[0]}
    with pytest.raises(LightftError, match=r"^column 'id' has 1 values for 2 predictions; pass one value per predicted"):
        write_predictions(path, RESULTS, {"id": [1]})
