"""Read labelled text tables from local files (jsonl, csv, tsv, parquet) or a hub dataset into columns."""

from __future__ import annotations

import csv
import gzip
import io
import json
import zlib
from pathlib import Path
from typing import Any

from lightft.errors import LightftError
from lightft.hub import require_hub

Table = dict[str, list[Any]]  # column name -> values
SUFFIXES = (".jsonl", ".jsonl.gz", ".json", ".csv", ".csv.gz", ".tsv", ".tsv.gz", ".parquet")
SPLIT_ALIASES = {
    "train": ("train", "training"),
    "validation": ("validation", "valid", "val", "dev"),
    "test": ("test", "testing", "eval"),
}


def _suffix(path: Path) -> str | None:
    name = path.name.lower()
    return next((s for s in sorted(SUFFIXES, key=len, reverse=True) if name.endswith(s)), None)


def _open_text(path: Path) -> io.TextIOBase:
    # utf-8-sig: a byte-order mark (Excel's CSV export) is not part of the first column's name
    if path.name.lower().endswith(".gz"):
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8-sig", newline="")
    return open(path, encoding="utf-8-sig", newline="")


def _rows_to_table(rows: list[dict[str, Any]], path: Path) -> Table:
    columns: list[str] = []
    for row in rows:
        for key in row:
            if key not in columns:
                columns.append(key)
    return {c: [row.get(c) for row in rows] for c in columns}


def read_table(path: Path) -> Table:
    """Read one file into columns. Numbers in csv/tsv stay strings; the label step normalises them."""
    suffix = _suffix(path)
    if suffix is None:
        raise LightftError(f"cannot read {path}: expected a .jsonl, .jsonl.gz, .csv, .tsv or .parquet file")
    try:
        rows = _read_rows(path, suffix)
    except UnicodeDecodeError as exc:
        raise LightftError(f"{path} is not UTF-8 text ({exc.reason}); save it as UTF-8") from None
    except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
        raise LightftError(f"{path} is not a readable gzip file ({exc}); re-compress it or drop the .gz suffix") from None
    except csv.Error as exc:
        raise LightftError(f"{path} is not readable as {suffix.split('.')[1].upper()} ({exc}); check its quoting") from None
    except LightftError:
        raise
    except Exception as exc:  # pyarrow raises its own error types for files that are not parquet
        if suffix != ".parquet":
            raise
        raise LightftError(f"{path} is not a readable parquet file ({str(exc).splitlines()[0]})") from None
    if not rows:
        expected = "one JSON object per line" if suffix.startswith(".jsonl") else \
            "a header line naming the columns (e.g. text and label) and then one row per text" \
            if suffix.startswith((".csv", ".tsv")) else "rows of text and label columns"
        raise LightftError(f"{path} holds no rows; expected {expected}")
    return rows if isinstance(rows, dict) else _rows_to_table(rows, path)


def _read_rows(path: Path, suffix: str) -> list[dict[str, Any]] | Table:
    if suffix == ".parquet":
        import pyarrow.parquet as pq

        table = pq.read_table(path)
        return table.to_pydict() if table.num_rows else []
    with _open_text(path) as fh:
        if suffix == ".json" and fh.read(1) == "[":  # one JSON array of objects
            fh.seek(0)
            try:
                rows = json.load(fh)
            except json.JSONDecodeError as exc:
                raise LightftError(f"{path} is not valid JSON ({exc.msg}, line {exc.lineno}); expected an array of "
                                   "objects or one object per line") from None
            bad = next((i for i, r in enumerate(rows) if not isinstance(r, dict)), None)
            if bad is not None:
                raise LightftError(f"{path} item {bad + 1} is a JSON {type(rows[bad]).__name__}; expected objects "
                                   'like {"text": ..., "label": ...}')
            return rows
        fh.seek(0)
        if suffix.startswith((".jsonl", ".json")):
            rows = []
            for number, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise LightftError(f"{path} line {number} is not valid JSON ({exc.msg} column {exc.colno}); "
                                       "expected one JSON object per line") from None
                if not isinstance(row, dict):
                    raise LightftError(f"{path} line {number} is a JSON {type(row).__name__}; expected an object like {{\"text\": ..., \"label\": ...}}")
                rows.append(row)
        else:
            delimiter = "\t" if suffix.startswith(".tsv") else ","
            csv.field_size_limit(2**31 - 1)  # long documents are fine; the default limit is 128 KB per field
            reader = csv.DictReader(fh, delimiter=delimiter)
            numbers = [name for name in reader.fieldnames or [] if name.strip().lstrip("+-").isdecimal()]
            if numbers:  # a first line of data read as the header: its label became a column name
                raise LightftError(f"{path}'s first line ({delimiter.join(reader.fieldnames)!r}) looks like data, not a "
                                   f"header: a column would be named {numbers[0]!r}; add a header line naming the "
                                   "columns, e.g. text,label")
            rows = list(reader)
            _check_delimiter(path, reader.fieldnames or [], rows, delimiter)
            _check_extra_fields(path, reader.fieldnames or [], rows, delimiter)
            rows = [row for row in rows if any(value and value.strip() for value in row.values())]  # "," lines
    return rows


