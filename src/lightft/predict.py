"""Load a finished run directory and predict labels and probabilities for new texts."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path
from typing import Any, NamedTuple, Sequence

import numpy as np
import torch

from lightft import rundir
from lightft.config import PRECISION_CHOICES, TrainConfig
from lightft.data.labels import LabelMap
from lightft.data.tokenize import cut_note, tokenize
from lightft.errors import LightftError, LightftWarning, did_you_mean, first_line
from lightft.evaluation import predict_logits
from lightft.methods import get_method
from lightft.model.forward import Forward
from lightft.model.gelu_epilogue import fuse_gelu_epilogue
from lightft.model.load import looks_local, quiet_transformers, resolve_model
from lightft.runtime import default_device, resolve_precision, store_frozen_in_bf16

# What --compile compiles for prediction: the whole forward. On an H100 (BERT-base size, 4,096 IMDB reviews) it
# predicted 6,743 samples/s against 4,634 eager and 2,545 with only the layers compiled (docs/performance.md).
WHOLE_MODEL = "model:default"


class Predictor:
    """A trained classifier from a run directory (LoRA adapters merged into the weights)."""

    def __init__(self, run_dir: str | Path, *, device: str | torch.device | None = None, compile: bool = False,
                 base_model: str | Path | None = None, precision: str | None = None, merge: bool = True):
        self.compile = compile  # torch.compile of the whole forward, for large inference jobs on a GPU (--compile)
        self.merge = merge  # False keeps a peft adapter apart from the base weights (lightft serve shares one base)
        self.adapter: str | None = None  # the peft adapter to activate before each forward, on a shared model
        self._forward: Forward | None = None
        self.path = rundir.require_run_dir(run_dir)
        self.config = TrainConfig.of_run(self.path)
        self.labels = LabelMap.load(self.path / rundir.LABELS)
        self.method = get_method(self.config.method)
        trained_on = self.config.model
        if base_model is not None and not self.method.needs_base:
            warnings.warn(f"--base-model {base_model} is not used: a {self.method.name} run holds every weight itself",
                          LightftWarning, stacklevel=3)
            base_model = None
        if base_model is not None:  # the base model moved since training
            resolve_model(str(base_model), "--base-model")
            self.config.model = str(Path(base_model).expanduser().resolve()) if Path(base_model).expanduser().exists() \
                else str(base_model)
        elif self.method.needs_base and looks_local(self.config.model) and not Path(self.config.model).exists():
            raise LightftError(f"the base model of run {self.path} was {self.config.model}, which is not there any "
                               "more; pass where it is now with --base-model (base_model=... in Python)")
        self.device = torch.device(device) if device else default_device()
        if precision is not None:  # e.g. fp32 for logits equal to plain transformers/peft
            if precision not in PRECISION_CHOICES:
                raise LightftError(f"--precision must be one of {', '.join(PRECISION_CHOICES)}, got {precision!r}")
            self.config.precision = precision
        self.precision = resolve_precision(self.config.precision, self.device)
        from transformers import AutoTokenizer

        try:
            with quiet_transformers():
                self.tokenizer = AutoTokenizer.from_pretrained(str(self.path), local_files_only=True)
                self.model = self._load_model().to(self.device).eval()
        except LightftError:
            raise
        except Exception as exc:  # missing or truncated files: whatever the loaders raise, the user needs one line
            reason = first_line(exc)
            if base_model is not None:  # most likely another model than the one the run was trained from
                raise LightftError(f"run {self.path} does not load on --base-model {base_model} ({type(exc).__name__}: "
                                   f"{reason}); pass the model it was trained from (config.yaml: {trained_on}), a copy "
                                   "of it, or, if it is that model, restore the run directory from a copy") from None
            raise LightftError(f"run directory {self.path} is damaged or incomplete ({type(exc).__name__}: {reason}); "
                               "restore it from a copy or train it again") from None
        self.model.requires_grad_(False)
        store_frozen_in_bf16(self.model, self.precision, self.device)  # what autocast would cast at every batch
        fuse_gelu_epilogue(self.model, self.device)  # BERT-family feed-forward GEMM + GELU as one call on a GPU

    def _load_model(self) -> torch.nn.Module:
        return self.method.load(self.config, self.labels, self.path, merge=self.merge)

    def logits(self, texts: Sequence[str], *, batch_size: int = 64, quiet: bool = True) -> np.ndarray:
        texts = [texts] if isinstance(texts, str) else list(texts)
        if not isinstance(batch_size, int) or batch_size < 1:
            raise LightftError(f"--batch-size must be a whole number >= 1, got {batch_size!r}")
        check_texts(texts)
        ids = self.token_ids(texts, quiet=quiet)
        note = cut_note(ids, self.config.max_length, "texts")
        if note:  # the run's max length: the model was trained on texts cut there too
            warnings.warn(note.replace("a larger --max-length", "training with a larger --max-length"), LightftWarning,
                          stacklevel=2)
        return self.ids_logits(ids, batch_size=batch_size, quiet=quiet)

    def token_ids(self, texts: Sequence[str], *, quiet: bool = True) -> list[list[int]]:
        """Token ids per text, cut at the run's --max-length as in training."""
        return tokenize(self.tokenizer, texts, self.config.max_length, quiet=quiet)

    def ids_logits(self, ids: list[list[int]], *, batch_size: int = 64, quiet: bool = True,
                   probe_threads: bool = True) -> np.ndarray:
        """Logits for token ids from :meth:`token_ids`, shape (n, labels), in input order (``probe_threads``: see
        ``evaluation.predict_logits``)."""
        if self.adapter is not None and self.model.active_adapter != self.adapter:
            self.model.set_adapter(self.adapter)  # a model shared by several runs' adapters (lightft serve)
        if self._forward is None:
            self._forward = Forward.choose(self.model, self.tokenizer.pad_token_id, self.config.unpadded, self.device,
                                           compile=WHOLE_MODEL if self.compile else False,
                                           max_length=self.config.max_length)
        return predict_logits(self.model, ids, forward=self._forward, batch_size=batch_size,
                              device=self.device, precision=self.precision, quiet=quiet, desc="predicting",
                              probe_threads=probe_threads)

    def predict(self, texts: Sequence[str], *, batch_size: int = 64, quiet: bool = True) -> list[dict]:
        """For each text: ``{"text", "label", "score", "probabilities": {label: p}}`` (a single string is one text).

        Labels keep the type they had in the training data (``0``/``1`` for numeric labels, ``"pos"`` for names), as
        the label and as the probabilities' keys, so ``r["probabilities"][r["label"]] == r["score"]``."""
        texts = [texts] if isinstance(texts, str) else list(texts)
        logits = self.logits(texts, batch_size=batch_size, quiet=quiet)
        return [{"text": text, **row} for text, row in zip(texts, self.rows(logits))]

    def rows(self, logits: np.ndarray) -> list[dict]:
        """``{"label", "score", "probabilities"}`` for each row of logits."""
        probs = torch.softmax(torch.from_numpy(logits).double(), dim=-1).numpy()
        names = self.labels.names
        out = []
        for p in probs:
            best = int(p.argmax())
            out.append({"label": names[best], "score": float(p[best]),
                        "probabilities": {names[i]: float(v) for i, v in enumerate(p)}})
        return out


