"""Several run directories loaded for serving: adapters trained from the same base share one copy of it.

Runs whose peft adapters can live side by side in one ``PeftModel`` (the same base model and peft type, on the same
device and precision) are loaded onto one base, unmerged, and a prediction activates its run's adapter first. Each
run keeps its own head, whatever its number of labels: sentiment (2) and topic (6) runs share one encoder. Every other run (full, bitfit, head, soft prompts, or an adapter with nothing to share with) is
loaded on its own, merged, exactly as ``lightft predict`` loads it. Either way a run predicts what
``lightft.load(run).predict`` predicts (to float rounding: an unmerged adapter adds its update at run time).
"""

from __future__ import annotations

import contextlib
import functools
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import torch

from lightft import rundir
from lightft.config import TrainConfig
from lightft.data.labels import LabelMap
from lightft.errors import LightftError
from lightft.methods import get_method
from lightft.model.load import looks_local
from lightft.predict import Predictor
from lightft.runtime import default_device, resolve_precision


CHARS_PER_TOKEN = 50  # far beyond any tokenizer's characters per token: what is cut is past --max-length anyway


@functools.lru_cache(maxsize=16)
def _visible(limit: int) -> re.Pattern:
    return re.compile(r"(?:\s*\S){0,%d}\s*" % limit)


def cut_text(text: str, limit: int) -> str:
    """``text`` cut after ``limit`` characters that are not whitespace (no token holds more than ``CHARS_PER_TOKEN`` of
    them, so what goes is past --max-length tokens), and at ``4 * limit`` characters in all: a text led by pages of blank lines keeps its
    words, and a 20 MB one never reaches the tokenizer whole."""
    if len(text) <= limit:
        return text
    return text[:min(_visible(limit).match(text).end(), 4 * limit)]


class _CannotShare(LightftError):
    """peft refused a second adapter on this base (e.g. VeRA adapters with other projection seeds)."""


class _Adapter(Predictor):
    """A run's adapter loaded onto another run's unmerged peft model."""

    def __init__(self, run_dir: Path, host: Predictor, adapter: str, **kwargs):
        self.host, self.adapter_name = host, adapter
        super().__init__(run_dir, merge=False, **kwargs)
        self.adapter = adapter

    def _load_model(self) -> torch.nn.Module:
        model = self.host.model
        try:
            with _heads_sized_for(model, self.config, self.labels):
                model.load_adapter(str(self.path), adapter_name=self.adapter_name)
                _check_heads_loaded(model, self.adapter_name)
        except (ValueError, RuntimeError, KeyError) as exc:
            if self.adapter_name in getattr(model, "peft_config", {}):
                try:
                    model.delete_adapter(self.adapter_name)
                except Exception:  # a half-added adapter: nothing more to undo
                    pass
            raise _CannotShare(str(exc).splitlines()[0] if str(exc) else type(exc).__name__) from None
        return model


def _wrappers(model) -> dict:
    from peft.utils.other import ModulesToSaveWrapper

    return {name: m for name, m in model.get_base_model().named_modules() if isinstance(m, ModulesToSaveWrapper)}


@contextlib.contextmanager
def _heads_sized_for(model, config: TrainConfig, labels: LabelMap):
    """While an adapter loads, the head peft copies for it (``ModulesToSaveWrapper.original_module``) is one with
    this run's number of labels: the base's head modules built for them from its config alone (no weights read),
    filled with nan, for the adapter's saved head to overwrite (``_check_heads_loaded``)."""
    wrappers = _wrappers(model)
    if not wrappers or len(labels.names) == model.get_base_model().config.num_labels:
        yield
        return
    device = next(model.parameters()).device
    donor = _weightless_model(config.model, labels)
    originals = {name: w.original_module for name, w in wrappers.items()}
    try:
        for name, wrapper in wrappers.items():
            head = donor.get_submodule(name).to_empty(device=device)
            with torch.no_grad():
                for tensor in [*head.parameters(), *head.buffers()]:
                    if tensor.is_floating_point():
                        tensor.fill_(float("nan"))
            wrapper.original_module = head
        yield
    finally:
        for name, wrapper in wrappers.items():
            wrapper.original_module = originals[name]


def _weightless_model(spec: str, labels: LabelMap) -> torch.nn.Module:
    """The base model's classifier for ``labels`` on the meta device: shapes only."""
    from transformers import AutoConfig, AutoModelForSequenceClassification

    from lightft.model.load import quiet_transformers, resolve_model

    name, local_only = resolve_model(spec)
    with quiet_transformers():
        config = AutoConfig.from_pretrained(name, local_files_only=local_only, num_labels=len(labels),
                                            id2label=labels.id2label, label2id=labels.label2id)
        with torch.device("meta"):
            return AutoModelForSequenceClassification.from_config(config, dtype=torch.float32)


def _check_heads_loaded(model, adapter: str) -> None:
    """Every tensor of the adapter's own head came from its file (none is left nan): else it loads on its own."""
    for name, wrapper in _wrappers(model).items():
        own = wrapper.modules_to_save[adapter] if adapter in wrapper.modules_to_save else None
        if own is not None and any(t.is_floating_point() and torch.isnan(t).any()
                                   for t in [*own.parameters(), *own.buffers()]):
            raise ValueError(f"the adapter's file lacks part of its head {name}")


