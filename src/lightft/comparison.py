"""Compare methods on the same data, seed and budget: one run directory per method and one table.

Each method trains in its own child process (``lightft train``), so its time and peak memory are
its own, and a crash in one method cannot take the others' finished runs with it. Finished method
runs found in the output directory are reused, so an interrupted comparison resumes where it stopped.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from lightft import pause, rundir
from lightft.config import TrainConfig
from lightft.errors import LightftError, LightftWarning, Terminated, did_you_mean
from lightft.methods import METHODS
from lightft.html_report import markdown_to_html
from lightft.plots import comparison_svg
from lightft.report import human_bytes, markdown_table, settings_line

BASELINE = "baseline"
COLUMNS = ["method", "lr", "accuracy", "macro-F1", "trainable params", "trainable %", "train time (s)", "samples/s",
           "peak memory (MB)", "saved weights"]
NOTES = ("saved weights: the file(s) `lightft predict` loads on top of the base model (the adapter, or the whole "
         "model for full); the tokenizer files (about 0.7 MB for a BERT WordPiece vocabulary) come on top. A file can "
         "be larger than the trainable parameters (VeRA saves its frozen random projections) or smaller (P-tuning "
         "saves the prompt its MLP produced, not the MLP). Peak memory is the training process's peak: on CPU its "
         "whole resident memory, on a GPU the device memory allocated.")


@dataclass
class Comparison:
    path: Path
    rows: list[dict[str, Any]]

    def markdown(self) -> str:
        return comparison_markdown(self.rows)


def parse_methods(spec: str | list[str]) -> list[str]:
    names = [m.strip() for m in spec.split(",") if m.strip()] if isinstance(spec, str) else list(spec)
    if names == ["all"]:
        return [BASELINE, *METHODS]
    unknown = [m for m in names if m not in METHODS and m != BASELINE]
    if not names:
        raise LightftError("--methods is empty; pass a comma-separated list such as baseline,lora,full, or 'all'")
    if "all" in names:
        raise LightftError(f"--methods all stands alone (it is every method and the baseline), got {','.join(names)}; "
                           "pass all, or list the methods")
    if unknown:
        raise LightftError(
            f"unknown method(s) in --methods: {', '.join(unknown)}"
            f"{did_you_mean(unknown[0], [BASELINE, *METHODS]) if len(unknown) == 1 else ''}; choose from "
            f"{BASELINE}, {', '.join(METHODS)} or 'all'"
        )
    return list(dict.fromkeys(names))


def _row(method: str, metrics: dict, source: str = "eval", lr: float | None = None) -> dict[str, Any]:
    ev = metrics[source]
    trained = source == "eval"
    params, train = metrics.get("params", {}), metrics.get("train", {})
    return {
        "method": method,
        "lr": lr,
        "accuracy": ev["accuracy"],
        "macro_f1": ev["macro_f1"],
        "trainable_params": params.get("trainable", 0) if trained else 0,
        "trainable_percent": params.get("trainable_percent", 0.0) if trained else 0.0,
        "train_seconds": train.get("seconds") if trained else None,
        "samples_per_second": train.get("samples_per_second") if trained else None,
        "peak_memory_mb": train.get("peak_memory_mb") if trained else None,
        "artifact_bytes": metrics.get("artifact", {}).get("bytes") if trained else None,
    }


def comparison_markdown(rows: list[dict[str, Any]]) -> str:
    def fmt(v, spec):
        return "—" if v is None else format(v, spec)

    return markdown_table(COLUMNS, [[
        r["method"], fmt(r.get("lr"), "g"), f"{100 * r['accuracy']:.2f}%", f"{100 * r['macro_f1']:.2f}%", f"{r['trainable_params']:,}",
        f"{r['trainable_percent']:.4f}%", fmt(r["train_seconds"], ".1f"), fmt(r["samples_per_second"], ".1f"),
        fmt(r["peak_memory_mb"], ".0f"), human_bytes(r["artifact_bytes"]),
    ] for r in rows])


def _child_setup():
    """A ``preexec_fn`` for the child: SIGUSR1 blocked until its CLI has the pause handler in place (a request passed
    on at once would otherwise kill it: the default action); and, on Linux, be killed when the comparison's process
    dies (kill -9 of compare must not leave its method training on as an orphan that locks the run the next compare
    resumes). prctl is looked up here, in the parent: between fork and exec the child only makes the calls (no dlopen
    in a forked threaded process), and exits if its parent is already gone."""
    import ctypes
    import signal as signals

    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        prctl = None
    parent = os.getpid()

    def setup() -> None:
        signals.pthread_sigmask(signals.SIG_BLOCK, {signals.SIGUSR1})  # kept across exec; cli.main unblocks it
        if prctl is not None:
            prctl(1, int(signals.SIGKILL))  # PR_SET_PDEATHSIG
            if os.getppid() != parent:
                os._exit(1)

    return setup


def _run_child(cfg: TrainConfig, directory: Path, processes: int = 1) -> dict:
    """Train one method in a child process (or ``processes`` of them training data-parallel, started as torchrun
    starts its workers) and return its metrics."""
    config_file = directory.parent / f".{directory.name}.config.yaml"
    rundir.atomic_write_text(config_file, yaml.safe_dump(cfg.to_dict(), sort_keys=False))
    try:
        children = _start_children(config_file, cfg.quiet, processes)
        try:
            failed = _wait_all(children)
        except KeyboardInterrupt as interrupt:
            # Ctrl-C reached the children too (one process group); SIGTERM reached only this process: pass it on.
            # The children then finish with the best epoch so far, or clean up, on their own: wait for them, unless
            # interrupted again, which stops them at once.
            if isinstance(interrupt, Terminated):
                for child in children:
                    child.terminate()
            try:  # each finishes on its own (the main one tests and saves the kept epoch): none is stopped early
                _wait_all(children, stop_others=False)
            except KeyboardInterrupt:
                for child in children:
                    child.kill()
            raise
    finally:
        config_file.unlink(missing_ok=True)
    if failed == pause.EXIT_STATUS:
        from lightft.training.checkpoint import path_for

        pause.clear()  # this comparison is paused; a request during a method that finished goes on to the next one
        raise pause.Paused(path_for(directory), f"paused: the comparison stops at {cfg.method} (its training state "
                                                "is saved); the same command resumes it")
    if failed:
        raise LightftError(f"method {cfg.method!r} failed (exit {failed}); its error is printed above")
    return rundir.read_json(directory / rundir.METRICS)


def _start_children(config_file: Path, quiet: bool, processes: int) -> list[subprocess.Popen]:
    """``lightft train --config config_file`` in ``processes`` processes; several get the variables torchrun sets
    (WORLD_SIZE, RANK, LOCAL_RANK, the main process's address and a free port), one CPU share of threads each, and,
    like one child, die with this process (torchrun's workers outlive a killed launcher)."""
    env = {**os.environ, "PYTHONWARNINGS": "ignore", COMPARE_CHILD: "1"}
    group = {}
    if processes > 1:
        group = {"WORLD_SIZE": str(processes), "LOCAL_WORLD_SIZE": str(processes), "MASTER_ADDR": "127.0.0.1",
                 "MASTER_PORT": str(_free_port())}
        env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // processes)))
    children = []
    try:
        for rank in range(processes):
            rank_env = {**env, **group, **({"RANK": str(rank), "LOCAL_RANK": str(rank)} if group else {})}
            children.append(subprocess.Popen(
                [sys.executable, "-m", "lightft", "train", "--config", str(config_file)], env=rank_env,
                stdout=subprocess.DEVNULL if quiet else None,  # errors still reach stderr
                preexec_fn=_child_setup()))
    except BaseException:
        for child in children:
            child.kill()
        raise
    return children


def _wait_all(children: list[subprocess.Popen], stop_others: bool = True) -> int:
    """0 once every child has succeeded; else the exit status of the first seen failing, once the others (waiting on
    it in a collective) are stopped, or, without ``stop_others``, have ended. A pause request (SIGUSR1) is passed on
    to them."""
    import signal
    import time

    passed_on = False
    while True:
        if pause.requested() and not passed_on:
            passed_on = True
            for child in children:
                if child.poll() is None:
                    child.send_signal(signal.SIGUSR1)
        codes = [child.poll() for child in children]
        failed = next((code for code in codes if code not in (None, 0)), 0)
        if failed and not stop_others:
            for child in children:
                child.wait()
            return failed
        if failed:
            for child in children:
                if child.poll() is None:
                    child.terminate()
            for child in children:  # one stuck inside a collective does not see SIGTERM: killed after a grace time
                try:
                    child.wait(timeout=STOP_GRACE_SECONDS)
                except subprocess.TimeoutExpired:
                    child.kill()
                    child.wait()
            return failed
        if all(code is not None for code in codes):
            return 0
        time.sleep(0.1)


STOP_GRACE_SECONDS = 15
COMPARE_CHILD = "LIGHTFT_COMPARE_CHILD"  # set for a method's processes: compare, not they, says how to go on


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def compare(methods: str | list[str] = "baseline,lora,full", config: TrainConfig | str | os.PathLike | None = None,
            *, processes: int = 1, **overrides) -> Comparison:
    """Run each method with the same data, seed and budget; write compare.md/compare.json into ``output``.

    Mirrors ``lightft compare``: keyword names are the CLI flags with underscores. ``config`` (a TrainConfig, or a
    config.yaml or run directory, as ``--config``) gives the shared settings; its method, rate and output are not
    used: each method runs at its own default rate unless ``lr`` is given, into ``output`` (default
    runs/compare-<data>). ``processes`` > 1 trains each method data-parallel in that many processes (one per GPU;
    ``batch_size`` is per process).
    """
    from lightft.pipeline import Session, _absolute_if_local, resolve_config
    from lightft.runtime import process_count

    if process_count() > 1:
        raise LightftError(f"lightft compare trains its methods one after another, each in a process of its own, and "
                           f"does not run under accelerate launch ({process_count()} processes here); run compare "
                           f"without accelerate launch, with --processes {process_count()} to train each method in "
                           f"{process_count()} processes")
    if "method" in overrides:
        raise LightftError("compare() does not take method=; pass the methods to run as methods='lora,full'")
    _check_processes(processes)
    names = parse_methods(methods)
    trained = [m for m in names if m != BASELINE]
    if isinstance(config, (str, os.PathLike)):
        config = TrainConfig.load(config)
    shared = dict(config) if isinstance(config, dict) else dataclasses.asdict(config) if config is not None else {}
    # a run's config.yaml names that run's directory and its method's resolved rate: neither carries over
    shared.update(method=trained[0] if trained else "head", lr=None, output=None)
    cfg = resolve_config(shared, **overrides)
    cfg.model, cfg.data = _absolute_if_local(cfg.model), _absolute_if_local(cfg.data)
    output = Path(cfg.output or f"runs/compare-{Path(cfg.data).name.split('.')[0]}")
    if (output / rundir.CONFIG).is_file():
        raise LightftError(f"--output {output} is a run directory of one method; compare writes a folder of runs "
                           "(one per method): pass another --output")
    if output.exists() and not output.is_dir():
        raise LightftError(f"--output {output} is a file; pass a directory for the comparison")
    session = Session(cfg)  # check data, columns, labels and model up front: errors surface here, once
    _check_methods_fit(cfg, trained, session.splits.labels)
    output.mkdir(parents=True, exist_ok=True)

    runs: dict[str, dict] = {}
    fingerprint = session.splits.fingerprint()
    for method in trained:  # a comparison killed before it cleaned up leaves its children's config files
        (output / f".{method}.config.yaml").unlink(missing_ok=True)
    for i, method in enumerate(trained):
        directory = output / method
        want_baseline = BASELINE in names and not any("baseline" in r for r in runs.values())
        # Each method at its own default rate unless --lr was typed (a loaded config.yaml holds its method's rate).
        lr = cfg.lr if "lr" in overrides else None
        child = dataclasses.replace(cfg, method=method, output=str(directory), lr=lr, baseline=want_baseline)
        if (directory / rundir.METRICS).is_file():
            _check_reusable(directory, child, fingerprint, processes)
            if not cfg.quiet:
                print(f"[compare] reusing the finished run in {directory}", file=sys.stderr)
            runs[method] = rundir.read_json(directory / rundir.METRICS)
            continue
        if directory.exists():
            raise LightftError(f"{directory} holds an unfinished run (no {rundir.METRICS}); delete that folder to "
                               f"train {method} again, or pass another --output")
        rundir.check_output_free(directory)
        if pause.requested():  # asked before this method started: the comparison stops here
            pause.clear()
            raise pause.Paused(directory, f"paused: the comparison stops before {method}; the same command goes on "
                                          "from there")
        if not cfg.quiet:
            from lightft.training.checkpoint import Checkpoint, path_for

            saved = " (resuming its saved training state)" if child.resume and Checkpoint(path_for(directory)).exists() \
                else ""
            print(f"[compare] {i + 1}/{len(trained)}: {method}{saved}", file=sys.stderr)
        runs[method] = _run_child(child, directory, processes)

    rows = []
    if BASELINE in names:
        base = next((r for r in runs.values() if "baseline" in r), None)
        if base is None:  # no method trained here: the same test rows the methods' runs use
            from lightft.model.load import load_model

            model = load_model(cfg.model, session.splits.labels, seed=cfg.seed, max_length=cfg.max_length)
            base = {"baseline": session.evaluate(model.to(session.device), "test", "baseline (untrained head) on test")}
        rows.append(_row(BASELINE, base, "baseline"))
    rows += [_row(m, runs[m], lr=TrainConfig.of_run(output / m).lr) for m in trained]
    _note_dropped_rows(output, names)
    shared = {k: v for k, v in cfg.to_dict().items() if k not in ("method", "output")}  # per-method runs hold those
    rundir.write_json(output / "compare.json", {"methods": names, "config": shared, "processes": processes,
                                                "rows": rows})
    rundir.atomic_write_text(output / "compare.svg", comparison_svg(rows))
    page = (f"# lightft compare on {Path(cfg.data).name}\n\n"
            f"Model `{cfg.model}`, same data, seed and budget for every method: "
            f"{settings_line(cfg.to_dict(), per_method=False)}"
            f"{f'; each method data-parallel in {processes} processes (batch size per process)' if processes > 1 else ''}"
            "\n\n"
            f"{comparison_markdown(rows)}\n\n{NOTES}\n\n"
            "![accuracy vs trainable parameters and train time](compare.svg)\n")
    rundir.atomic_write_text(output / "compare.md", page)
    rundir.atomic_write_text(output / "compare.html", markdown_to_html(
        page, title=f"lightft compare on {Path(cfg.data).name}", folder=output))
    pause.clear()
    return Comparison(output, rows)


def _check_methods_fit(cfg: TrainConfig, methods: list[str], labels) -> None:
    """Each method's flags against the model's structure (--block-size dividing its widths, --targets naming its
    modules, prefix tokens fitting its positions) before any method trains, instead of after the ones before it.
    The methods attach to a weightless copy of the model on the meta device; only lightft's own refusals count, as
    an initialisation that needs real weights may fail there and will run for real in the method's own run."""
    import copy

    import torch
    from transformers import AutoConfig, AutoModelForSequenceClassification

    from lightft.methods import get_method
    from lightft.model.load import quiet_transformers, resolve_model

    name, local_only = resolve_model(cfg.model)
    try:
        with quiet_transformers(), torch.device("meta"):
            config = AutoConfig.from_pretrained(name, local_files_only=local_only, num_labels=len(labels))
            skeleton = AutoModelForSequenceClassification.from_config(config)
    except Exception:  # the child run reports a model that cannot be built, with its own message
        return
    for method in methods:
        child = dataclasses.replace(cfg, method=method, lr=None).validate()
        try:
            with quiet_transformers(), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                get_method(method).attach(copy.deepcopy(skeleton), child)
        except LightftError:
            raise
        except Exception:
            continue


def _note_dropped_rows(output: Path, names: list[str]) -> None:
    """A compare into a folder whose table listed other methods rewrites the table; say which runs it leaves out."""
    try:
        before = rundir.read_json(output / "compare.json").get("methods", [])
    except Exception:  # none yet, or unreadable: nothing to compare with
        return
    dropped = [m for m in before if m not in names and (m == BASELINE or (output / m / rundir.METRICS).is_file())]
    if dropped:
        warnings.warn(f"compare.md now lists {', '.join(names)}; the earlier table's {', '.join(dropped)} "
                      f"{'is' if len(dropped) == 1 else 'are'} left out (finished runs stay in {output}: add them to "
                      "--methods to list them again without retraining)", LightftWarning, stacklevel=3)


# Settings that do not change what a run trains or measures.
_NOT_COMPARED = ("output", "quiet", "baseline", "checkpoint_minutes", "resume")


def _check_processes(processes) -> None:
    import torch

    if isinstance(processes, bool) or not isinstance(processes, int) or processes < 1:
        raise LightftError(f"--processes must be a whole number >= 1, got {processes!r}")
    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if gpus and processes > gpus:
        raise LightftError(f"--processes {processes} asks for one GPU per process, and this machine has {gpus}; pass "
                           f"--processes {gpus} or fewer")


def _check_reusable(directory: Path, child: TrainConfig, fingerprint: str, processes: int = 1) -> None:
    """A finished run is reused only if it was trained with the settings this comparison asks for, in as many
    processes (--batch-size is per process), on the same rows (the files under --data may have changed since)."""
    from lightft.methods import get_method

    done = TrainConfig.of_run(directory, f"delete {directory} to train it again, or pass another "
                               "--output").to_dict()
    wanted = {**child.to_dict(), "lr": child.lr if child.lr is not None else get_method(child.method).lr}
    diffs = [f"{k} {done.get(k)!r} (this compare: {v!r})" for k, v in wanted.items()
             if k not in _NOT_COMPARED and done.get(k) != v]
    if diffs:
        raise LightftError(f"{directory} holds a finished run with other settings: {'; '.join(diffs)}; pass another "
                           f"--output, or delete {directory} to train it again")
    metrics = rundir.read_json(directory / rundir.METRICS)
    trained_in = metrics.get("train", {}).get("processes", 1)
    if trained_in != processes:
        raise LightftError(f"{directory} holds a finished run trained in {trained_in} process"
                           f"{'es' if trained_in > 1 else ''} (this compare: {processes}; --batch-size is per process); "
                           f"pass another --output, or delete {directory} to train it again")
    if metrics.get("train", {}).get("interrupted"):
        raise LightftError(f"{directory} holds a run interrupted after epoch {len(metrics.get('history', []))} of "
                           f"{child.epochs}; delete {directory} to train {child.method} in full, or pass another --output")
    # same settings (seed, fractions, limits) but other rows: the files under --data changed since
    trained_on = metrics.get("data", {}).get("fingerprint")
    if trained_on is not None and trained_on != fingerprint:
        raise LightftError(f"{directory} holds a finished run trained on other rows than --data {child.data} holds "
                           f"now (the files changed since); pass another --output, or delete {directory} to train it "
                           "again")
