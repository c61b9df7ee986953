"""Turn raw tables into checked train/validation/test splits: columns, labels, carve-outs and limits."""

from __future__ import annotations

import hashlib
import json
import math
import random
import re
import warnings
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Any, Sequence

from lightft.data.labels import LabelMap
from lightft.data.sources import Table, load_source
from lightft.errors import LightftError, LightftWarning

TEXT_DEFAULTS = ("text", "sentence", "review", "content", "question")
LABEL_DEFAULTS = ("label", "labels", "target", "class", "category", "coarse_label")


@dataclass
class Split:
    texts: list[str]
    labels: list[int]

    def __len__(self) -> int:
        return len(self.texts)

    def subset(self, indices: Sequence[int]) -> "Split":
        return Split([self.texts[i] for i in indices], [self.labels[i] for i in indices])


@dataclass
class Splits:
    train: Split
    validation: Split
    test: Split
    labels: LabelMap
    name: str
    text_column: str
    label_column: str
    notes: list[str]

    def sizes(self) -> dict[str, int]:
        return {"train": len(self.train), "validation": len(self.validation), "test": len(self.test)}

    def fingerprint(self) -> str:
        """A digest of every split's texts and labels (after carving and limits): two runs trained and tested on
        the same rows have the same one, whatever files they came from."""
        digest = hashlib.sha256(json.dumps([str(n) for n in self.labels.names]).encode())
        for split in (self.train, self.validation, self.test):
            digest.update(json.dumps([split.texts, split.labels], ensure_ascii=False).encode())
        return digest.hexdigest()[:16]


def _pick_column(table: Table, requested: str | None, defaults: Sequence[str], role: str, flag: str,
                 exclude: str | None = None, label: str | None = None) -> str:
    """The column for ``role``: the one requested, the first default name present (not ``exclude``), or the only
    other candidate; for the text, candidates are columns of words that are neither ``label`` (the --label-column
    given) nor named like a label column."""
    columns = list(table)
    if requested is not None:
        if requested not in table:
            raise LightftError(
                f"{role} column {requested!r} ({flag}) not found; the columns are: {', '.join(columns)}; "
                f"pass {flag} with one of them"
            )
        return requested
    for name in defaults:
        if name in table and name != exclude:
            return name
    others = [c for c in columns if c != exclude]
    if role == "text":  # a column of words: not a label column by name, not numbers (csv reads every cell as text)
        others = [c for c in others if c != label and c not in LABEL_DEFAULTS
                  and any(isinstance(v, str) and not _whole(v) for v in table[c][:100])]
    if len(others) == 1:
        return others[0]
    if role == "label" and not others:
        raise LightftError(f"the data has no label column (its only column is {columns[0]!r}); training and evaluation "
                           "need a label for every row: add a label column, or predict unlabelled texts with "
                           "`lightft predict RUN --file FILE`")
    hint = "; if the file has no header line, add one first, e.g. text,label" if any(len(c) > 40 for c in columns) else ""
    raise LightftError(
        f"cannot tell which column holds the {role}; the columns are: {', '.join(columns)}; pass {flag} NAME{hint}"
    )


def _distinct_columns(text_col: str, label_col: str, table: Table) -> None:
    if text_col == label_col:
        raise LightftError(f"column {text_col!r} is both the text and the label column; the columns are: "
                           f"{', '.join(table)}; pass --text-column and --label-column with two different ones")


def _row(split: str, index: int) -> str:
    """How a message names a row: 'train row 5', or 'row 5 of the file' for a single file (split "all")."""
    return f"row {index + 1} of the file" if split == "all" else f"{split} row {index + 1}"


def _missing(v: Any) -> bool:
    """A missing label: None (jsonl), an empty cell (csv), nan (parquet, pandas)."""
    return v is None or (isinstance(v, str) and not v.strip()) or (isinstance(v, float) and math.isnan(v))


