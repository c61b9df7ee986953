"""What ``lightft predict --output FILE`` writes: one row per text, in the format FILE's suffix names.

``.csv``, ``.tsv`` and ``.parquet`` get a flat table (``text``, ``label``, ``score``, then ``p(LABEL)`` per label);
any other name JSON Lines (``text``, ``label``, ``score``, ``probabilities``), as ``Predictor.predict`` returns them.
Columns of the input table other than its text (an id, a gold label, ...) come first in each row, so predictions join
back to their source; one whose name a prediction field takes is kept as ``input_NAME``.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any, Sequence

from lightft.errors import LightftError
from lightft.rundir import atomic_write_bytes

TABLES = {".csv": ",", ".tsv": "\t", ".parquet": None}  # suffix -> delimiter (None: parquet)
MISLEADING = (".json", ".gz", ".txt")  # suffixes whose readers would not take JSON Lines


def check_output_suffix(path: str | Path) -> None:
    """Refuse, before any work, a file name that promises a format predict does not write."""
    suffix = Path(path).suffix.lower()
    if suffix in MISLEADING:
        raise LightftError(f"--output {path}: predictions are written as JSON Lines (.jsonl), CSV (.csv), TSV (.tsv) "
                           f"or parquet (.parquet), chosen by the suffix, and {suffix} is none of them; name the file "
                           "with one of those suffixes")


def write_predictions(path: str | Path, results: Sequence[dict], columns: dict[str, list[Any]] | None = None) -> None:
    """Write ``Predictor.predict``'s results (with the input's other ``columns``, row by row) to ``path``, atomically,
    in the format its suffix names."""
    path = Path(path)
    check_output_suffix(path)
    kept = {(f"input_{name}" if _taken(name, results) else name): values for name, values in (columns or {}).items()}
    suffix = path.suffix.lower()
    if suffix not in TABLES:
        lines = (json.dumps({**{k: v[i] for k, v in kept.items()}, **r}, ensure_ascii=False, default=str) + "\n"
                 for i, r in enumerate(results))
        atomic_write_bytes(path, "".join(lines).encode("utf-8"))
        return
    labels = list(results[0]["probabilities"]) if results else []
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


def _taken(name: str, results: Sequence[dict]) -> bool:
    labels = results[0]["probabilities"] if results else {}
    return name in ("text", "label", "score", "probabilities") or name in {f"p({lb})" for lb in labels}


def _cell(value: Any) -> Any:
    """A CSV cell: numbers and text as they are, nothing as empty, lists and objects as JSON."""
    if value is None:
        return ""
    return json.dumps(value, ensure_ascii=False, default=str) if isinstance(value, (list, dict)) else value


def _parquet(rows: list[dict], header: list[str], path: Path) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pa.Table.from_pylist(rows, schema=None).select(header)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise LightftError(f"--output {path}: an input column mixes kinds of values parquet cannot hold in one column "
                           f"({str(exc).splitlines()[0]}); write .jsonl or .csv instead") from None
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    return buffer.getvalue()
