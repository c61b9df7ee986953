"""The train and evaluate pipelines: data -> model + method -> fit -> test -> run directory.

``train`` does all the expensive work first and writes the run directory last, in one staged
step, so a failure never leaves a half-written run and a finished run is never half-saved.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import platform
import time
import warnings
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import torch

from lightft import pause, rundir
from lightft.config import EVAL_OPTIONS, TrainConfig, flag
from lightft.data import prepare_splits
from lightft.data.batching import TokenizedDataset
from lightft.data.labels import balanced_weights
from lightft.data.tokenize import check_room_for_text, cut_note, mostly_cut, tokenize
from lightft.errors import LightftError, LightftWarning, SharedError, did_you_mean, warn_user
from lightft.evaluation import evaluate_split
from lightft.methods import count_parameters, get_method
from lightft.model import Forward, head_module_names, load_model, load_tokenizer
from lightft.model.load import cached_hub_id, check_max_length, looks_local, resolve_model
from lightft.html_report import markdown_to_html
from lightft.plots import training_svg
from lightft.report import render_report
from lightft.runtime import (
    broadcast_from_main,
    gather_from_all,
    default_device,
    make_accelerator,
    process_count,
    process_rank,
    resolve_precision,
    seed_everything,
    store_frozen_in_bf16,
)
from lightft.training import Hyper, checkpoint, fit
from lightft.training.checkpoint import Checkpoint, Snapshot, StateLocked
from lightft.training.loop import Diverged, restore


IMBALANCE = 10  # the largest training class this many times the smallest: a data note suggests --class-weights


@dataclass
class RunResult:
    """A finished run: where it lives and what it measured."""

    path: Path
    metrics: dict[str, Any]
    config: TrainConfig


def resolve_config(config: TrainConfig | str | Path | None = None, **overrides) -> TrainConfig:
    """Build a validated config from a TrainConfig, a config.yaml path (or a run directory), and/or keyword
    overrides. Paths may be given as ``pathlib.Path`` (any ``os.PathLike``)."""
    trained_in, config_source = None, config
    if isinstance(config, (str, os.PathLike)):
        trained_in = _processes_of(Path(config))
        config = TrainConfig.load(config)
    overrides = {k: os.fspath(v) if isinstance(v, os.PathLike) else v for k, v in overrides.items()}
    if config is not None and not isinstance(config, (TrainConfig, dict)):
        raise LightftError(f"config must be a TrainConfig, a dict of options or a config.yaml path, "
                           f"got {type(config).__name__}")
    base = dict(config) if isinstance(config, dict) else dataclasses.asdict(config) if config is not None else {}
    switched = "method" in overrides and base.get("method", overrides["method"]) != overrides["method"]
    if switched and base.get("lr") is not None and "lr" not in overrides:
        # A saved config.yaml holds its own method's resolved rate; full fine-tuning at LoRA's 2e-3 diverges.
        warnings.warn(f"--method {overrides['method']} replaces the config's {base['method']}, so its lr "
                      f"{base['lr']:g} is dropped for {overrides['method']}'s default; pass --lr to choose one",
                      LightftWarning, stacklevel=2)
        base["lr"] = None
    cfg = TrainConfig.from_dict({**base, **overrides}).validate()
    now = process_count()
    if trained_in not in (None, now) and "batch_size" not in overrides:  # --batch-size is per process
        rows, same = trained_in * cfg.batch_size, trained_in * cfg.batch_size / now
        advice = f"pass --batch-size {same:g} for the same updates" if same == int(same) else \
            f"no whole --batch-size gives the same {rows} rows per update here"
        run = config_source if Path(config_source).is_dir() else Path(config_source).parent
        warnings.warn(f"run {run} was trained in {trained_in} process{'es' if trained_in > 1 else ''} of "
                      f"--batch-size {cfg.batch_size} each ({rows} rows per update), and {now} "
                      f"process{'es train' if now > 1 else ' trains'} {now * cfg.batch_size} rows per update here; "
                      f"{advice}", LightftWarning, stacklevel=2)
    return cfg


def _processes_of(config: Path) -> int | None:
    """How many processes trained the run whose config.yaml (or run directory) ``config`` is: its metrics.json's
    ``train.processes`` (1 for runs from before it was recorded); None when ``config`` is no run's."""
    metrics = (config if config.is_dir() else config.parent) / rundir.METRICS
    try:
        processes = rundir.read_json(metrics)["train"].get("processes", 1)
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    return processes if isinstance(processes, int) and processes >= 1 else None