def _whole(v: Any) -> bool:
    """1, 1.0, "1", " -3 " or "1.0" as csv gives (pandas writes a column with gaps as floats), or a bool; not "--3",
    "1.5" or "²"."""
    if isinstance(v, str):
        return re.fullmatch(r"[+-]?[0-9]+(\.0*)?", v.strip()) is not None
    return isinstance(v, int) or (isinstance(v, float) and v.is_integer())


def _as_int(v: Any) -> int:
    """The int of a value ``_whole`` accepts."""
    return int(v.strip().split(".")[0]) if isinstance(v, str) else int(v)


def _as_name(v: Any) -> str:
    """A label as a class name: 2.0 (parquet's floats) names the same class as "2"."""
    return str(int(v)) if isinstance(v, float) and v.is_integer() else str(v).strip()


def _normalise_labels(values: list[Any], split: str, column: str, like: type | None = None) -> list[Any]:
    """Labels as ints when every value is a whole number (1, 1.0, "1" as csv gives, or a bool); else stripped strings.

    ``like`` is the kind the training labels (or a trained run's label map) took: a split is read the same way,
    so a test file that holds only the classes "1" and "2" of train's "1", "2", "neutral" still matches them.
    Missing values (None, "", nan) and values that are not a class name or number are errors, and so is a column
    that mixes numbers with words, which would otherwise silently become extra classes.
    """
    gaps = [i for i, v in enumerate(values) if _missing(v)]
    if gaps:
        raise LightftError(
            f"{_row(split, gaps[0])} has no label in column {column!r} ({len(gaps)} row{'s' if len(gaps) > 1 else ''} in all); "
            "fill in the labels or drop those rows"
        )
    odd = next((i for i, v in enumerate(values) if not isinstance(v, (str, int, float))), None)
    if odd is not None:
        raise LightftError(
            f"{_row(split, odd)} has a {type(values[odd]).__name__} label in column {column!r} "
            f"({str(values[odd])[:40]}); expected a class name or number: check --label-column"
        )

    if like is str:
        return [_as_name(v) for v in values]
    numbers = [_whole(v) for v in values]
    if like is int:  # whole numbers match train's; anything else is reported as a class train never had
        return [_as_int(v) if n else _as_name(v) for v, n in zip(values, numbers)]
    if all(numbers):
        return [_as_int(v) for v in values]
    if any(numbers) and not all(isinstance(v, str) for v in values):
        number = values[numbers.index(True)]
        word = values[numbers.index(False)]
        whose = "the file's" if split == "all" else f"the {split}"
        raise LightftError(
            f"{whose} labels in column {column!r} mix numbers and names (e.g. {number!r} and {word!r}); "
            "use one kind of label for every row"
        )
    return [str(v).strip() for v in values]


def _check_texts(values: list[Any], split: str, column: str) -> list[str]:
    for i, v in enumerate(values):
        if not isinstance(v, str) or not v.strip():
            kind = type(v).__name__
            found = "an empty text" if isinstance(v, str) or v is None else \
                f"{'an' if kind[0] in 'aeiou' else 'a'} {kind} instead of text"
            raise LightftError(
                f"{_row(split, i)} has {found} in column {column!r}; every row needs non-empty text "
                "(remove the row or fill it in, or pick another --text-column)"
            )
    return values


