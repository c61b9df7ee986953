import csv
import gzip
import json

import pytest

from lightft.data.sources import load_source, read_table
from lightft.errors import LightftError


def test_reads_every_supported_format(tmp_path):
    rows = [{"text": "a b", "label": "x"}, {"text": "c d", "label": "y"}]
    (tmp_path / "a.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    with gzip.open(tmp_path / "b.jsonl.gz", "wt") as fh:
        fh.write("".join(json.dumps(r) + "\n" for r in rows))
    for name, delim in (("c.csv", ","), ("d.tsv", "\t")):
        with open(tmp_path / name, "w", newline="") as fh:
            w = csv.DictWriter(fh, ["text", "label"], delimiter=delim)
            w.writeheader()
            w.writerows(rows)
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "e.parquet")
    for name in ("a.jsonl", "b.jsonl.gz", "c.csv", "d.tsv", "e.parquet"):
        assert read_table(tmp_path / name) == {"text": ["a b", "c d"], "label": ["x", "y"]}, name


def test_directory_split_files_are_found_by_name(tmp_path):
    for split in ("train", "dev", "test"):
        (tmp_path / f"{split}.jsonl").write_text(json.dumps({"text": split, "label": 0}) + "\n")
    tables, name = load_source(str(tmp_path))
    assert set(tables) == {"train", "validation", "test"}
    assert tables["validation"]["text"] == ["dev"]
    assert name == tmp_path.name


def test_missing_file_message():
    with pytest.raises(LightftError, match=r"data 'no/such/file.jsonl' not found; pass an existing file"):
        load_source("no/such/file.jsonl")


def test_directory_without_train(tmp_path):
    (tmp_path / "test.jsonl").write_text('{"text": "a", "label": 1}\n')
    with pytest.raises(LightftError, match=r"no train file in .*expected train.jsonl"):
        load_source(str(tmp_path))


def test_bad_json_line_names_the_line(tmp_path):
    (tmp_path / "x.jsonl").write_text('{"text": "a", "label": 1}\n{oops\n')
    with pytest.raises(LightftError, match=r"x.jsonl line 2 is not valid JSON \(Expecting property name enclosed in "
                                           r"double quotes column 2\); expected one JSON object per line"):
        read_table(tmp_path / "x.jsonl")


@pytest.mark.parametrize("name, expected", [("e.jsonl", "one JSON object per line"),
                                            ("e.tsv", r"a header line naming the columns \(e\.g\. text and label\) and then one row per text")])
def test_an_empty_file_is_told_what_its_format_expects(tmp_path, name, expected):
    (tmp_path / name).write_text("")
    with pytest.raises(LightftError, match=rf"{name} holds no rows; expected {expected}$"):
        read_table(tmp_path / name)


def test_a_csv_without_a_header_line_is_told_to_add_one(tmp_path):
    from lightft.data.prepare import prepare_splits

    (tmp_path / "train.csv").write_text("great film,1\n" + "".join(f"text {i},{i % 2}\n" for i in range(20)))
    with pytest.raises(LightftError, match=r"train\.csv's first line \('great film,1'\) looks like data, not a header: "
                                           r"a column would be named '1'; add a header line naming the columns"):
        prepare_splits(str(tmp_path))


@pytest.mark.parametrize("name, content, message", [
    ("train.jsonl", "caf\xe9".encode("latin-1"), r"is not UTF-8 text \(.*\); save it as UTF-8"),
    ("train.jsonl.gz", b'{"text": "a"}\n', r"is not a readable gzip file .*; re-compress it or drop the \.gz suffix"),
    ("train.parquet", b"not parquet at all", r"is not a readable parquet file"),
    ("train.json", b'[{"text": "a", "label": 1}, 3]', r"item 2 is a JSON int; expected objects"),
])
def test_unreadable_files_give_one_line(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(LightftError, match=message):
        read_table(path)


@pytest.mark.parametrize("name, content, message", [
    ("x.csv", "text;label\ngreat film;pos\n", r"x\.csv is semicolon-separated \(its header 'text;label' is one "
                                              r"column when split at commas\); save it with commas as \.csv \(or"),
    ("x.csv", "text|label\ngreat film|pos\n", r"x\.csv is pipe-separated .*; save it with commas"),
    ("x.csv", "text\tlabel\ngreat film\tpos\n", r"x\.csv is tab-separated .*split at commas\); name it \.tsv$"),
    ("x.tsv", "text,label\ngreat film,pos\n", r"x\.tsv is comma-separated .*split at tabs\); name it \.csv$"),
])
def test_a_table_written_with_another_separator_is_named(tmp_path, name, content, message):
    (tmp_path / name).write_text(content)
    with pytest.raises(LightftError, match=message):
        read_table(tmp_path / name)


def test_a_one_column_table_whose_texts_hold_a_separator_is_read_as_it_is(tmp_path):
    (tmp_path / "x.csv").write_text("text\ngreat; film\n")  # the header does not split: texts with semicolons
    (tmp_path / "y.csv").write_text("review;text\ngreat film\n")  # nor does the first row
    assert read_table(tmp_path / "x.csv") == {"text": ["great; film"]}
    assert read_table(tmp_path / "y.csv") == {"review;text": ["great film"]}


def test_a_row_with_an_unquoted_separator_is_refused_instead_of_cut(tmp_path):
    (tmp_path / "x.csv").write_text('text,label\n"good, fun",pos\ngood, fun,pos\n')
    with pytest.raises(LightftError, match=r"^.*x\.csv row 2 has 3 fields for the header's 2: a text holding a comma "
                                           r"must be quoted, e.g. \"good, fun\"; quote it"):
        read_table(tmp_path / "x.csv")
    (tmp_path / "y.tsv").write_text("text\tlabel\ngood fun\tpos\t\n\t\n \t\n")  # a trailing separator: read as
    assert read_table(tmp_path / "y.tsv") == {"text": ["good fun"], "label": ["pos"]}  # it is; empty rows skipped


def test_long_csv_fields_byte_order_marks_json_arrays_and_empty_parquet(tmp_path):
    long_text = "word " * 40_000  # 200 KB, over the csv module's default field limit
    path = tmp_path / "big.csv"
    path.write_text("\ufefftext,label\n" + f'"{long_text}",pos\n', encoding="utf-8")
    table = read_table(path)
    assert list(table) == ["text", "label"] and table["text"][0] == long_text
    array = tmp_path / "rows.json"
    array.write_text(json.dumps([{"text": "a", "label": 1}, {"text": "b", "label": 0}]))
    assert read_table(array) == {"text": ["a", "b"], "label": [1, 0]}
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"text": pa.array([], pa.string()), "label": pa.array([], pa.int64())}),
                   tmp_path / "empty.parquet")
    with pytest.raises(LightftError, match=r"empty\.parquet holds no rows"):
        read_table(tmp_path / "empty.parquet")