def check_texts(texts: Sequence) -> None:
    """A one-line error for the first text that is empty or not a string."""
    for i, t in enumerate(texts):
        if not isinstance(t, str) or not t.strip():
            found = "empty" if isinstance(t, str) or t is None else f"{_a(type(t).__name__)}, not a string"
            raise LightftError(f"text {i + 1} of {len(texts)} is {found}; every text to predict needs content")
        try:
            t.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise LightftError(f"text {i + 1} of {len(texts)} has an unpaired surrogate at character {exc.start + 1}, "
                               "which is not text; send valid Unicode (UTF-8)") from None


def load(run_dir: str | Path, **kwargs) -> Predictor:
    """``lightft.load(run_dir).predict(texts)`` — the Python side of ``lightft predict``."""
    import inspect

    known = [p for p in inspect.signature(Predictor.__init__).parameters if p not in ("self", "run_dir")]
    unknown = [k for k in kwargs if k not in known]
    if unknown:
        raise LightftError(f"load() got an unknown keyword {unknown[0]!r}{did_you_mean(unknown[0], known)}; it takes "
                           f"{', '.join(known)}")
    return Predictor(run_dir, **kwargs)


def read_texts(path: str | Path, text_column: str | None = None, run: str | Path | None = None) -> list[str]:
    """Texts from a .txt file or standard input ("-"), one per line, or from a .jsonl/.csv/.tsv/.parquet table: its
    ``text_column``, else the column the run directory ``run`` trained on when the table has it (as ``lightft
    predict RUN --file F`` reads F), else 'text' or the only column of words."""
    return read_inputs(path, text_column, run).texts


class Inputs(NamedTuple):
    texts: list[str]
    columns: dict[str, list[Any]]  # a table's other columns (an id, a gold label, ...), row by row; {} for text lines