def stratified_split(labels: Sequence[int], fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Seeded stratified split of row indices into (kept, carved); each class gives ``fraction`` of its rows.

    A class of one row is never carved. When classes of a few rows each round to none and leave the carve short of
    ``fraction`` of all rows, those classes, the closest to rounding up first, give one row each (never their last),
    so the carve is not empty; classes that give rows keep exactly their rounded share."""
    rng = random.Random(seed)
    by_class: dict[int, list[int]] = defaultdict(list)
    for i, label in enumerate(labels):
        by_class[label].append(i)
    order = sorted(by_class)
    counts = {}
    for label in order:
        rng.shuffle(by_class[label])
        size = len(by_class[label])
        counts[label] = round(size * fraction) if size > 1 else 0
    short = round(len(labels) * fraction) - sum(counts.values())
    if short > 0:
        spare = [label for label in order if counts[label] == 0 and len(by_class[label]) >= 2]
        rng.shuffle(spare)  # ties between equal remainders are broken by the seed, not by label order
        spare.sort(key=lambda label: counts[label] - len(by_class[label]) * fraction)
        for label in spare[:short]:
            counts[label] += 1
    kept, carved = [], []
    for label in order:
        carved += by_class[label][:counts[label]]
        kept += by_class[label][counts[label]:]
    return sorted(kept), sorted(carved)


def random_subset(split: Split, n: int | None, seed: int) -> Split:
    if n is None or n >= len(split):
        return split
    indices = sorted(random.Random(seed).sample(range(len(split)), n))
    return split.subset(indices)


def prepare_splits(
    data: str,
    *,
    text_column: str | None = None,
    label_column: str | None = None,
    validation_fraction: float = 0.1,
    limit_train: int | None = None,
    limit_eval: int | None = None,
    seed: int = 42,
    label_map: LabelMap | None = None,
    evaluate: str | None = None,
) -> Splits:
    """Load ``data`` and return checked splits with labels mapped to ids.

    The map comes from train, or is ``label_map`` (a trained run's) when given. With ``evaluate`` (a split name),
    only that split is needed: a single file is evaluated whole, a directory's file for that split is used as it
    is (train need not exist), and only a directory without it falls back to the carve-outs of training.
    """
    tables, name = load_source(data, need=evaluate or "train")
    if evaluate is not None and ("all" in tables or evaluate in tables):
        return _evaluation_split(tables, name, evaluate, text_column, label_column, limit_eval, seed, label_map)
    notes: list[str] = []
    first = tables.get("train", tables.get("all"))
    text_col = _pick_column(first, text_column, TEXT_DEFAULTS, "text", "--text-column", label=label_column)
    label_col = _pick_column(first, label_column, LABEL_DEFAULTS, "label", "--label-column", exclude=text_col)
    _distinct_columns(text_col, label_col, first)

    raw: dict[str, tuple[list[str], list[Any]]] = {}
    for split, table in tables.items():
        for col, role, flag in ((text_col, "text", "--text-column"), (label_col, "label", "--label-column")):
            if col not in table and (role == "text" or split in ("train", "all")):
                fix = f"pass {flag} with one of them" if table is first else \
                    f"every split names its columns alike: rename the {split} split's {role} column to {col!r}"
                raise LightftError(f"{role} column {col!r} ({flag}) not found in the {split} split; its columns are: "
                                   f"{', '.join(table)}; {fix}")
        if split not in ("train", "all") and (label_col not in table or all(_missing(v) for v in table[label_col])):
            notes.append(f"the {split} split has no labels (column {label_col!r}) and was not used")
            continue
        texts = _check_texts(table[text_col], split, text_col)
        raw[split] = (texts, table[label_col])
    # train (or the single file) decides whether labels are numbers or names, or the trained run's map does
    like = _label_kind(label_map) if label_map is not None else None
    for split in sorted(raw, key=lambda split: split not in ("train", "all")):
        texts, values = raw[split]
        raw[split] = (texts, _normalise_labels(values, split, label_col, like))
        like = like or (int if all(isinstance(v, int) for v in raw[split][1]) else str)

    single_file = "all" in raw
    if single_file:  # carve validation and test out of it
        texts, labels = raw.pop("all")
        raw["train"] = (texts, labels)
        notes.append(f"a single file was given: {validation_fraction:.0%} of it is held out as test, then "
                     f"{validation_fraction:.0%} of the rest as validation (stratified, seed {seed})")
    train_texts, train_labels = raw["train"]
    trained_map = label_map is not None
    label_map = label_map or LabelMap.from_labels(train_labels)
    if len(label_map) < 2 and not trained_map:
        raise LightftError(
            f"the training data has a single class ({label_map.names[0]!r} in column {label_col!r}); "
            "classification needs at least 2 classes: check --label-column and the file"
        )
    singles = sum(1 for n in Counter(train_labels).values() if n == 1)
    if label_column is None and not trained_map and len(label_map) > 50 and singles > 0.5 * len(label_map):
        raise LightftError(
            f"column {label_col!r}, taken as the label, has {len(label_map):,} distinct values in "
            f"{len(train_labels):,} training rows, {singles:,} of them on a single row; is it really the label? Pass "
            "--label-column with the column that holds the classes (naming it skips this check)"
        )
    train = Split(train_texts, label_map.encode(train_labels, "train", of_run=trained_map))
    evaluated = {s: Split(t, label_map.encode(lbls, s, of_run=trained_map)) for s, (t, lbls) in raw.items() if s != "train"}
    if "test" not in evaluated:
        kept, carved = stratified_split(train.labels, validation_fraction, seed + 1)
        evaluated["test"], train = train.subset(carved), train.subset(kept)
        if not single_file:
            notes.append(f"no test split: {validation_fraction:.0%} of train is held out as test (stratified)")
    if "validation" not in evaluated:
        kept, carved = stratified_split(train.labels, validation_fraction, seed)
        evaluated["validation"], train = train.subset(carved), train.subset(kept)
        if not single_file:
            notes.append(f"no validation split: {validation_fraction:.0%} of train is held out as validation "
                         f"(stratified, seed {seed}); test is untouched")
    sizes = len(train), len(evaluated["validation"]), len(evaluated["test"])
    train = random_subset(train, limit_train, seed)
    validation = random_subset(evaluated["validation"], limit_eval, seed)
    test = random_subset(evaluated["test"], limit_eval, seed)
    if len(train) < sizes[0]:
        notes.append(f"--limit-train {limit_train}: a seeded random {len(train):,} of the {sizes[0]:,} training rows")
    elif limit_train is not None and limit_train > sizes[0]:
        notes.append(f"--limit-train {limit_train} is more than the {sizes[0]:,} training rows: all of them are used")
    cut = [f"{len(s):,} of {n:,} {name}" for name, s, n in (("validation", validation, sizes[1]), ("test", test, sizes[2]))
           if len(s) < n]
    if cut:
        notes.append(f"--limit-eval {limit_eval}: a seeded random {' and '.join(cut)} rows")
    if len(set(train.labels)) < 2 and not trained_map:
        raise LightftError(
            f"the training subset has a single class after --limit-train {limit_train}; raise --limit-train"
            if limit_train else f"the training rows left after carving out validation/test (--validation-fraction "
                                f"{validation_fraction}) have a single class; lower --validation-fraction or add rows"
        )
    for split_name, split in (("validation", validation), ("test", test)):
        if len(split) == 0 and all(n < 2 for n in Counter(train.labels).values()):
            raise LightftError(f"the {split_name} split is empty: no class has two training rows, and a class's last "
                               f"row is never held out; add rows, or pass a {split_name} file beside train")
        if len(split) == 0:
            raise LightftError(f"the {split_name} split is empty; add rows or raise --validation-fraction")
    if not trained_map:
        _warn_case_twins(label_map, label_col)
    scored = "validation" if evaluate == "validation" else "test"  # the split whose scores are reported
    untested = sorted(set(range(len(label_map))) - set((validation if scored == "validation" else test).labels))
    if untested:  # e.g. a class with one row: its last row is never held out
        listed = ", ".join(repr(label_map.names[i]) for i in untested[:5]) + (", ..." if len(untested) > 5 else "")
        one = len(untested) == 1
        notes.append(f"{len(untested)} class{'' if one else 'es'} ({listed}) {'has' if one else 'have'} no {scored} "
                     f"rows: {'its' if one else 'their'} per-class scores show support 0, and macro-F1 counts "
                     f"{'it' if one else 'them'} only where predicted; add rows to measure {'it' if one else 'them'}")
    untrained = sorted(set(range(len(label_map))) - set(train.labels))
    if untrained and not trained_map:  # --limit-train's random subset can leave a rare class out
        listed = ", ".join(repr(label_map.names[i]) for i in untrained[:5]) + (", ..." if len(untrained) > 5 else "")
        notes.append(f"{listed} {'has' if len(untrained) == 1 else 'have'} no training rows"
                     f"{f' in the --limit-train {limit_train} subset' if limit_train else ''}: the model cannot learn "
                     f"{'it' if len(untrained) == 1 else 'them'}; raise --limit-train or add rows")
    notes += _overlap_notes(train, test)
    return Splits(train, validation, test, label_map, name, text_col, label_col, notes)


def _warn_case_twins(labels: LabelMap, column: str) -> None:
    """'Pos' and 'pos' are two classes, as the data says; that is rarely what was meant, so say it once."""
    seen: dict[str, str] = {}
    for name in labels.names:
        if isinstance(name, str) and seen.setdefault(name.casefold(), name) != name:
            warnings.warn(f"labels {seen[name.casefold()]!r} and {name!r} in column {column!r} differ only in case and "
                          "are two classes; make them one spelling in the data if they mean the same", LightftWarning)
            return


def _overlap_notes(train: Split, test: Split) -> list[str]:
    """Test texts that also occur in train (exact duplicates) flatter test accuracy: say how many."""
    seen = {t.strip() for t in train.texts}
    shared = sum(t.strip() in seen for t in test.texts)
    if not shared:
        return []
    note = (f"{shared} of {len(test)} test texts ({shared / len(test):.1%}) also appear in train word for word, "
            "which flatters test accuracy")
    if shared / len(test) >= 0.05:  # a console line only when it could move the figures by points
        warnings.warn(note + "; deduplicate the data to measure generalisation", LightftWarning)
    return [note]


def _label_kind(label_map: LabelMap) -> type:
    return int if all(isinstance(n, int) for n in label_map.names) else str


def _evaluation_split(tables: dict[str, Table], name: str, split: str, text_column: str | None,
                      label_column: str | None, limit: int | None, seed: int, label_map: LabelMap | None) -> Splits:
    """Splits holding only ``split``: all of a single file's rows, or the directory's file for that split."""
    key = "all" if "all" in tables else split
    table, first = tables[key], tables.get("train", tables[key])
    text_col = _pick_column(first, text_column, TEXT_DEFAULTS, "text", "--text-column", label=label_column)
    label_col = _pick_column(first, label_column, LABEL_DEFAULTS, "label", "--label-column", exclude=text_col)
    _distinct_columns(text_col, label_col, first)
    for col, role, flag in ((text_col, "text", "--text-column"), (label_col, "label", "--label-column")):
        if col not in table:
            raise LightftError(f"{role} column {col!r} ({flag}) not found in the {split} data; its columns are: "
                               f"{', '.join(table)}; pass {flag} with one of them")
    where = "all" if key == "all" else split  # how messages name the rows: 'row 3 of the file' for a single file
    texts = _check_texts(table[text_col], where, text_col)
    of_run = label_map is not None
    if label_map is None:
        label_map = LabelMap.from_labels(_normalise_labels(first[label_col], "train" if first is not table else where,
                                                           label_col))
    labels = _normalise_labels(table[label_col], where, label_col, _label_kind(label_map))
    rows = random_subset(Split(texts, label_map.encode(labels, where, of_run=of_run)), limit, seed)
    note = "every row of the file is evaluated" if key == "all" else f"the {split} file is evaluated"
    empty = Split([], [])
    return Splits(empty, rows if split == "validation" else empty, rows if split == "test" else empty, label_map,
                  name, text_col, label_col, [note + (f" (a seeded subset of {limit})" if limit else "")])