@dataclass
class Served:
    """One served run: its name, its predictor, and which runs share its base model."""

    name: str
    predictor: Predictor
    shares_with: tuple[str, ...] = ()

    def describe(self) -> dict:
        p = self.predictor
        return {"name": self.name, "run": str(p.path), "method": p.config.method, "base_model": p.config.model,
                "labels": list(p.labels.names), "max_length": p.config.max_length, "precision": p.precision,
                "device": str(p.device), "shares_base_with": list(self.shares_with)}


def name_runs(runs: str | Path | Sequence[str | Path] | Mapping[str, str | Path]) -> dict[str, Path]:
    """Names for the runs to serve: ``{name: run}`` as given, ``NAME=RUN`` strings, or each run directory's name."""
    if isinstance(runs, (str, Path)):
        runs = [runs]
    if isinstance(runs, Mapping):
        pairs = [(str(k), Path(v)) for k, v in runs.items()]
    else:
        pairs = []
        for run in runs:
            text = str(run)
            name, sep, path = text.partition("=")
            if sep and name and not Path(text).exists():
                pairs.append((name, Path(path)))
            else:
                pairs.append((Path(text).expanduser().resolve().name, Path(text)))
    if not pairs:
        raise LightftError("no run to serve; pass one or more run directories (NAME=RUN_DIR to name one)")
    named: dict[str, Path] = {}
    for name, path in pairs:
        if not name.strip():
            raise LightftError(f"the name given to run {path} is empty; use NAME=RUN_DIR with a NAME")
        if name in named:
            raise LightftError(f"two runs are named {name!r} ({named[name]} and {path}); name them apart with "
                               f"NAME=RUN_DIR, e.g. {name}-2={path}")
        named[name] = path
    return named


class ModelPool:
    """The runs a server predicts with, each by name; not thread-safe (the micro-batcher's one thread calls it)."""

    def __init__(self, runs, *, device: str | torch.device | None = None, precision: str | None = None,
                 base_model: str | Path | None = None, share: bool = True):
        named = name_runs(runs)
        device = torch.device(device) if device else default_device()
        groups: dict[tuple, list[str]] = {}
        for name, path in named.items():
            key = _share_key(path, device, precision, base_model) if share else None
            groups.setdefault(key if key is not None else ("alone", name), []).append(name)
        self.served: dict[str, Served] = {}
        options = dict(device=device, precision=precision, base_model=base_model)
        for key, names in groups.items():
            if key[0] == "alone" or len(names) == 1:
                for name in names:
                    self.served[name] = Served(name, Predictor(named[name], **options))
                continue
            host = Predictor(named[names[0]], merge=False, **options)
            host.adapter = host.model.active_adapter
            shared = [names[0]]
            self.served[names[0]] = Served(names[0], host)
            for i, name in enumerate(names[1:], 1):
                try:
                    predictor: Predictor = _Adapter(named[name], host, f"lightft_{i}", **options)
                    shared.append(name)
                except _CannotShare:
                    predictor = Predictor(named[name], **options)
                self.served[name] = Served(name, predictor)
            for name in shared:
                self.served[name].shares_with = tuple(n for n in shared if n != name)
        self.served = {name: self.served[name] for name in named}  # the order the runs were given

    def __contains__(self, name: str) -> bool:
        return name in self.served

    def names(self) -> list[str]:
        return list(self.served)

    def predict(self, name: str, texts: Sequence[str], *, batch_size: int = 64) -> list[dict]:
        """``{"label", "score", "probabilities", "tokens"}`` per text, with run ``name``."""
        predictor = self.served[name].predictor
        # the tokenizer reads a whole text before cutting it at --max-length: a 20 MB text held every run for 30 s
        limit = CHARS_PER_TOKEN * predictor.config.max_length
        ids = predictor.token_ids([cut_text(t, limit) for t in texts])
        # no thread probe: it would cost more than a small micro-batch's forward (set OMP_NUM_THREADS when other
        # busy processes share the cores)
        rows = predictor.rows(predictor.ids_logits(ids, batch_size=batch_size, probe_threads=False))
        for row, x in zip(rows, ids):
            row["tokens"] = len(x)  # --max-length tokens: the text was cut there (or is exactly that long)
        return rows

    def parameter_bytes(self) -> int:
        """Bytes of every distinct tensor held (a shared base counted once)."""
        seen: set[int] = set()
        total = 0
        for served in self.served.values():
            model = served.predictor.model
            for t in [*model.parameters(), *model.buffers()]:
                key = t.untyped_storage().data_ptr()
                if key not in seen:
                    seen.add(key)
                    total += t.untyped_storage().nbytes()
        return total


def _share_key(path: Path, device: torch.device, precision: str | None, base_model) -> tuple | None:
    """What must be equal for two runs to share one base model, or None when this run cannot share."""
    path = rundir.require_run_dir(path)
    config = TrainConfig.of_run(path)
    method = get_method(config.method)
    adapter_config = path / "adapter_config.json"
    if not (method.needs_base and getattr(method, "mergeable", False) and adapter_config.is_file()):
        return None
    try:
        peft_type = json.loads(adapter_config.read_text()).get("peft_type")
    except (OSError, ValueError):
        return None  # the loader says what is wrong with it
    model = str(base_model) if base_model is not None else config.model
    if looks_local(model) and Path(model).expanduser().exists():
        model = str(Path(model).expanduser().resolve())
    return ("shared", model, peft_type, str(device), resolve_precision(precision or config.precision, device))