def read_inputs(path: str | Path, text_column: str | None = None, run: str | Path | None = None) -> Inputs:
    """``read_texts`` with the table's other columns, which ``predict --output`` writes beside each prediction."""
    path = Path(path)
    stream = str(path) == "-" or (path.exists() and not path.is_dir() and not path.is_file())  # stdin, <(command)
    if stream and text_column is not None:
        raise LightftError(f"--text-column is for table files, and --file {path} is a stream read one text per line; "
                           "save the table to a file and pass that, or drop --text-column")
    if str(path) == "-":
        return Inputs(_lines(sys.stdin.read(), "standard input"), {})
    if path.is_dir():
        raise LightftError(f"--file {path} is a directory; pass a .txt, .jsonl, .csv, .tsv or .parquet file")
    if stream:
        from lightft.data.sources import _suffix

        if _suffix(path) is not None:
            raise LightftError(f"--file {path} is a pipe named like a table; tables are read from regular files: save "
                               "it to a file first, or send one text per line")
        return Inputs(_lines(path.read_text(encoding="utf-8-sig"), str(path)), {})
    if not path.is_file():
        raise LightftError(f"input file {path} not found; pass an existing .txt, .jsonl, .csv, .tsv or .parquet file, "
                           "or - for standard input, with --file")
    if path.name.endswith(".txt"):
        try:
            text = path.read_text(encoding="utf-8-sig")
        except UnicodeDecodeError as exc:
            raise LightftError(f"{path} is not UTF-8 text ({exc.reason}); save it as UTF-8") from None
        return Inputs([line for line in text.splitlines() if line.strip()], {})
    from lightft.data.prepare import TEXT_DEFAULTS, _pick_column
    from lightft.data.sources import _suffix, read_table

    if _suffix(path) is None:
        raise LightftError(f"cannot read {path}: expected a .txt, .jsonl, .jsonl.gz, .csv, .tsv or .parquet file, or - "
                           "for standard input")
    table = read_table(path)
    trained = [] if text_column is not None or run is None else _trained_columns(run, "text")
    column = next((c for c in trained if c in table), None) or \
        _pick_column(table, text_column, TEXT_DEFAULTS, "text", "--text-column")
    texts = list(table[column])
    for i, t in enumerate(texts):
        if not isinstance(t, str) or not t.strip():
            found = "an empty text" if isinstance(t, str) or t is None else f"{_a(type(t).__name__)}, not a text,"
            raise LightftError(f"row {i + 1} of {path} has {found} in column {column!r}; fill it in or drop the row")
    columns = {name: list(values) for name, values in table.items() if name != column}
    gold = next((c for c in (_trained_columns(run, "label") if run is not None else []) if c in columns), None)
    if gold is not None:  # read as training read its labels: a csv's "1" is the class 1 that predict names
        from lightft.data.prepare import _as_int, _as_name, _label_kind, _missing, _whole

        kind = _label_kind(LabelMap.load(rundir.require_run_dir(run) / rundir.LABELS))
        columns[gold] = [v if _missing(v) or not isinstance(v, (str, int, float)) else
                         (_as_int(v) if _whole(v) else v) if kind is int else _as_name(v) for v in columns[gold]]
    return Inputs(texts, columns)


def _trained_columns(run: str | Path, role: str) -> list[str]:
    """The ``role`` ("text" or "label") column a run was told (config.yaml) and the one it found (metrics.json)."""
    path = rundir.require_run_dir(run)
    told = getattr(TrainConfig.of_run(path), f"{role}_column")
    try:
        found = rundir.read_json(path / rundir.METRICS)["data"][f"{role}_column"]
    except (OSError, ValueError, KeyError, TypeError):
        found = None
    return [c for c in (told, found) if isinstance(c, str)]


def _lines(text: str, source: str) -> list[str]:
    """One text per non-blank line of a stream; a stream of JSON objects is classified as it is, with a warning."""
    lines = [line for line in text.splitlines() if line.strip()]
    if lines and sum(line.lstrip().startswith("{") and line.rstrip().endswith("}") for line in lines) > len(lines) / 2:
        warnings.warn(f"the lines of {source} look like JSON objects, and each is classified as it is, braces and "
                      "all; to read the texts of a JSON Lines file, pass it by name: --file FILE.jsonl",
                      LightftWarning, stacklevel=3)
    return lines


def _a(noun: str) -> str:
    return f"{'an' if noun[:1] in 'aeiou' else 'a'} {noun}"