def _same_file(a: str, b: str | None) -> bool:
    try:
        return b is not None and Path(b).expanduser().is_file() and Path(a).expanduser().samefile(Path(b).expanduser())
    except OSError:
        return False


def _absolute_if_local(spec: str) -> str:
    path = Path(spec).expanduser()
    return str(path.resolve()) if path.exists() else spec


def _default_prefix(cfg: TrainConfig) -> str:
    return f"{Path(cfg.data.rstrip('/')).name.split('.')[0] or 'data'}-{cfg.method}-"


def default_output(cfg: TrainConfig) -> Path:
    return Path("runs") / f"{_default_prefix(cfg)}{datetime.now():%Y%m%d-%H%M%S}"


def _saved_state(cfg: TrainConfig, output: Path) -> tuple[Checkpoint, Snapshot | None]:
    """The training state for a run bound for ``output`` (locked for this process when there is one or saving is
    on), and what it holds when this run resumes it. Other settings: a one-line error; ``--no-resume``: cleared."""
    ckpt = Checkpoint(checkpoint.path_for(output), cfg.checkpoint_minutes * 60, config=cfg.to_dict())
    ckpt.remove_leftovers()
    if not ckpt.path.exists() and cfg.checkpoint_minutes <= 0:
        return ckpt, None
    ckpt.acquire(output)
    if not ckpt.exists():  # a new run, or one killed before its first save finished: nothing to resume
        ckpt.clear()
        return ckpt, None
    if not cfg.resume:
        ckpt.clear()
        warn_user(f"--no-resume: discarded the saved state of an unfinished run bound for {output}")
        return ckpt, None
    try:
        saved = TrainConfig.load(ckpt.path / rundir.CONFIG).to_dict()
    except LightftError as error:
        ckpt.release()
        raise ckpt.damaged(f"{rundir.CONFIG}: {error}") from None
    diffs = checkpoint.differences(saved, ckpt.config, _unused_options(cfg.method))
    if diffs:
        ckpt.release()
        more = f" and {len(diffs) - 3} more" if len(diffs) > 3 else ""
        raise LightftError(f"{output} has the saved state of an unfinished run with other settings "
                           f"({'; '.join(diffs[:3])}{more}); run it with those settings to resume it, pass --no-resume "
                           "to discard it and start over, or pass another --output")
    try:
        trained_in, here = ckpt.meta().get("processes", 1), process_count()
        if trained_in != here:  # --batch-size is per process, and each process's share of the batches is its own
            how = ("the same command without accelerate launch" if trained_in == 1 else
                   f"accelerate launch --num_processes {trained_in}, or torchrun --nproc_per_node {trained_in}")
            raise LightftError(f"{output} has the saved state of an unfinished run trained in {_processes(trained_in)}, "
                               f"and {_processes(here)} train{'s' if here == 1 else ''} here; resume it in "
                               f"{_processes(trained_in)} ({how}), pass --no-resume to discard it and start over, or "
                               "pass another --output")
        return ckpt, ckpt.load()
    except LightftError:
        ckpt.release()
        raise


def _processes(n: int) -> str:
    return f"{n} process{'es' if n > 1 else ''}"


