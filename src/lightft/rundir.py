"""The run directory contract: created atomically, fully describing a run, readable back.

A run directory holds ``config.yaml`` (resolved, re-runnable with ``--config``), ``labels.json``,
``metrics.json``, ``report.md`` with ``training.svg`` (its curves) and ``report.html`` (both in one page), the tokenizer, and the weights: a peft adapter
(``adapter_config.json`` + ``adapter_model.safetensors``, head included), a safetensors subset of
trained tensors (``trained.safetensors`` for head/bitfit), or a full model (``model.safetensors``).

Runs are built in a hidden sibling directory and renamed into place at the end, so a failed or
interrupted run never leaves a half-written run directory under the name the user asked for.
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import json
import os
import shutil
import socket
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from lightft.errors import LightftError, LightftWarning

CONFIG = "config.yaml"
LABELS = "labels.json"
METRICS = "metrics.json"
REPORT = "report.md"
REPORT_HTML = "report.html"
PLOT = "training.svg"


def _umask() -> int:
    """The process umask, read without setting it where Linux shows it (os.umask(0) would briefly make every file
    another thread creates world-writable, e.g. in a server)."""
    with contextlib.suppress(OSError, ValueError, StopIteration):
        with open("/proc/self/status", encoding="ascii") as status:
            return int(next(line for line in status if line.startswith("Umask:")).split()[1], 8)
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` via a temporary file and rename, so readers never see half a file."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """``atomic_write_text`` for bytes. A symbolic link is kept and the file it names replaced; a pipe or device
    (``/dev/stdout``, a fifo) is written into, as a rename would replace it by a plain file."""
    path = Path(path)
    if path.exists() and not path.is_file() and not path.is_dir():  # both follow links
        with open(path, "wb") as fh:
            fh.write(data)
        return
    if path.is_symlink():
        path = Path(os.path.realpath(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())  # the rename below must not land before the bytes do (power loss)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual permissions
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def fsync_file(path: Path) -> None:
    """Flush ``path``'s bytes to disk (before a rename that publishes it must not land first)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_directory(path: Path) -> None:
    """Flush a folder's entries (a rename into it) to disk, where the platform allows it."""
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def write_json(path: Path, data: Any) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=False) + "\n")


def read_json(path: Path) -> Any:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def check_output_free(output: Path) -> None:
    """Before any work: ``output`` does not exist yet and can be created (its nearest existing folder is writable)."""
    output = Path(output)
    if os.path.lexists(output):  # a dangling symlink too: the run could not be renamed onto it
        what = "directory" if output.is_dir() else "path" if output.is_symlink() else "file"
        raise LightftError(f"output {what} {output} already exists; pass a new --output or remove it")
    parent = output.absolute().parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise LightftError(f"--output {output} cannot be created: {parent} is a file; pass another --output")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise LightftError(f"--output {output} cannot be created: {parent} is not writable; pass another --output")
    try:  # access() says yes on read-only mounts and pseudo file systems (/proc): make and remove a folder there
        os.rmdir(tempfile.mkdtemp(dir=parent, prefix=".lightft-probe-"))
    except OSError as error:
        raise LightftError(f"--output {output} cannot be created: a folder cannot be made in {parent} "
                           f"({error.strerror or error}); pass another --output") from None


@dataclass
class Staging:
    path: Path  # the hidden directory the block writes into
    final: Path  # where it was renamed to: the output asked for, or a free sibling name (see staged_directory)


def _move_into_place(staging: Path, output: Path) -> Path:
    """Rename ``staging`` to ``output``, or to the first free ``output-2``, ``output-3``, ... when something took the
    name meanwhile (another run finishing into it, a folder made by hand); return where it went. A name taken between
    the check and the rename makes the rename fail, and the next number is tried: no finished run is lost to a race.
    (rename replaces at most an empty directory made in those microseconds.)"""
    candidates = (output if n == 1 else output.with_name(f"{output.name}-{n}") for n in itertools.count(1))
    for candidate in candidates:
        if os.path.lexists(candidate):
            continue
        try:
            os.rename(staging, candidate)
            return candidate
        except OSError as error:
            if error.errno not in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOTDIR, errno.EISDIR):
                raise
    raise AssertionError("unreachable")


_HOST = "".join(c if c.isalnum() else "_" for c in socket.gethostname()) or "host"


