"""The run directory's atomic creation: nothing under the name until the end, and no finished work thrown away."""

from __future__ import annotations

import pytest

from lightft import rundir
from lightft.errors import LightftError, LightftWarning


def test_a_failed_block_leaves_nothing(tmp_path):
    with pytest.raises(RuntimeError):
        with rundir.staged_directory(tmp_path / "run") as stage:
            (stage.path / "weights").write_text("half")
            raise RuntimeError("killed")
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
        with rundir.staged_directory(tmp_path / "run"):
            pytest.fail("the block must not run")