def _claim_default_output(cfg: TrainConfig, output: Path, fingerprint: str) -> tuple[Path, Checkpoint,
                                                                                      Snapshot | None]:
    """Without ``--output``: the newest unfinished run of the same command, settings, rows and process count (its
    default name holds another time), else ``output``, or the next free name when another run started in the same
    second; with its training state, locked for this process."""
    unfinished = checkpoint.find_unfinished(output.parent, _default_prefix(cfg), cfg.to_dict(), fingerprint,
                                            _unused_options(cfg.method), process_count())
    base, output = output, unfinished or output
    names = (base.with_name(f"{base.name}-{n}") for n in range(2, 102))
    while True:
        cfg.output = str(output)
        try:
            ckpt, resume = _saved_state(cfg, output)
            return output, ckpt, resume
        except StateLocked:  # another run started in the same second: this one takes the next free name
            output = next((name for name in names if not os.path.lexists(name)
                           and not checkpoint.path_for(name).exists()), None)
            if output is None:
                raise


def _check_rows(cfg: TrainConfig, output: Path, resume: Snapshot | None, fingerprint: str) -> None:
    if resume is not None and resume.extra.get("fingerprint") != fingerprint:
        raise LightftError(f"{output} has the saved state of an unfinished run trained on other rows than --data "
                           f"{cfg.data} holds now (the files changed since); pass --no-resume to discard it and "
                           "start over, or pass another --output")


def _environment(device: torch.device, precision: str) -> dict:
    import peft
    import transformers

    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else None
    return {
        "device": gpu or f"cpu ({torch.get_num_threads()} threads, {platform.processor() or platform.machine()})",
        "precision": precision,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "peft": peft.__version__,
        "python": platform.python_version(),
    }


class Session:
    """Data, tokenizer and device for one config: shared by train and evaluate."""

    def __init__(self, cfg: TrainConfig, label_map=None, *, evaluate: str | None = None, tokenizer=None):
        self.cfg = cfg
        seed_everything(cfg.seed)
        self.splits = prepare_splits(
            cfg.data, text_column=cfg.text_column, label_column=cfg.label_column,
            validation_fraction=cfg.validation_fraction, limit_train=cfg.limit_train,
            limit_eval=cfg.limit_eval, seed=cfg.seed, label_map=label_map, evaluate=evaluate,
        )
        self.tokenizer = tokenizer or load_tokenizer(cfg.model)
        check_room_for_text(self.tokenizer, cfg.max_length, repr(cfg.model))
        self.device = default_device()
        self.precision = resolve_precision(cfg.precision, self.device)
        self._ids: dict[str, list[list[int]]] = {}

    def ids(self, split: str) -> list[list[int]]:
        if split not in self._ids:
            texts = getattr(self.splits, split).texts
            self._ids[split] = tokenize(self.tokenizer, texts, self.cfg.max_length, desc=f"tokenizing {split}", quiet=self.cfg.quiet)
            note = cut_note(self._ids[split], self.cfg.max_length, f"{split} texts")
            if note:
                self.splits.notes.append(note)
            if split == "train" and mostly_cut(self._ids[split], self.cfg.max_length):
                warn_user(note)
        return self._ids[split]

    def forward_for(self, model, *, training: bool = False) -> Forward:
        """``--compile`` compiles the training forward only: evaluation runs eager, which on an H100 predicted faster
        than the compiled layers (4,634 vs 2,545 samples/s, docs/performance.md) and compiles nothing more."""
        return Forward.choose(model, self.tokenizer.pad_token_id, self.cfg.unpadded, self.device,
                              compile=self.cfg.compile and training, max_length=self.cfg.max_length)

    def evaluate(self, model, split: str, desc: str) -> dict:
        return evaluate_split(
            model, self.ids(split), getattr(self.splits, split).labels, [str(n) for n in self.splits.labels.names],
            forward=self.forward_for(model), batch_size=self.cfg.eval_batch_size, max_tokens=self.cfg.max_tokens,
            device=self.device, precision=self.precision, quiet=self.cfg.quiet, desc=desc,
        )

    def data_summary(self) -> dict:
        s = self.splits
        return {"name": s.name, "source": self.cfg.data, "sizes": s.sizes(), "text_column": s.text_column,
                "label_column": s.label_column, "labels": [str(n) for n in s.labels.names], "notes": s.notes,
                "fingerprint": s.fingerprint()}