def _remove_dead_staging(output: Path) -> None:
    """Staging folders for ``output`` whose process is gone (killed with SIGKILL while writing): they hold a half-
    written run nobody will finish. The creator's host and pid are in the name; folders of live processes, and of
    other machines writing to a shared folder (whose pids mean nothing here), stay."""
    import glob

    for folder in output.parent.glob(f".{glob.escape(output.name)}.partial-{glob.escape(_HOST)}-*-*"):
        pid = folder.name[len(f".{output.name}.partial-{_HOST}-"):].split("-", 1)[0]
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            shutil.rmtree(folder, ignore_errors=True)
        except OSError:  # alive, another user's
            pass


@contextlib.contextmanager
def staged_directory(output: Path) -> Iterator[Staging]:
    """Yield a hidden staging directory that becomes ``output`` only if the block succeeds.

    If something took ``output`` while the block ran (it was free when checked, before the work), the finished
    run goes to ``output-2`` (or the next free number) with a warning instead of being thrown away."""
    output = Path(output)  # checked free by the caller before its work (check_output_free)
    output.parent.mkdir(parents=True, exist_ok=True)
    _remove_dead_staging(output)
    stage = Staging(Path(tempfile.mkdtemp(dir=output.parent, prefix=f".{output.name}.partial-{_HOST}-{os.getpid()}-")), output)
    os.chmod(stage.path, 0o777 & ~_umask())
    try:
        yield stage
        for path in stage.path.rglob("*"):  # some writers (safetensors) create 0600 files; give the usual permissions
            os.chmod(path, (0o777 if path.is_dir() else 0o666) & ~_umask())
        stage.final = _move_into_place(stage.path, output)
    except BaseException as error:
        shutil.rmtree(stage.path, ignore_errors=True)
        # A full disk or a vanished folder (safetensors' writer reports its I/O errors as "... (os error 28)"); a bug
        # in the code that writes keeps its traceback.
        if isinstance(error, OSError) or (type(error).__name__ == "SafetensorError" or "(os error " in str(error)):
            reason = getattr(error, "strerror", None) or str(error) or type(error).__name__
            raise LightftError(f"could not write the run directory {output}: {reason}; check the disk's free space "
                               "and permissions, or pass another --output, and run again") from error
        raise
    if stage.final != output:
        warnings.warn(f"{output} appeared while this run was working; the finished run was saved to {stage.final} "
                      "instead", LightftWarning, stacklevel=3)


def check_output_file(path: Path, flag: str, inputs: dict[str, str | None] | None = None) -> None:
    """Check, before any work, that ``path`` can take an output file, is not one of a run directory's files, and is
    none of the ``inputs`` (flag -> path) the command reads."""
    path = Path(path)
    for input_flag, source in (inputs or {}).items():
        if source and source != "-" and path.exists() and Path(source).exists() and path.samefile(source):
            raise LightftError(f"{flag} {path} is the {input_flag} input, which writing there would replace; pass "
                               f"another {flag} file")
    if path.is_dir():
        raise LightftError(f"{flag} {path} is a directory; pass a file path")
    if not path.parent.is_dir():
        problem = "is a file" if path.parent.exists() else "does not exist"
        fix = "pass another path" if path.parent.exists() else "create it or pass another path"
        raise LightftError(f"{flag} {path}: its folder {path.parent} {problem}; {fix}")
    if path.exists() and (path.parent / CONFIG).is_file() and (path.parent / LABELS).is_file():
        raise LightftError(f"{flag} {path} would overwrite a file of the run directory {path.parent}; pass a path "
                           "outside it or a new file name")


def require_run_dir(path: str | Path) -> Path:
    """Check ``path`` is a finished run directory and return it."""
    path = Path(path)
    if path.is_file():
        raise LightftError(f"run directory {path} is a file; pass the directory `lightft train` wrote (the folder "
                           "holding config.yaml and labels.json)")
    if not path.is_dir():
        raise LightftError(f"run directory {path} not found; pass a directory written by `lightft train`")
    missing = [name for name in (CONFIG, LABELS) if not (path / name).is_file()]
    if missing:
        raise LightftError(
            f"{path} is not a lightft run directory (missing {', '.join(missing)}); pass a directory written by "
            "`lightft train`"
        )
    return path


def directory_size(path: Path) -> int:
    """Bytes on disk of the weight files in a run directory (what you ship to reuse the run)."""
    weights = (".safetensors", ".bin")
    return sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file() and p.name.endswith(weights))
