"""Load an encoder classifier and its tokenizer from a local directory or the hub, with labels from the data."""

from __future__ import annotations

import contextlib
import io
import logging
from pathlib import Path

import torch
import transformers
from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

from lightft.data.labels import LabelMap
from lightft.errors import LightftError
from lightft.hub import require_hub


@contextlib.contextmanager
def _quiet_transformers():
    """Silence transformers' load report (the new head is expected to be missing from the checkpoint)."""
    previous = transformers.logging.get_verbosity()
    bars = transformers.utils.logging.is_progress_bar_enabled()
    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()  # "Loading weights" bars; lightft shows its own
    logging.getLogger("transformers").setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        transformers.logging.set_verbosity(previous)
        if bars:
            transformers.utils.logging.enable_progress_bar()


def _resolve(spec: str) -> tuple[str, bool]:
    """Return (name_or_path, local_files_only). A hub id already in the local cache loads offline."""
    path = Path(spec).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise LightftError(f"model directory {path} has no config.json; pass a directory saved with save_pretrained")
        return str(path.resolve()), True
    if path.exists() or spec.startswith((".", "/", "~")) or spec.count("/") > 1:
        raise LightftError(f"model {spec!r} not found; pass an existing model directory or a hub id with --model")
    try:
        AutoConfig.from_pretrained(spec, local_files_only=True)
        return spec, True
    except OSError:
        require_hub("model", spec, "--model")
        return spec, False


def load_tokenizer(spec: str):
    name, local_only = _resolve(spec)
    try:
        with _quiet_transformers():
            return AutoTokenizer.from_pretrained(name, local_files_only=local_only)
    except (OSError, ValueError) as exc:
        raise LightftError(f"could not load a tokenizer from {spec!r}: {str(exc).splitlines()[0]}") from None


def load_model(spec: str, labels: LabelMap, *, seed: int = 42, **overrides):
    """The encoder with a sequence-classification head sized and named from ``labels``.

    The head is initialised from ``seed``, so the baseline and every method start from the same head.
    """
    name, local_only = _resolve(spec)
    torch.manual_seed(seed)
    try:
        with _quiet_transformers():
            return AutoModelForSequenceClassification.from_pretrained(
                name,
                local_files_only=local_only,
                num_labels=len(labels),
                id2label=labels.id2label,
                label2id=labels.label2id,
                **overrides,
            )
    except (OSError, ValueError) as exc:
        raise LightftError(f"could not load model {spec!r} for sequence classification: {str(exc).splitlines()[0]}") from None