def train(config: TrainConfig | str | Path | None = None, **overrides) -> RunResult:
    """Fine-tune ``model`` on ``data`` with ``method`` and write a run directory.

    Mirrors ``lightft train``: keyword names are the CLI flags with underscores, e.g.
    ``lightft.train(model="path/to/minilm", data="data/", method="lora", epochs=1)``. A pause request
    (``lightft.pause.request()``, what SIGUSR1 calls in the CLI) saves the training state and raises ``Paused``.
    """
    try:
        return _train_command(config, **overrides)
    finally:
        pause.clear()  # a request that came after this run's training is not the next run's


def _train_command(config: TrainConfig | str | Path | None, **overrides) -> RunResult:
    with _alike():
        cfg = resolve_config(config, **overrides)
        method = get_method(cfg.method)
    _warn_unused_method_flags(method, overrides)
    cfg.model, cfg.data = _absolute_if_local(cfg.model), _absolute_if_local(cfg.data)
    cfg.lr = cfg.lr if cfg.lr is not None else method.lr
    output = Path(cfg.output) if cfg.output else default_output(cfg)
    explicit, cfg.output = bool(cfg.output), str(output)
    if process_count() > 1:  # accelerate launch: data-parallel training, written by the main process
        return _train_in_processes(cfg, method, output if explicit else Path(broadcast_from_main(str(output))),
                                   explicit)
    rundir.check_output_free(output)
    ckpt, resume = _saved_state(cfg, output) if explicit else (None, None)  # other settings: refused before any work
    try:
        session = Session(cfg)
        fingerprint = session.splits.fingerprint()
        if not explicit:  # the same command again: its default name holds another time
            output, ckpt, resume = _claim_default_output(cfg, output, fingerprint)
        _check_rows(cfg, output, resume, fingerprint)
        return _train(cfg, method, output, session, fingerprint, ckpt, resume)
    finally:
        if ckpt is not None:
            ckpt.close()  # a saved state stays for the same command; an empty folder goes


def _train_in_processes(cfg: TrainConfig, method, output: Path, explicit: bool) -> RunResult:
    """``train`` in one of several processes (``accelerate launch``): each trains on its share of every batch plan,
    DDP averages the gradients, every process validates, and the main one tests and writes the run directory
    (metrics.json's ``train.processes`` says how many: ``--batch-size`` is per process). The main process claims and
    checks the training state as one process would and tells the others what it found (every process stops with the
    same line, or none does); every process then reads a state to resume, each taking its own part of it."""
    main = process_rank() == 0
    cfg.output = str(output)
    with _alike():
        rundir.check_output_free(output)
    ckpt, resume, problem = None, None, None
    if main and explicit:  # other settings, a live run or another process count: refused before any work
        try:
            ckpt, resume = _saved_state(cfg, output)
        except LightftError as error:
            problem = str(error)
    _raise_everywhere(broadcast_from_main(problem))
    try:
        with _alike():
            session = Session(cfg)
        fingerprint = session.splits.fingerprint()
        if main:
            try:
                if not explicit:  # the same command again: its default name holds another time
                    output, ckpt, resume = _claim_default_output(cfg, output, fingerprint)
                _check_rows(cfg, output, resume, fingerprint)
            except LightftError as error:
                problem = str(error)
        problem, name, resuming = broadcast_from_main((problem, str(output), resume is not None))
        _raise_everywhere(problem)
        output, cfg.output = Path(name), name
        if not main:  # the main process holds the state's lock (and alone writes it); the others read it
            ckpt = Checkpoint(checkpoint.path_for(output), cfg.checkpoint_minutes * 60, config=cfg.to_dict())
            resume = ckpt.load() if resuming else None
        return _train(cfg, method, output, session, fingerprint, ckpt, resume)
    finally:
        if ckpt is not None:
            ckpt.close()  # the main process's: a saved state stays for the same command; an empty folder goes


