"""Training state saved beside the run's output while it trains, so a killed run (crash, kill -9, power loss) resumes
where it stopped when the same command runs again.

The state lives in a hidden sibling of ``--output``, ``.NAME.checkpoint/``: ``config.yaml`` (the resolved settings it
belongs to), ``state.json`` (the loop's position, counters, schedule, RNG and what the run measured before training)
and ``tensors-N.safetensors`` (trained weights, the kept epoch's weights, optimizer moments, RNG states). A save writes
the new tensor file first and then replaces ``state.json``, which names it, in one rename: a kill at any moment
leaves the previous complete state or the new one. The pipeline removes the folder once the run directory is written.

Under several processes (``accelerate launch``) the main process writes the one state, holding each process's own
RNG state and loss sums (``RankState``) beside the shared weights and optimizer; it resumes in as many processes.

``fit`` (``training/loop.py``) decides when a save is due and what goes in it (a ``Snapshot``); this module only
stores and reads it back. Safetensors and JSON only: nothing is unpickled.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import random
import shutil
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from lightft.errors import LightftError, warn_user

STATE = "state.json"
LOCK = "lock"
VERSION = 1
# Settings that do not change what a run computes: a run may resume with other values of these.
NOT_SETTINGS = ("quiet", "checkpoint_minutes", "resume", "output")


@dataclass
class EpochSums:
    """Where the running epoch stands: batches done, and the loss sums its curve and mean come from."""

    steps: int = 0  # batches done in this epoch
    loss: float = 0.0  # summed loss over the epoch's logged windows
    rows: int = 0
    running: float = 0.0  # summed loss since the last log
    running_rows: int = 0
    running_n: int = 0


@dataclass
class RankState:
    """What differs from one process to another under ``accelerate launch``: its RNG (dropout masks), where its share
    of the running epoch's loss stands, and the rows it trained. Weights, optimizer and schedule are the same in every
    process (DDP), so the main process's stand for all."""

    rng: dict
    sums: EpochSums
    samples: int


@dataclass
class Snapshot:
    """Everything ``fit`` needs to go on as if it had never stopped."""

    state: dict  # TrainState as a dict
    tally: dict  # Tally as a dict
    sums: EpochSums
    model: dict[str, torch.Tensor]  # the trainable tensors now
    best: dict[str, torch.Tensor] | None  # the kept epoch's trainable tensors
    optimizer: dict  # optimizer.state_dict()
    scheduler: dict  # scheduler.state_dict()
    hooks: tuple[dict[str, torch.Tensor], dict]  # a method's own loop state (AdaLoRA's importance scores)
    rng: dict = field(default_factory=dict)  # rng_state()
    stopped: bool = False  # the loop had ended (last epoch, patience, divergence): only testing and saving remain
    extra: dict = field(default_factory=dict)  # what the pipeline measured before training (the baseline), wall time
    processes: int = 1  # how many processes trained together (accelerate launch); a resume needs as many
    ranks: list[RankState] = field(default_factory=list)  # the other processes' own state, ranks 1..processes-1


def rng_state(device: torch.device | None = None) -> dict:
    """The generators a run draws from: torch's CPU one (and the training GPU's), Python's, numpy's."""
    state = {"torch": torch.get_rng_state(), "python": random.getstate(), "numpy": np.random.get_state()}
    if device is not None and device.type == "cuda":
        state["cuda"] = [torch.cuda.get_rng_state(device)]
    return state


def set_rng_state(state: dict) -> None:
    """Restore ``rng_state``'s generators; a CUDA state goes to the current GPU (the one training now)."""
    torch.set_rng_state(state["torch"])
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    if state.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"][0])


def path_for(output: Path) -> Path:
    """Where the training state of a run bound for ``output`` lives."""
    output = Path(output)
    return output.with_name(f".{output.name}.checkpoint")


def settings(config: dict) -> dict:
    return {k: v for k, v in config.items() if k not in NOT_SETTINGS}


def differences(saved: dict, now: dict, unused: tuple[str, ...] = ()) -> list[str]:
    """'lr 0.002 there, 0.001 here' for each setting that differs (``unused``: settings the method does not read)."""
    a, b = settings(saved), settings(now)
    return [f"{k.replace('_', '-')} {a.get(k)!r} there, {b.get(k)!r} here" for k in sorted(set(a) | set(b))
            if a.get(k) != b.get(k) and k not in unused]


class StateLocked(LightftError):
    """Another process holds the state of a run bound for the same output."""


