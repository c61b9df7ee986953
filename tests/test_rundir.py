"""The run directory's atomic creation: nothing under the name until the end, and no finished work thrown away."""

from __future__ import annotations

from pathlib import Path

import pytest

from lightft import rundir
from lightft.errors import LightftError, LightftWarning


def test_a_failed_block_leaves_nothing(tmp_path):
    with pytest.raises(KeyboardInterrupt):  # Ctrl-C, or SIGTERM as the CLI turns it
        with rundir.staged_directory(tmp_path / "run") as stage:
            (stage.path / "weights").write_text("half")
            raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []


def test_an_output_taken_while_the_run_worked_gets_the_run_beside_it(tmp_path):
    out = tmp_path / "run"
    (tmp_path / "run-2").mkdir()
    with pytest.warns(LightftWarning, match=r"run appeared while this run was working; the finished run was saved "
                                            r"to .*run-3 instead"):
        with rundir.staged_directory(out) as stage:
            (stage.path / "weights").write_text("done")
            (out / "theirs").mkdir(parents=True)  # someone else's files, made while this run trained
    assert stage.final == tmp_path / "run-3" and (stage.final / "weights").read_text() == "done"
    assert [p.name for p in out.iterdir()] == ["theirs"]
    assert not list(tmp_path.glob(".*partial*"))


def test_an_existing_output_is_refused_before_any_work(tmp_path):
    (tmp_path / "run").mkdir()
    with pytest.raises(LightftError, match=r"output directory .*run already exists; pass a new --output or remove it"):
        rundir.check_output_free(tmp_path / "run")


def test_an_output_folder_that_cannot_be_made_is_refused_before_any_work(monkeypatch):
    import os

    monkeypatch.setattr(os, "access", lambda *a, **k: True)  # as root: access() allows, only making a folder tells
    with pytest.raises(LightftError, match=r"--output /proc/lightft-run cannot be created: a folder cannot be made in "
                                           r"/proc \(.+\); pass another --output"):
        rundir.check_output_free(Path("/proc/lightft-run"))


def test_a_write_that_fails_is_one_line_and_leaves_nothing(tmp_path):
    with pytest.raises(LightftError, match=r"could not write the run directory .*run: No space left on device; check "
                                           r"the disk's free space and permissions, or pass another --output"):
        with rundir.staged_directory(tmp_path / "run") as stage:
            raise OSError(28, "No space left on device", str(stage.path / "model.safetensors"))
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ZeroDivisionError):  # a bug in what writes the run is not passed off as a disk problem
        with rundir.staged_directory(tmp_path / "run"):
            1 / 0
    assert list(tmp_path.iterdir()) == []


def test_runs_finishing_into_one_name_at_once_all_land(tmp_path):
    """Several runs checked the same free name before their work; as they finish together each lands somewhere."""
    import threading
    import warnings

    barrier, landed, errors = threading.Barrier(4), [], []

    def finish(i):
        try:
            with rundir.staged_directory(tmp_path / "run") as stage:
                (stage.path / "weights").write_text(str(i))
                barrier.wait()  # all four rename at about the same moment
            landed.append(stage.final)
        except Exception as error:  # collected for the assertion below
            errors.append(error)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        threads = [threading.Thread(target=finish, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert not errors and len(set(landed)) == 4
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run", "run-2", "run-3", "run-4"]
    assert sorted((p / "weights").read_text() for p in landed) == ["0", "1", "2", "3"]


def test_a_dangling_symlink_at_the_output_is_taken(tmp_path):
    (tmp_path / "run").symlink_to(tmp_path / "gone")
    with pytest.raises(LightftError, match=r"output path .*run already exists"):
        rundir.check_output_free(tmp_path / "run")
    (tmp_path / "file").write_text("x")
    with pytest.raises(LightftError, match=r"output file .*file already exists; pass a new --output"):
        rundir.check_output_free(tmp_path / "file")


def test_a_run_that_started_while_the_output_existed_still_lands_beside_it(tmp_path):
    """The caller checks before its work; if the folder is made after that check, the block's end still finds it."""
    (tmp_path / "run").mkdir()
    with pytest.warns(LightftWarning, match="appeared while this run was working"):
        with rundir.staged_directory(tmp_path / "run") as stage:
            (stage.path / "weights").write_text("done")
    assert stage.final == tmp_path / "run-2"


def test_the_umask_is_read_without_changing_it(tmp_path, monkeypatch):
    import os

    before = os.umask(0o027)
    try:
        with monkeypatch.context() as m:
            m.setattr(os, "umask", lambda mask: pytest.fail("os.umask(0) opens a window for other threads' files"))
            assert rundir._umask() == 0o027
            rundir.atomic_write_text(tmp_path / "a.txt", "x")
        assert (tmp_path / "a.txt").stat().st_mode & 0o777 == 0o640
    finally:
        os.umask(before)


def test_staging_left_by_a_killed_process_is_removed_and_a_live_ones_kept(tmp_path):
    import os

    from lightft.rundir import staged_directory

    output = tmp_path / "run"
    host = rundir._HOST
    dead = tmp_path / f".run.partial-{host}-999999999-abcd"  # above any pid_max: no such process
    alive = tmp_path / f".run.partial-{host}-{os.getppid()}-efgh"
    elsewhere = tmp_path / ".run.partial-otherhost-999999999-ijkl"  # another machine's run in a shared folder
    for folder in (dead, alive, elsewhere):
        folder.mkdir()
        (folder / "model.safetensors").write_bytes(b"half")
    with staged_directory(output) as stage:
        (stage.path / "metrics.json").write_text("{}")
    assert not dead.exists() and alive.exists() and elsewhere.exists() and (output / "metrics.json").is_file()


def test_a_file_where_a_run_directory_or_an_output_folder_belongs_is_named_as_a_file(tmp_path):
    afile = tmp_path / "afile"
    afile.write_text("x")
    with pytest.raises(LightftError, match=r"^run directory .*afile is a file; pass the directory `lightft train` "
                                           r"wrote \(the folder holding config.yaml and labels.json\)$"):
        rundir.require_run_dir(afile)
    with pytest.raises(LightftError, match=r"^--output .*afile/z: its folder .*afile is a file; pass another path$"):
        rundir.check_output_file(afile / "z", "--output")
    with pytest.raises(LightftError, match=r"^--output .*gone/z: its folder .*gone does not exist; create it or pass"):
        rundir.check_output_file(tmp_path / "gone" / "z", "--output")