@contextlib.contextmanager
def _alike():
    """Under several processes, every process leaves this block together: when any of them meets a ``LightftError``,
    all stop with a ``SharedError`` that says it once (met alike by every process, as bad settings or files are; else
    the first process's that met one, named)."""
    if process_count() == 1:
        yield
        return
    problem = None
    try:
        yield
    except SharedError:
        raise
    except LightftError as error:
        problem = str(error)
    problems = gather_from_all(problem)
    failed = [(rank, p) for rank, p in enumerate(problems) if p is not None]
    if failed:
        rank, first = failed[0]
        alike = len(failed) == len(problems) and all(p == first for _, p in failed)
        raise SharedError(first, "" if alike else f" (process {rank} of {len(problems)})")


def _raise_everywhere(problem: str | None) -> None:
    """The main process's finding, raised alike in every process (the CLI prints it once)."""
    if problem:
        raise SharedError(problem)


def _train(cfg: TrainConfig, method, output: Path, session: Session, fingerprint: str, ckpt: Checkpoint,
           resume: Snapshot | None) -> RunResult:
    started = time.perf_counter() - (resume.extra.get("wall_seconds", 0.0) if resume else 0.0)
    if resume is not None:
        where = ("after its training (testing and saving remain)" if resume.stopped
                 else f"at the start of epoch {resume.state['epoch'] + 1}" if not resume.sums.steps
                 else f"in epoch {resume.state['epoch']}, after step {resume.state['step']}")
        warn_user(f"resuming the unfinished run bound for {output} {where}, from the state saved "
                  f"{resume.extra.get('saved_at')}; --no-resume starts over")
        before = resume.extra.get("device"), resume.extra.get("precision")
        if None not in before and before != (session.device.type, session.precision):
            warn_user(f"the saved state trained on {before[0]} in {before[1]}, and this process goes on on "
                      f"{session.device.type} in {session.precision}: the rest of the run computes with other numerics "
                      "than a run that never stopped")
    for split in ("train", "validation", "test"):
        session.ids(split)
    model = load_model(cfg.model, session.splits.labels, seed=cfg.seed, max_length=cfg.max_length)
    accelerator = make_accelerator(session.device, session.precision, cfg.grad_accum)
    model.to(session.device)
    metrics: dict[str, Any] = {"method": cfg.method, "model": cfg.model}
    if cfg.baseline and resume is not None and resume.extra.get("baseline"):
        metrics["baseline"] = resume.extra["baseline"]  # measured before the run was stopped
    elif cfg.baseline:
        metrics["baseline"] = session.evaluate(model, "test", "baseline (untrained head) on test")
    resumed = [*(resume.extra.get("resumed", []) if resume else []),
               *([{"epoch": resume.state["epoch"], "step": resume.state["step"]}] if resume else [])]
    ckpt.extra = lambda: {"baseline": metrics.get("baseline"), "fingerprint": fingerprint, "resumed": resumed,
                          "wall_seconds": time.perf_counter() - started, "device": session.device.type,
                          "precision": session.precision}
    head = head_module_names(model)
    model = method.attach(model, cfg)
    _check_head_trains(model, head, cfg.method)
    store_frozen_in_bf16(model, session.precision, session.device)
    params = count_parameters(model)
    hooks = method.training_hooks(model)
    hp = Hyper(lr=cfg.lr, epochs=cfg.epochs, batch_size=cfg.batch_size, grad_accum=cfg.grad_accum,
               weight_decay=cfg.weight_decay, warmup_ratio=cfg.warmup_ratio, max_grad_norm=cfg.max_grad_norm,
               select=cfg.select, patience=cfg.patience, seed=cfg.seed, max_tokens=cfg.max_tokens,
               group_by_length=cfg.group_by_length,
               class_weights=_class_weights(cfg, session.splits))
    forward = session.forward_for(model, training=True)
    try:
        try:
            result = fit(model, TokenizedDataset(session.ids("train"), session.splits.train.labels), hp,
                         forward=forward,
                         validate=lambda m: session.evaluate(m, "validation", "validating"),
                         accelerator=accelerator, quiet=cfg.quiet, hooks=hooks,
                         checkpoint=ckpt if cfg.checkpoint_minutes > 0 else None,
                         resume=resume)
        except KeyboardInterrupt:  # before any epoch was kept: no run is written, a saved state stays
            _note_kept_state(ckpt)
            raise
    except Diverged:  # before any epoch was kept: resuming would diverge again, and the fix (another --lr) is other
        if process_rank() == 0:  # settings, which a kept state would refuse (the main process holds the state)
            ckpt.discard()
        raise
    if not accelerator.is_main_process:  # the main process tests the kept epoch and writes the run
        return RunResult(output, metrics, cfg)
    try:
        return _test_and_save(cfg, method, output, session, ckpt, accelerator, model, hooks, result, metrics,
                              params, resumed, started, forward.unpadded)
    except KeyboardInterrupt:  # while testing or saving: the state saved at the end of training is kept
        _note_kept_state(ckpt)
        raise