class Checkpoint:
    """The saved training state of one run (``path_for(output)``)."""

    def __init__(self, path: Path, every_seconds: float | None = None, *, config: dict | None = None,
                 extra: Callable[[], dict] = dict):
        self.path = Path(path)
        self.every_seconds = every_seconds  # None or <= 0: never save
        self.config = config or {}  # the resolved settings, saved beside the state (what a resume must match)
        self.extra = extra  # what the pipeline adds at each save (the baseline, the data fingerprint, wall time)
        self.last_save = time.monotonic()
        self.saves = 0
        self.failed = False
        self._lock = None

    def start_clock(self) -> None:
        """Count the interval from now (training starts)."""
        self.last_save = time.monotonic()

    # --- reading -------------------------------------------------------------------------------------------------
    def exists(self) -> bool:
        return (self.path / STATE).is_file()

    def meta(self) -> dict:
        """state.json, without the tensors; a one-line error when it is unreadable."""
        try:
            meta = json.loads((self.path / STATE).read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise self.damaged(f"{STATE} unreadable: {error}") from None
        if not isinstance(meta, dict) or meta.get("version") != VERSION:
            raise self.damaged(f"{STATE} is not a lightft training state of version {VERSION}")
        return meta

    def damaged(self, what: str) -> LightftError:
        return LightftError(f"the saved training state {self.path} is damaged ({what}); pass --no-resume to discard "
                            "it and train from the start")

    def load(self) -> Snapshot:
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        meta = self.meta()
        try:
            tensors = load_file(self.path / Path(meta["tensors"]).name)
        except (OSError, SafetensorError, KeyError, TypeError) as error:
            raise self.damaged(f"tensors unreadable: {error}") from None
        try:
            return self._snapshot(meta, tensors)
        except (KeyError, TypeError, ValueError, IndexError) as error:
            raise self.damaged(f"{STATE} lacks what a resume needs ({type(error).__name__}: {error})") from None

    def _snapshot(self, meta: dict, tensors: dict[str, torch.Tensor]) -> Snapshot:

        def group(prefix: str) -> dict[str, torch.Tensor]:
            return {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}

        optim = meta["optimizer"]
        moments: dict[int, dict] = {}
        for key, value in group("optim.").items():
            index, name = key.split(".", 1)
            moments.setdefault(int(index), {})[name] = value
        for index, values in optim["scalars"].items():
            moments.setdefault(int(index), {}).update(values)
        groups = [{**g, "betas": tuple(g["betas"])} if "betas" in g else g for g in optim["param_groups"]]
        ranks = [RankState(rng=_rng_from(group(f"rank{i}.rng."), part["rng"]), sums=EpochSums(**part["sums"]),
                           samples=int(part["samples"])) for i, part in enumerate(meta.get("ranks", []), start=1)]
        processes = int(meta.get("processes", 1))
        if len(ranks) != processes - 1:
            raise ValueError(f"{processes} processes but the state of {len(ranks) + 1}")
        tally = dict(meta["tally"])
        for key in ("curve", "clock"):
            tally[key] = [tuple(x) for x in tally[key]]
        return Snapshot(
            state=meta["state"], tally=tally, sums=EpochSums(**meta["sums"]), model=group("model."),
            best=group("best.") if meta["has_best"] else None,
            optimizer={"state": moments, "param_groups": groups}, scheduler=meta["scheduler"],
            hooks=(group("hooks."), meta["hooks"]), rng=_rng_from(group("rng."), meta["rng"]), stopped=meta["stopped"],
            extra={**meta["extra"], "saved_at": meta.get("saved_at", "")}, processes=processes, ranks=ranks,
        )

    # --- writing -------------------------------------------------------------------------------------------------
    def due(self, seconds: float | None = None) -> bool:
        """Whether the interval (or ``seconds``, when saving is on at all) has passed since the last save."""
        if not (self.every_seconds and self.every_seconds > 0):
            return False
        interval = self.every_seconds if seconds is None else min(self.every_seconds, seconds)
        return time.monotonic() - self.last_save >= interval

    def save(self, snap: Snapshot) -> bool:
        """Write ``snap`` (True), or warn (once) when it cannot be written, a full disk say (False): training goes on,
        the last complete state stays, and the next interval tries again. A state is a safety net, not worth the run."""
        try:
            self._write(snap)
        except Exception as error:  # an OSError, or safetensors' own error type for the same (os error 28)
            if not (isinstance(error, OSError) or type(error).__name__ == "SafetensorError"):
                raise
            if not self.failed:
                warn_user(f"could not save the training state to {self.path} "
                          f"({getattr(error, 'strerror', None) or error}); training goes on, and a kill now would "
                          "lose the work since the last save")
            self.failed = True
            for partial in self.path.glob("tensors-*.safetensors"):
                if partial.name != self._current():
                    with contextlib.suppress(OSError):
                        partial.unlink()
            self.last_save = time.monotonic()
            return False
        self.last_save = time.monotonic()
        return True

    def _current(self) -> str | None:
        with contextlib.suppress(OSError, ValueError, AttributeError):
            return json.loads((self.path / STATE).read_text(encoding="utf-8")).get("tensors")
        return None

    def _write(self, snap: Snapshot) -> None:
        """The new tensor file, then state.json naming it (one rename), then drop older tensor files."""
        from safetensors.torch import save_file

        from lightft.rundir import atomic_write_text, fsync_directory, fsync_file

        self.path.mkdir(parents=True, exist_ok=True)
        tensors: dict[str, torch.Tensor] = {}
        tensors.update({f"model.{k}": v for k, v in snap.model.items()})
        if snap.best is not None:
            tensors.update({f"best.{k}": v for k, v in snap.best.items()})
        scalars: dict[str, dict] = {}
        for index, values in snap.optimizer["state"].items():
            for name, value in values.items():
                if isinstance(value, torch.Tensor):
                    tensors[f"optim.{index}.{name}"] = value
                else:
                    scalars.setdefault(str(index), {})[name] = value
        tensors.update({f"hooks.{k}": v for k, v in snap.hooks[0].items()})
        tensors.update(_rng_tensors("rng.", snap.rng))
        for i, part in enumerate(snap.ranks, start=1):
            tensors.update(_rng_tensors(f"rank{i}.rng.", part.rng))
        name = f"tensors-{self.saves + 1}-{uuid.uuid4().hex[:12]}.safetensors"  # never the name state.json holds
        save_file({k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}, str(self.path / name))
        fsync_file(self.path / name)
        meta = {
            "version": VERSION,
            "tensors": name,
            "saved_at": time.strftime("%Y-%m-%d %H:%M:%S"),
            "state": snap.state,
            "tally": snap.tally,
            "sums": dataclasses.asdict(snap.sums),
            "has_best": snap.best is not None,
            "optimizer": {"param_groups": snap.optimizer["param_groups"], "scalars": scalars},
            "scheduler": snap.scheduler,
            "hooks": snap.hooks[1],
            "rng": _rng_meta(snap.rng),
            "stopped": snap.stopped,
            "processes": snap.processes,
            "ranks": [{"rng": _rng_meta(part.rng), "sums": dataclasses.asdict(part.sums), "samples": part.samples}
                      for part in snap.ranks],
            "extra": {**snap.extra, **self.extra()},
        }
        import yaml

        atomic_write_text(self.path / "config.yaml", yaml.safe_dump(self.config, sort_keys=False))
        atomic_write_text(self.path / STATE, json.dumps(meta, default=_jsonable) + "\n")
        fsync_directory(self.path)  # the rename is on disk before the tensor file it replaced is deleted
        for old in self.path.glob("tensors-*.safetensors"):
            if old.name != name:
                with contextlib.suppress(OSError):
                    old.unlink()
        self.saves += 1

    def discard(self) -> None:
        """Remove the state: renamed away first (one step, so a kill during the removal of gigabytes cannot leave a
        state that looks resumable), then deleted; the lock goes with it."""
        gone = self.path.with_name(f"{self.path.name}.discarded-{uuid.uuid4().hex[:8]}")
        try:
            os.rename(self.path, gone)
        except FileNotFoundError:
            gone = None
        except OSError:
            gone = self.path
        self.release()
        if gone is not None:
            shutil.rmtree(gone, ignore_errors=True)

    # --- one run at a time -----------------------------------------------------------------------------------------
    def acquire(self, output: Path) -> None:
        """Hold the state's lock for this process (creating the folder): two identical commands started together
        must not resume, save into and delete the same state. A lock taken on a folder that another process renamed
        away meanwhile (``discard``) is let go and taken again on the folder now at the path."""
        import errno
        import fcntl

        for _ in range(10):
            created = not self.path.exists()
            self.path.mkdir(parents=True, exist_ok=True)
            handle = open(self.path / LOCK, "a+")
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as error:
                handle.close()
                if created and not self.exists():
                    shutil.rmtree(self.path, ignore_errors=True)
                if error.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    raise LightftError(f"cannot lock the training state {self.path} on this file system "
                                       f"({error.strerror or error}); pass --checkpoint-minutes 0 to train without "
                                       "saving it, or another --output") from None
                raise StateLocked(f"another lightft run is training into {output} right now (its state {self.path} "
                                  "is locked); wait for it to finish, or pass another --output") from None
            with contextlib.suppress(OSError):
                if os.fstat(handle.fileno()).st_ino == os.stat(self.path / LOCK).st_ino:
                    self._lock = handle
                    return
            handle.close()
        raise StateLocked(f"the training state {self.path} keeps changing under this run; another lightft run is "
                          f"using {output}: wait for it to finish, or pass another --output")

    def clear(self) -> None:
        """Remove what a save wrote (a state not to resume, or a half-written first one); keep the folder and lock."""
        for name in (STATE, "config.yaml"):
            with contextlib.suppress(FileNotFoundError):
                (self.path / name).unlink()
        for tensors in self.path.glob("tensors-*.safetensors"):
            with contextlib.suppress(FileNotFoundError):
                tensors.unlink()

    def remove_leftovers(self) -> None:
        """Folders a discard renamed away but was killed before deleting."""
        import glob

        for gone in self.path.parent.glob(f"{glob.escape(self.path.name)}.discarded-*"):
            shutil.rmtree(gone, ignore_errors=True)

    def close(self) -> None:
        """This process is done with the state: keep it (unlocked) if it holds a saved state to resume, else remove
        the folder, so a run that failed or stopped before its first save leaves nothing behind."""
        if self._lock is None:
            return
        if self.exists():
            self.release()
        else:
            self.discard()

    def release(self) -> None:
        handle, self._lock = getattr(self, "_lock", None), None
        if handle is not None:
            handle.close()


def _rng_tensors(prefix: str, rng: dict) -> dict[str, torch.Tensor]:
    """``rng_state``'s tensors (torch's, each GPU's, numpy's key array), named under ``prefix``."""
    tensors = {f"{prefix}torch": rng["torch"], f"{prefix}numpy": torch.from_numpy(rng["numpy"][1].astype(np.int64))}
    tensors.update({f"{prefix}cuda.{i}": state for i, state in enumerate(rng.get("cuda", []))})
    return tensors


def _rng_meta(rng: dict) -> dict:
    """``rng_state``'s small parts, for state.json: Python's state, numpy's besides its key array."""
    numpy_state = rng["numpy"]
    return {"python": list(rng["python"]), "numpy": [numpy_state[0], *numpy_state[2:]]}


def _rng_from(tensors: dict[str, torch.Tensor], meta: dict) -> dict:
    """``rng_state`` again from ``_rng_tensors`` (prefix stripped) and ``_rng_meta``."""
    numpy_state = (meta["numpy"][0], tensors["numpy"].numpy().astype(np.uint32), *meta["numpy"][1:])
    python_state = (meta["python"][0], tuple(meta["python"][1]), meta["python"][2])
    state = {"torch": tensors["torch"], "python": python_state, "numpy": numpy_state}
    cuda = {k[len("cuda."):]: v for k, v in tensors.items() if k.startswith("cuda.")}
    if cuda:
        state["cuda"] = [cuda[str(i)] for i in range(len(cuda))]
    return state


def _jsonable(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.item() if value.numel() == 1 else value.tolist()
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    if isinstance(value, tuple):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def locked(folder: Path) -> bool:
    """Whether a running lightft process holds ``folder``'s state."""
    import fcntl

    try:
        with open(folder / LOCK, "a+") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return True
    return False


def discard_unless_locked(folder: Path) -> None:
    """Remove ``folder``'s state unless a running process holds it, holding its lock while renaming it away (no
    run can take the folder between the check and the removal)."""
    import fcntl

    try:
        handle = open(folder / LOCK, "a+")
    except OSError:
        return
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        return
    state = Checkpoint(folder)
    state._lock = handle
    state.discard()


def find_unfinished(parent: Path, prefix: str, config: dict, fingerprint: str,
                    unused: tuple[str, ...] = (), processes: int = 1) -> Path | None:
    """The output of the newest unfinished run in ``parent`` whose name starts with ``prefix``, whose settings equal
    ``config``'s, whose data had ``fingerprint`` and which trained in ``processes`` processes (``--batch-size`` is per
    process): a default ``--output`` holds the time, so the same command run
    again gets a new name. States whose run directory exists (killed while being removed) are removed; states a
    running process holds are left alone."""
    import glob

    import yaml

    found = []
    for folder in Path(parent).glob(f".{glob.escape(prefix)}*.checkpoint"):
        output = folder.with_name(folder.name[1:-len(".checkpoint")])
        with contextlib.suppress(OSError, ValueError, yaml.YAMLError):
            if os.path.lexists(output) or not (folder / STATE).is_file():  # finished, or killed before a save
                discard_unless_locked(folder)
                continue
            saved = yaml.safe_load((folder / "config.yaml").read_text(encoding="utf-8"))
            meta = json.loads((folder / STATE).read_text(encoding="utf-8"))
            if isinstance(saved, dict) and not differences(saved, config, unused) and not locked(folder) \
                    and meta.get("extra", {}).get("fingerprint") == fingerprint \
                    and meta.get("processes", 1) == processes:
                found.append((folder.stat().st_mtime, output))
    return max(found)[1] if found else None
