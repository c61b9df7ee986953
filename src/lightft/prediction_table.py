"""What ``lightft predict --output FILE`` writes: one row per text, in the format FILE's suffix names.

``.csv``, ``.tsv`` and ``.parquet`` get a flat table (``text``, ``label``, ``score``, then ``p(LABEL)`` per label),
``.jsonl`` and ``-`` (standard output) JSON Lines (``text``, ``label``, ``score``, ``probabilities``), as
``Predictor.predict`` returns them; other names are refused.
Columns of the input table other than its text (an id, a gold label, ...) come first in each row, so predictions join
back to their source; one whose name a prediction field takes is kept as ``input_NAME``.
"""

from __future__ import annotations

import csv
import io
import json
import math
import sys
from pathlib import Path
from typing import Any, Sequence

from lightft.errors import LightftError, first_line
from lightft.rundir import atomic_write_bytes

TABLES = {".csv": ",", ".tsv": "\t", ".parquet": None}  # suffix -> delimiter (None: parquet)
STDOUT = "-"


def check_output_suffix(path: str | Path) -> None:
    """Refuse, before any work, a file name that names no format predict writes."""
    suffix = Path(path).suffix.lower()
    if str(path) != STDOUT and suffix not in (".jsonl", *TABLES):
        found = f"{suffix} is none of them" if suffix else "it has no suffix"
        raise LightftError(f"--output {path}: predictions are written as JSON Lines (.jsonl), CSV (.csv), TSV (.tsv) "
                           f"or parquet (.parquet), chosen by the suffix, and {found}; name the file with one of those "
                           "suffixes, or pass - for JSON Lines on standard output")


def check_columns(path: str | Path, columns: dict[str, list[Any]]) -> None:
    """Refuse, before predicting, input columns that ``path``'s format cannot hold (parquet types each column)."""
    if Path(path).suffix.lower() == ".parquet" and columns:
        _parquet([dict(zip(columns, row)) for row in zip(*columns.values())], list(columns), Path(path))


def write_predictions(path: str | Path, results: Sequence[dict], columns: dict[str, list[Any]] | None = None) -> None:
    """Write ``Predictor.predict``'s results (with the input's other ``columns``, row by row) to ``path``, atomically,
    in the format its suffix names."""
    path = Path(path)
    check_output_suffix(path)
    labels = list(results[0]["probabilities"]) if results else []
    kept = _kept(columns or {}, len(results), ("text", "label", "score", "probabilities", *[f"p({lb})" for lb in labels]))
    suffix = path.suffix.lower()
    if suffix not in TABLES:
        lines = "".join(json.dumps({**{k: v[i] for k, v in kept.items()}, **r}, ensure_ascii=False, default=str) + "\n"
                        for i, r in enumerate(results))
        if str(path) == STDOUT:
            sys.stdout.write(lines)
            sys.stdout.flush()
        else:
            atomic_write_bytes(path, lines.encode("utf-8"))
        return
    rows = [{**{k: v[i] for k, v in kept.items()}, "text": r["text"], "label": r["label"], "score": r["score"],
             **{f"p({lb})": r["probabilities"][lb] for lb in labels}} for i, r in enumerate(results)]
    header = [*kept, "text", "label", "score", *[f"p({lb})" for lb in labels]]
    if TABLES[suffix] is None:
        atomic_write_bytes(path, _parquet(rows, header, path))
        return
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, delimiter=TABLES[suffix], lineterminator="\n")
    writer.writerow(header)
    writer.writerows([_cell(row[name]) for name in header] for row in rows)
    atomic_write_bytes(path, buffer.getvalue().encode("utf-8"))


def _kept(columns: dict[str, list[Any]], rows: int, fields: Sequence[str]) -> dict[str, list[Any]]:
    """The input columns under the names they are written with: ``input_NAME`` where a prediction field takes NAME
    (``input_input_NAME`` where the input has that too, and so on); NaN read as nothing (JSON has no NaN)."""
    taken, kept = {*fields, *columns}, {}
    for name, values in columns.items():
        if len(values) != rows:
            raise LightftError(f"column {name!r} has {len(values):,} values for {rows:,} predictions; pass one value "
                               "per predicted text")
        if name in fields:
            while name in taken:
                name = f"input_{name}"
            taken.add(name)
        kept[name] = [None if isinstance(v, float) and math.isnan(v) else v for v in values]
    return kept


def _cell(value: Any) -> Any:
    """A CSV cell: numbers and text as they are, nothing as empty, lists and objects as JSON."""
    if value is None:
        return ""
    return json.dumps(value, ensure_ascii=False, default=str) if isinstance(value, (list, dict)) else value


def _parquet(rows: list[dict], header: list[str], path: Path) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    buffer = io.BytesIO()
    try:
        pq.write_table(pa.Table.from_pylist(rows).select(header), buffer)
    except Exception as exc:  # pyarrow's own error types, OverflowError for integers beyond 64 bits, ...
        raise LightftError(f"--output {path}: an input column holds values parquet cannot hold in one column "
                           f"({first_line(exc)}); write .jsonl or .csv instead") from None
    return buffer.getvalue()