def _note_kept_state(ckpt: Checkpoint) -> None:
    if ckpt.exists():
        warn_user(f"the training state saved last is kept in {ckpt.path}; the same command resumes from it")


def _test_and_save(cfg, method, output, session, ckpt, accelerator, model, hooks, result, metrics, params, resumed,
                   started, unpadded: bool) -> RunResult:
    model = accelerator.unwrap_model(model)
    restore(model, result.best_state)
    hooks.finish(model)
    metrics["eval"] = session.evaluate(model, "test", "testing (best epoch)")
    metrics["validation"] = result.history[result.best_epoch - 1]["validation"]
    metrics["params"] = {**params, "trainable_percent": round(100 * params["trainable"] / params["total"], 4)}
    metrics["train"] = {**result.summary(), "epochs_run": len(result.history), "processes": process_count(),
                        "unpadded": unpadded, **({"resumed": resumed} if resumed else {})}
    metrics["history"] = result.history
    metrics["data"] = session.data_summary()
    metrics["environment"] = _environment(session.device, session.precision)

    with rundir.staged_directory(output) as stage:
        staging = stage.path
        method.save(model, staging)
        session.tokenizer.save_pretrained(str(staging))
        session.splits.labels.save(staging / rundir.LABELS)
        _saved_config(cfg).save(staging / rundir.CONFIG)
        metrics["artifact"] = {"bytes": rundir.directory_size(staging)}
        metrics["wall_seconds"] = round(time.perf_counter() - started, 2)
        rundir.write_json(staging / rundir.METRICS, metrics)
        report = render_report(metrics, cfg.to_dict())
        rundir.atomic_write_text(staging / rundir.REPORT, report)
        rundir.atomic_write_text(staging / rundir.PLOT, training_svg(metrics))
        rundir.atomic_write_text(staging / rundir.REPORT_HTML, markdown_to_html(
            report, title=f"lightft run: {cfg.method} on {session.splits.name}", folder=staging))
    if stage.final != output:  # output was taken while this run trained: it was saved beside it
        cfg.output = str(stage.final)
        _saved_config(cfg).save(stage.final / rundir.CONFIG)
    ckpt.discard()  # the run is saved: its training state is no longer needed
    return RunResult(stage.final, metrics, cfg)


def _unused_options(method: str) -> tuple[str, ...]:
    """Method flags ``method`` does not read: a typed ``--vera-rank`` changes nothing in a LoRA run."""
    from lightft.methods import METHODS

    used = set(get_method(method).options)
    return tuple(sorted({o for m in METHODS.values() for o in m.options} - used))