_SEPARATORS = {",": "comma", "\t": "tab", ";": "semicolon", "|": "pipe"}


def _check_delimiter(path: Path, header: list[str], rows: list[dict[str, Any]], delimiter: str) -> None:
    """A one-column header that another separator splits, as it splits the first row, is a file written with that
    separator (Excel in many locales saves ``text;label``): read as it is, every whole line would be one text."""
    if len(header) != 1 or not rows:
        return
    first = next(iter(rows[0].values()), None) or ""
    for sep, name in _SEPARATORS.items():
        if sep != delimiter and header[0].count(sep) and all(p.strip() for p in header[0].split(sep)) \
                and first.count(sep) >= header[0].count(sep):
            fix = "name it .tsv" if sep == "\t" else "name it .csv" if sep == "," else \
                "save it with commas as .csv (or with tabs as .tsv)"
            raise LightftError(f"{path} is {name}-separated (its header {header[0]!r} is one column when split at "
                               f"{_SEPARATORS[delimiter]}s); {fix}")


def _check_extra_fields(path: Path, header: list[str], rows: list[dict[str, Any]], delimiter: str) -> None:
    """A row with more fields than the header (csv.DictReader keeps them under the key None) is a text holding the
    separator unquoted: read as it is, the text would be cut there. Empty extra fields (a trailing separator) are
    dropped."""
    for number, row in enumerate(rows, 1):
        extra = row.pop(None, None)
        if extra and any(field.strip() for field in extra):
            raise LightftError(f"{path} row {number} has {len(header) + len(extra)} fields for the header's "
                               f"{len(header)}: a text holding a {_SEPARATORS[delimiter]} must be quoted, e.g. "
                               f"{chr(34)}good{delimiter} fun{chr(34)}; quote it (spreadsheets and csv writers do)")


def _split_files(directory: Path) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for path in sorted(directory.iterdir()):
        suffix = _suffix(path)
        if suffix is None:
            continue
        stem = path.name[: -len(suffix)].lower()
        for split, aliases in SPLIT_ALIASES.items():
            if stem in aliases:
                if split in found:
                    raise LightftError(f"{directory} has two {split} files ({found[split].name}, {path.name}); keep one")
                found[split] = path
    return found


def load_source(spec: str, *, need: str = "train") -> tuple[dict[str, Table], str]:
    """Load ``--data`` into split tables. Returns the tables and a short name for the data.

    A directory must hold a ``need`` split file (train for training; the evaluated split, or train to carve it
    from, for evaluation). A single file comes back as the split ``"all"``.
    """
    path = Path(spec).expanduser()
    if path.is_dir():
        files = _split_files(path)
        if need != "train" and need in files:
            return {split: read_table(f) for split, f in files.items()}, path.name
        if "train" not in files:
            raise LightftError(
                f"no train file in {path}; expected train.jsonl (or .jsonl.gz, .csv, .tsv, .parquet) with optional "
                "validation.* and test.* beside it"
            )
        return {split: read_table(f) for split, f in files.items()}, path.name
    if path.is_file():
        return {"all": read_table(path)}, path.name.split(".")[0]
    looks_local = spec.startswith((".", "/", "~")) or _suffix(path) is not None or spec.count("/") > 1
    if looks_local or not spec:
        raise LightftError(f"data {spec!r} not found; pass an existing file or directory with --data")
    return _load_hub_dataset(spec), spec.replace("/", "-").replace(":", "-")


def _load_hub_dataset(spec: str) -> dict[str, Table]:
    name, _, config = spec.partition(":")
    require_hub("dataset", name, "--data")
    import datasets

    try:
        loaded = datasets.load_dataset(name, config or None)
    except Exception as exc:  # datasets raises many types; the user needs one line
        raise LightftError(f"could not load hub dataset {spec!r}: {str(exc).splitlines()[0]}") from None
    tables: dict[str, Table] = {}
    for split, ds in loaded.items():
        table = ds.to_dict()
        for column, feature in ds.features.items():
            if isinstance(feature, datasets.ClassLabel):  # store names, not ids, so labels.json is readable
                table[column] = [feature.int2str(v) if v is not None and v >= 0 else None for v in table[column]]
        canonical = next((k for k, aliases in SPLIT_ALIASES.items() if split in aliases), split)
        tables[canonical] = table
    if "train" not in tables:
        raise LightftError(f"hub dataset {spec!r} has no train split (it has {', '.join(tables)})")
    return tables
