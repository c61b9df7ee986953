"""The run configuration: one typed dataclass that feeds the Python API, the CLI flags and config.yaml."""

from __future__ import annotations

import contextlib
import dataclasses
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from lightft.errors import LightftError, did_you_mean

SELECT_CHOICES = ("macro_f1", "accuracy")
CLASS_WEIGHT_CHOICES = ("none", "balanced")
PRECISION_CHOICES = ("auto", "bf16", "fp32")
# The TrainConfig fields evaluating reads: `lightft eval`'s flags and `lightft.evaluate`'s keywords.
EVAL_OPTIONS = ("text_column", "label_column", "validation_fraction", "limit_eval", "max_length", "eval_batch_size",
                "seed", "quiet", "precision", "unpadded", "max_tokens")
INIT_CHOICES = ("default", "gaussian", "orthogonal", "pissa", "olora", "mica")


def _opt(default: Any, help: str, *, group: str = "training", metavar: str | None = None):
    return field(default=default, metadata={"help": help, "group": group, "metavar": metavar})


@dataclass
class TrainConfig:
    """Everything that defines a training run. Saved resolved as ``config.yaml`` in the run directory."""

    # data
    model: str = _opt(None, "Encoder to fine-tune: a local directory (save_pretrained layout) or a Hugging Face hub id "
                      "such as bert-base-cased.", group="model and data", metavar="PATH_OR_ID")
    data: str = _opt(None, "Labelled data: a directory of split files (train/validation/test as .jsonl, .jsonl.gz, "
                     ".csv, .tsv or .parquet), a single file, or a hub dataset name (imdb, stanfordnlp/sst2, "
                     "name:config).", group="model and data", metavar="PATH_OR_NAME")
    text_column: str | None = _opt(None, "Column holding the text (default: the first of text, sentence, review, "
                                   "content, question; else the only column of words that is not a label column).",
                                   group="model and data", metavar="NAME")
    label_column: str | None = _opt(None, "Column holding the label (default: the first of label, labels, target, "
                                    "class, category, coarse_label; else the only other column).",
                                    group="model and data", metavar="NAME")
    validation_fraction: float = _opt(0.1, "Share of train held out (stratified, seeded) as test when the data has "
                                      "no test split, then as validation when it has no validation split; "
                                      "validation is never taken from test.",
                                      group="model and data", metavar="F")
    limit_train: int | None = _opt(None, "Train on a seeded random subset of N training rows.",
                                   group="model and data", metavar="N")
    limit_eval: int | None = _opt(None, "Evaluate on seeded random subsets of N validation and N test rows.",
                                  group="model and data", metavar="N")
    max_length: int = _opt(256, "Truncate texts to this many tokens.", group="model and data", metavar="N")
    # method
    method: str = _opt("lora", "Fine-tuning method; `lightft methods` lists them all.", group="method",
                       metavar="NAME")
    rank: int = _opt(8, "Adapter rank r (lora, dora, rslora, adalora, loha, lokr).", group="method", metavar="R")
    alpha: float = _opt(16.0, "Adapter scaling alpha: the update is scaled by alpha/r (alpha/sqrt(r) for rslora).",
                        group="method", metavar="A")
    dropout: float = _opt(0.1, "Dropout on the adapter branch input (lora, dora, rslora, adalora, vera).",
                          group="method", metavar="P")
    targets: str = _opt("auto", "Modules the adapter attaches to: 'auto' (the attention query/value projections of "
                        "the architecture; for ia3 the keys, values and FFN output), 'all-linear', or "
                        "comma-separated module names.", group="method", metavar="NAMES")
    init: Literal["default", "gaussian", "orthogonal", "pissa", "olora", "mica"] = _opt(
        "default", "LoRA initialisation (lora, dora, rslora): default (B=0, A Kaiming), gaussian, orthogonal (even "
        "--rank), pissa or olora (start from the principal directions of each weight; the saved adapter is "
        "converted to apply to the original weights), mica (B fixed to the minor singular directions, only A "
        "trains).", group="method", metavar="INIT")
    vera_rank: int = _opt(256, "VeRA rank: size of the shared frozen random projections (vera).", group="method",
                          metavar="R")
    n_frequency: int = _opt(1000, "Trainable spectral coefficients per target matrix (fourierft).", group="method",
                            metavar="N")
    block_size: int = _opt(32, "Size of the orthogonal blocks that rotate each target's input features (oft, boft); "
                           "it must divide the hidden size.", group="method", metavar="N")
    num_virtual_tokens: int = _opt(20, "Trainable virtual tokens (prefix, prompt, ptuning); they count against the "
                                   "model's positions with --max-length.", group="method", metavar="N")
    # training
    epochs: int = _opt(3, "Passes over the training data.", metavar="N")
    batch_size: int = _opt(16, "Training rows per optimizer micro-batch.", metavar="N")
    grad_accum: int = _opt(1, "Micro-batches accumulated per optimizer update.", metavar="N")
    eval_batch_size: int = _opt(64, "Rows per evaluation batch.", metavar="N")
    lr: float | None = _opt(None, "Peak learning rate (default: the method's own, see `lightft methods`).",
                            metavar="LR")
    weight_decay: float = _opt(0.01, "AdamW weight decay (not applied to biases and LayerNorm).", metavar="W")
    warmup_ratio: float = _opt(0.06, "Share of updates spent warming the learning rate up linearly from 0; it then "
                               "decays linearly to 0.", metavar="F")
    max_grad_norm: float = _opt(1.0, "Clip the gradient norm to this value (0 disables clipping).", metavar="N")
    select: Literal["macro_f1", "accuracy"] = _opt("macro_f1", "Validation metric that picks the best epoch.",
                                                   metavar="METRIC")
    class_weights: Literal["none", "balanced"] = _opt(
        "none", "Weigh the training loss by class: balanced gives each class n / (classes x its training rows), so a "
        "rare class counts as much as a common one (imbalanced data: spam, fraud, rare intents); none weighs every "
        "row alike. Validation and test losses stay unweighted.", metavar="MODE")
    patience: int | None = _opt(None, "Stop after N epochs without a better validation score (default: never).",
                                metavar="N")
    max_tokens: int | None = _opt(None, "Size batches by tokens instead of rows: each batch holds at most N padded "
                                  "tokens (rows of similar length are grouped; --batch-size is then not used), so "
                                  "every step does similar work. Each row counts the same in the loss whatever its "
                                  "batch's size.",
                                  metavar="N")
    group_by_length: bool = _opt(False, "Put training texts of similar length in the same batch: less padding, "
                                 "about a fifth faster on CPU, but at short budgets LoRA trained less reliably that way "
                                 "(docs/performance.md). --max-tokens always groups.")
    unpadded: Literal["auto", "on", "off"] = _opt("auto", "Padding-free batches (real tokens packed into one row, "
                                                  "variable-length flash attention): auto uses them on a CUDA GPU for "
                                                  "BERT, RoBERTa, XLM-R, DistilBERT and ELECTRA.", metavar="MODE")
    compile: bool = _opt(False, "torch.compile the model's repeated layers for training (evaluation stays eager). "
                         "Identical layers share one compiled graph and shapes are dynamic, so a run compiles two "
                         "graphs, not one per length or layer. Pays on a GPU with --max-tokens: BERT-base LoRA on an "
                         "H100 ran 1.56x eager, and an H200 reached its first step in 23 s (6.7 s with inductor's "
                         "caches warm); on a CPU it gave "
                         "no steady speed-up (docs/performance.md). If compiling fails, the run warns and goes on "
                         "without it.")
    precision: Literal["auto", "bf16", "fp32"] = _opt("auto", "Numeric precision: auto is bf16 autocast on a GPU "
                                                      "and on a CPU with native bf16 matmuls (AMX or AVX512-BF16), "
                                                      "fp32 elsewhere; weights being trained stay fp32.", metavar="P")
    seed: int = _opt(42, "Seed for data subsets, the validation split, head initialisation and batch order.",
                     metavar="N")
    baseline: bool = _opt(True, "Evaluate the untrained model on test before training (--no-baseline skips it).")
    # run
    output: str | None = _opt(None, "Run directory to create (default: runs/<data>-<method>-<time>). It must not "
                              "exist yet.", group="output", metavar="DIR")
    quiet: bool = _opt(False, "No progress bars.", group="output")
    checkpoint_minutes: float = _opt(10.0, "Save the training state (trained weights, optimizer, position in the "
                                      "data) every N minutes of training, beside --output as .NAME.checkpoint, so a "
                                      "run that is killed (crash, kill -9, power loss) resumes where it stopped when "
                                      "the same command runs again. SIGUSR1 saves it at once and stops the run (exit "
                                      "75: a job about to be preempted). 0 turns it off; the state is removed once "
                                      "the run directory is written.", group="output", metavar="N")
    resume: bool = _opt(True, "Resume the saved state of an unfinished run with the same settings at --output "
                        "(without --output: the newest under runs/). --no-resume discards it and starts over.",
                        group="output")

    def _check_types(self) -> list[str]:
        """Each field holds its declared type; numbers given as strings (YAML reads ``2e-3`` as one) are converted."""
        problems = []
        for f in dataclasses.fields(self):
            value, tp = getattr(self, f.name), field_types()[f.name]
            optional = type(None) in typing.get_args(tp)
            base = base_type(tp)
            if value is None:
                if not optional and f.name not in ("model", "data"):  # model/data get their own message below
                    problems.append(f"--{flag(f.name)} needs a value, got None")
                continue
            if base is bool:
                if not isinstance(value, bool):
                    problems.append(f"--{flag(f.name)} must be true or false, got {value!r}")
                continue
            if base is str:
                if not isinstance(value, str):
                    problems.append(f"--{flag(f.name)} must be a string, got {value!r} ({type(value).__name__})")
                continue
            converted = None  # int fields take ints or digit strings; float fields ints, floats or numeric strings
            if not isinstance(value, bool) and isinstance(value, (int, str) if base is int else (int, float, str)):
                with contextlib.suppress(ValueError, OverflowError):
                    converted = base(value)
            if converted is None or (base is float and not math.isfinite(converted)):
                kind = "a finite number" if base is float else "a whole number"
                problems.append(f"--{flag(f.name)} must be {kind}, got {value!r}")
                continue
            setattr(self, f.name, converted)
        return problems

    def validate(self) -> "TrainConfig":
        """Check every field at the boundary and raise one error listing all problems."""
        problems = self._check_types()
        if problems:
            raise LightftError("; ".join(problems))
        if not self.model:
            problems.append("--model is required (a local model directory or a hub id such as bert-base-cased)")
        if not self.data:
            problems.append("--data is required (a directory of split files, a file, or a hub dataset name)")
        positive = ["max_length", "epochs", "batch_size", "grad_accum", "eval_batch_size", "rank", "vera_rank",
                    "n_frequency", "block_size", "num_virtual_tokens"]
        for name in positive:
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                problems.append(f"--{flag(name)} must be a whole number >= 1, got {value!r}")
        for name in ("limit_train", "limit_eval", "patience", "max_tokens"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 1):
                problems.append(f"--{flag(name)} must be a whole number >= 1, got {value!r}")
        for name in ("validation_fraction", "dropout", "warmup_ratio"):
            value = getattr(self, name)
            upper_open = name == "validation_fraction"
            if not isinstance(value, (int, float)) or value < 0 or value >= 1 or (upper_open and value == 0):
                lo = "(0" if upper_open else "[0"
                problems.append(f"--{flag(name)} must be in {lo}, 1), got {value!r}")
        if not 0 <= self.seed < 2**32:
            problems.append(f"--seed must be in 0..{2**32 - 1}, got {self.seed!r}")
        if self.lr is not None and not self.lr > 0:
            problems.append(f"--lr must be > 0, got {self.lr!r}")
        if self.alpha <= 0:
            problems.append(f"--alpha must be > 0, got {self.alpha!r}")
        for name in ("weight_decay", "max_grad_norm", "checkpoint_minutes"):
            if getattr(self, name) < 0:
                problems.append(f"--{flag(name)} must be >= 0 (0 turns it off), got {getattr(self, name)!r}")
        if self.select not in SELECT_CHOICES:
            problems.append(f"--select must be one of {', '.join(SELECT_CHOICES)}, got {self.select!r}")
        if self.class_weights not in CLASS_WEIGHT_CHOICES:
            problems.append(f"--class-weights must be one of {', '.join(CLASS_WEIGHT_CHOICES)}, got "
                            f"{self.class_weights!r}")
        if self.unpadded not in ("auto", "on", "off"):
            problems.append(f"--unpadded must be one of auto, on, off, got {self.unpadded!r}")
        if self.max_tokens is not None and self.max_tokens < self.max_length:
            problems.append(f"--max-tokens ({self.max_tokens}) must be at least --max-length ({self.max_length}) so the "
                            "longest text fits in a batch")
        if self.init not in INIT_CHOICES:
            problems.append(f"--init must be one of {', '.join(INIT_CHOICES)}, got {self.init!r}")
        elif self.init == "orthogonal" and self.method in ("lora", "dora", "rslora") and self.rank % 2:
            problems.append(f"--init orthogonal needs an even --rank, got {self.rank!r}")
        elif self.init == "mica" and self.method == "dora":
            problems.append("--init mica cannot be combined with --method dora (peft supports no such combination)")
        if self.precision not in PRECISION_CHOICES:
            problems.append(f"--precision must be one of {', '.join(PRECISION_CHOICES)}, got {self.precision!r}")
        from lightft.methods import METHODS  # local: methods import heavy libraries

        if self.method not in METHODS:
            problems.append(f"unknown --method {self.method!r}; choose one of: {', '.join(METHODS)}")
        if problems:
            raise LightftError("; ".join(problems))
        return self

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def save(self, path: Path) -> None:
        from lightft.rundir import atomic_write_text

        atomic_write_text(path, yaml.safe_dump(self.to_dict(), sort_keys=False))

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "TrainConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            hint = did_you_mean(unknown[0], known) if len(unknown) == 1 else ""
            raise LightftError(f"unknown config key(s) {', '.join(unknown)}{hint}; expected some of: "
                               f"{', '.join(sorted(known))}")
        return cls(**values)

    @classmethod
    def load(cls, path: str | Path) -> "TrainConfig":
        path = Path(path)
        if path.is_dir() and (path / "config.yaml").is_file():  # a run directory: its resolved config
            path = path / "config.yaml"
        elif path.is_dir():
            model = " (it holds config.json: a model, which goes to --model / model=)" if (path / "config.json").is_file() else ""
            raise LightftError(f"config {path} is a directory without a config.yaml{model}; pass the config.yaml of an "
                               "earlier run, or its run directory")
        if not path.is_file():
            raise LightftError(f"config file {path} not found; pass the config.yaml of an earlier run")
        try:
            values = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except UnicodeDecodeError:
            raise LightftError(f"config file {path} is not UTF-8 text; pass the config.yaml of an earlier run") from None
        except yaml.YAMLError as exc:
            raise LightftError(f"config file {path} is not valid YAML ({_yaml_where(exc)}); fix it there") from None
        if not isinstance(values, dict):
            raise LightftError(f"config file {path} must hold a mapping of option: value, found {type(values).__name__}")
        return cls.from_dict(values)

    @classmethod
    def of_run(cls, run_dir: str | Path, fix: str = "restore it from a copy or train it again") -> "TrainConfig":
        """A finished run directory's config.yaml, checked as ``train --config`` checks one. It was written by lightft,
        so one that fails (empty, not YAML, a value of the wrong kind) means the run directory is damaged: one line
        that says so and what is wrong, ending in ``fix``, rather than a traceback where the value is first used."""
        path = Path(run_dir) / "config.yaml"
        try:
            values = yaml.safe_load(path.read_text(encoding="utf-8"))
            if not isinstance(values, dict):
                problem = "is empty" if values is None else \
                    f"holds a {type(values).__name__} where a mapping of option: value belongs"
            else:
                return cls.from_dict(values).validate()
        except UnicodeDecodeError:
            problem = "is not UTF-8 text"
        except yaml.YAMLError as exc:
            problem = f"is not valid YAML ({_yaml_where(exc)})"
        except LightftError as error:
            problem = f"fails the checks `train --config` makes ({error})"
        raise LightftError(f"run directory {run_dir} is damaged: its config.yaml {problem}; {fix}")


def _yaml_where(exc: "yaml.YAMLError") -> str:
    """What a YAML parser found wrong and where: ``mapping values are not allowed here at line 3, column 9``."""
    mark, problem = getattr(exc, "problem_mark", None), getattr(exc, "problem", None)
    return f"{problem} at line {mark.line + 1}, column {mark.column + 1}" if mark and problem else str(exc).splitlines()[0]


def base_type(tp):
    """``int | None`` -> int; ``Literal[...]`` (of strings) -> str."""
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        tp = next(a for a in typing.get_args(tp) if a is not type(None))
    if typing.get_origin(tp) is typing.Literal:
        return str
    return tp


def flag(name: str) -> str:
    """The CLI spelling of a config field: ``limit_train`` -> ``limit-train``."""
    return name.replace("_", "-")


def field_types() -> dict[str, Any]:
    """Resolved type hints of the config fields (used by the CLI to build flags)."""
    return typing.get_type_hints(TrainConfig)