def _saved_config(cfg: TrainConfig) -> TrainConfig:
    """The config.yaml a run directory keeps: ``--no-resume`` was about this process's start, not the run, and a later
    ``--config`` of it must not discard some other run's state."""
    return dataclasses.replace(cfg, resume=True)


def _warn_unused_method_flags(method, typed: dict) -> None:
    """A method flag typed for a method that ignores it (``--rank`` with ``--method ia3``) is worth one warning."""
    from lightft.methods import METHODS

    method_flags = {opt for m in METHODS.values() for opt in m.options}
    unused = [name for name in typed if name in method_flags and name not in method.options]
    if unused:
        warnings.warn(f"{', '.join('--' + flag(n) for n in unused)} not used by --method {method.name} (it reads "
                      f"{', '.join('--' + flag(o) for o in method.options) or 'no method flags'})", LightftWarning,
                      stacklevel=3)
    if typed.get("max_tokens") is not None:
        ignored = []
        if "batch_size" in typed:
            ignored.append(f"--batch-size {typed['batch_size']}")
        if typed.get("group_by_length") is False:
            ignored.append("--no-group-by-length")
        if ignored:
            warnings.warn(f"{' and '.join(ignored)} not used with --max-tokens {typed['max_tokens']}: batches are "
                          "sized by tokens, rows of similar length grouped", LightftWarning, stacklevel=3)


def _class_weights(cfg: TrainConfig, splits) -> tuple[float, ...] | None:
    """The loss weights --class-weights asks for, with a data note on them, or on a strong imbalance left as it is."""
    labels, names = splits.train.labels, splits.labels.names
    counts = Counter(labels)
    if cfg.class_weights == "balanced":
        weights = tuple(balanced_weights(labels, len(names)))
        splits.notes.append("--class-weights balanced: each class's training rows weigh " +
                            ", ".join(f"{name!r} {w:.3g}" for name, w in zip(names, weights) if w))
        return weights
    (common, most), (rare, least) = counts.most_common()[0], counts.most_common()[-1]
    if most >= IMBALANCE * least:
        splits.notes.append(f"the training classes are imbalanced: {names[rare]!r} has {least:,} rows, {names[common]!r} "
                            f"{most:,}; --class-weights balanced makes each class count alike in the loss")
    return None


def _check_head_trains(model, head: list[str], method: str) -> None:
    """A head left frozen is the most reported peft bug; make it impossible."""
    names = [n for n, p in model.named_parameters() if not p.requires_grad]
    frozen = [n for n in names if any(f".{h}." in f".{n}" and "original_module" not in n for h in head)]
    if frozen:
        raise RuntimeError(f"method {method!r} left classifier-head parameters frozen: {frozen[:3]}")




def evaluate(model: str | os.PathLike, data: str | os.PathLike, *, split: str | None = None,
             base_model: str | None = None, **overrides) -> dict[str, Any]:
    """Evaluate a run directory, or a bare model with its untrained head (the out-of-the-box baseline).

    Mirrors ``lightft eval MODEL_OR_RUN --data DATA``. A single file is evaluated whole (``split`` is then
    "file"), except the very file a run trained on: then its held-out ``split`` rows, carved as training did; a
    directory's ``split`` file (default: test) is used as it is, or carved from train as training did
    when the directory has none. ``limit_eval`` (a
    seeded subset) applies only when given: a run's own ``--limit-eval`` is not inherited. ``base_model`` is
    where a run's base model lives now, if it moved.
    """
    if split not in (None, "validation", "test"):
        raise LightftError(f"--split must be validation or test, got {split!r}")
    model, data = (os.fspath(x) if isinstance(x, os.PathLike) else x for x in (model, data))
    single_file = Path(data).expanduser().is_file()
    run = Path(model)
    trained_on = TrainConfig.of_run(run).data if single_file and (run / rundir.CONFIG).is_file() else None
    if trained_on is not None and _same_file(data, trained_on):
        single_file = False  # the file the run trained on: its held-out rows, carved as training did, not the file
    elif trained_on is not None and Path(data).name.startswith("train.") and Path(trained_on).is_dir() \
            and Path(data).expanduser().parent.resolve() == Path(trained_on).resolve():
        warnings.warn(f"{data} is the train file of the data the run trained on ({trained_on}): it is evaluated "
                      "whole, rows the run trained on included; pass the folder to evaluate its test split",
                      LightftWarning, stacklevel=2)
    if single_file and split is not None:
        warnings.warn(f"--split {split} is ignored: a single file ({data}) is evaluated whole", LightftWarning)
    where = "file" if single_file else split or "test"  # what the metrics call it
    split = "test" if single_file else where
    unused = sorted(set(overrides) - set(EVAL_OPTIONS))
    if unused:
        takes = ("split", "base_model", *EVAL_OPTIONS)
        hint = did_you_mean(unused[0], takes) if len(unused) == 1 else ""
        raise LightftError(f"evaluate() does not use {', '.join(unused)}{hint}; it takes {', '.join(takes)} "
                           "(and writes nothing: save the returned metrics yourself)")
    if not run.exists() and (looks_local(model) or (model.count("/") == 1 and run.parent.is_dir()
                                                    and not cached_hub_id(model))):  # 'runs/nope' beside runs/
        raise LightftError(f"{model} not found; pass a run directory written by `lightft train`, a model directory, "
                           "or a hub id")
    if (run / rundir.CONFIG).is_file():
        from lightft.predict import load

        predictor = load(run, base_model=base_model, precision=overrides.get("precision"))
        check_max_length(predictor.model, overrides.get("max_length"), str(run))
        trained_file = Path(data).expanduser().is_file() and not single_file
        pinned = {}
        if trained_file:  # which rows were held out is fixed by the run's own seed and fraction
            pinned = {k: getattr(predictor.config, k) for k in ("seed", "validation_fraction")}
            changed = [k for k, v in pinned.items() if overrides.get(k, v) != v]
            if changed:
                warnings.warn(f"{' and '.join('--' + flag(k) for k in changed)} ignored: on the file it trained on, a "
                              f"run is evaluated on the rows its own --seed {pinned['seed']} and --validation-fraction "
                              f"{pinned['validation_fraction']} held out", LightftWarning, stacklevel=2)
        cfg = resolve_config(predictor.config, data=data,
                             **{"limit_train": None, "limit_eval": None, **overrides, **pinned})
        session = Session(cfg, label_map=predictor.labels, evaluate=None if trained_file else split,
                          tokenizer=predictor.tokenizer)
        if trained_file:
            session.splits.notes.append(f"the run was trained on this file: its {split} rows, held out as training "
                                        "held them out (same seed and --validation-fraction), are evaluated")
        net, kind = predictor.model, "run"
    else:
        if base_model is not None:
            raise LightftError(f"--base-model is for run directories, and {model} is not one (no config.yaml)")
        runs = sorted(p.name for p in run.iterdir() if (p / rundir.CONFIG).is_file()) if run.is_dir() else []
        if runs and not (run / "config.json").is_file():
            raise LightftError(f"{model} is a folder of runs (a comparison), not one run: pass one of them, e.g. "
                               f"{run / runs[0]} (it holds {', '.join(runs)})")
        resolve_model(model, "eval's MODEL_OR_RUN argument")  # errors name the argument, not train's --model
        cfg = resolve_config(model=model, data=data, method="head", **overrides)
        session = Session(cfg, evaluate=split)
        net, kind = load_model(cfg.model, session.splits.labels, seed=cfg.seed, max_length=cfg.max_length).to(session.device), "baseline"
    net.to(session.device)
    metrics = session.evaluate(net, split, f"evaluating {where}")
    return {"kind": kind, "model": model, "split": where, "data": session.data_summary(), **metrics}
