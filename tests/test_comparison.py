"""compare: one child run per method, reused only when its settings match, never written into a run directory."""

from __future__ import annotations

import json

import pytest

import lightft
from lightft.cli import main
from lightft.errors import LightftError, LightftWarning


def test_compare_from_a_run_config_leaves_the_run_alone_and_reuses_only_matching_runs(fast, tmp_path, monkeypatch,
                                                                                       capsys):
    run = lightft.train(method="head", **fast)
    before = sorted(p.name for p in run.path.iterdir())
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as done:
        main(["compare", "--config", str(run.path / "config.yaml"), "--methods", "head"])
    assert done.value.code == 0, capsys.readouterr().err
    assert sorted(p.name for p in run.path.iterdir()) == before  # nothing written into the finished run
    out = tmp_path / "runs" / "compare-tiny-data0"
    assert json.loads((out / "head" / "metrics.json").read_text())["method"] == "head"
    shared = json.loads((out / "compare.json").read_text())["config"]
    assert "method" not in shared and "output" not in shared

    # Same settings: the finished run is reused; other settings: refused instead of reporting stale numbers.
    lightft.compare("head", model=fast["model"], data=fast["data"], epochs=2, batch_size=8, max_length=32,
                    quiet=True, output=str(out), baseline=False)
    with pytest.raises(LightftError, match=r"compare-tiny-data0/head holds a finished run with other settings: "
                                           r"epochs 2 \(this compare: 1\); pass another --output, or delete"):
        lightft.compare("head", model=fast["model"], data=fast["data"], epochs=1, batch_size=8, max_length=32,
                        quiet=True, output=str(out), baseline=False)

    # The table names each method's rate and the shared settings; a narrower compare says which rows it drops.
    table = (out / "compare.md").read_text()
    assert "| method | lr | accuracy |" in table and "| head | 0.02 |" in table
    assert "every method: 2 epochs, batch 8, max length 32, warmup 6%" in table and "saved weights: the file(s)" in table
    with pytest.warns(LightftWarning, match=r"compare.md now lists baseline; the earlier table's head is left out "
                                            r"\(finished runs stay in .*: add them to --methods"):
        lightft.compare("baseline", model=fast["model"], data=fast["data"], epochs=2, batch_size=8, max_length=32,
                        quiet=True, output=str(out))
    # A method folder without metrics.json (a run killed before it finished, or a stray folder) is named as such.
    (out / "lora").mkdir()
    with pytest.raises(LightftError, match=r"compare-tiny-data0/lora holds an unfinished run \(no metrics.json\); "
                                           r"delete that folder to train lora again"):
        lightft.compare("lora", model=fast["model"], data=fast["data"], epochs=2, batch_size=8, max_length=32,
                        quiet=True, output=str(out))


def test_a_finished_run_on_data_that_changed_since_is_not_reused(fast, tmp_path, capfd):
    import shutil

    data = tmp_path / "data"
    shutil.copytree(fast["data"], data)
    kw = dict(model=fast["model"], data=str(data), epochs=1, batch_size=8, max_length=32, quiet=True,
              output=str(tmp_path / "cmp"), baseline=False)
    first = lightft.compare("head", **kw)
    assert capfd.readouterr() == ("", "")  # quiet=True: a library call prints nothing, its child runs neither
    assert lightft.compare("head", **kw).rows == first.rows  # same rows: reused
    metrics_file = tmp_path / "cmp" / "head" / "metrics.json"
    finished = metrics_file.read_text()
    marked = json.loads(finished)
    marked["train"]["interrupted"] = True  # as a run stopped by Ctrl-C after its first epoch records it
    metrics_file.write_text(json.dumps(marked))
    with pytest.raises(LightftError, match=r"cmp/head holds a run interrupted after epoch 1 of 1; delete .* to train "
                                           r"head in full"):
        lightft.compare("head", **kw)
    metrics_file.write_text(finished)
    config_file = tmp_path / "cmp" / "head" / "config.yaml"
    config = config_file.read_text()
    config_file.write_text("")  # a damaged finished run: said as such, with compare's own way out
    with pytest.raises(LightftError, match=r"^run directory .*cmp/head is damaged: its config.yaml is empty; delete "
                                           r".*cmp/head to train it again, or pass another --output$"):
        lightft.compare("head", **kw)
    config_file.write_text(config)
    rows = (data / "test.jsonl").read_text().splitlines()
    (data / "test.jsonl").write_text("\n".join(rows[: len(rows) // 2]) + "\n")  # half the test file is gone
    with pytest.raises(LightftError, match=r"cmp/head holds a finished run trained on other rows than --data .*data "
                                           r"holds now \(the files changed since\); pass another --output, or delete"):
        lightft.compare("head", **kw)


def test_compare_output_must_not_be_a_run_directory(fast):
    run = lightft.train(method="head", **fast)
    with pytest.raises(LightftError, match=r"--output .* is a run directory of one method"):
        lightft.compare("head", model=fast["model"], data=fast["data"], output=str(run.path), quiet=True)


def test_every_method_is_checked_against_the_model_before_any_trains(fast, tmp_path):
    out = tmp_path / "cmp"
    with pytest.raises(LightftError, match=r"--block-size 7 must divide the input features of every target of --method "
                                           r"oft \(32 in this bert model\)"):
        lightft.compare("head,lora,oft", model=fast["model"], data=fast["data"], block_size=7, epochs=1,
                        max_length=32, quiet=True, output=str(out))
    assert not (out / "head").exists()  # refused before head trained, not after


def test_compare_takes_a_run_directory_as_its_config_like_the_cli(fast, tmp_path, monkeypatch):
    import warnings

    run = lightft.train(method="lora", **fast)
    monkeypatch.chdir(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("error", LightftWarning)  # no 'replaces the config's lora' warning: compare sets methods
        comparison = lightft.compare("baseline,head", run.path, quiet=True)
    assert comparison.path.resolve() == tmp_path / "runs" / "compare-tiny-data0"  # not the run's own directory
    assert [r["method"] for r in comparison.rows] == ["baseline", "head"]
    with pytest.raises(LightftError, match=r"compare\(\) does not take method=; pass the methods to run as"):
        lightft.compare("head", run.path, method="lora")


def test_processes_trains_each_method_data_parallel(fast, tmp_path, capsys):
    """--processes 2: each method's run in two processes (as torchrun starts them), recorded and checked on reuse."""
    out = tmp_path / "cmp"
    shared = dict(model=fast["model"], data=fast["data"], epochs=1, batch_size=6, max_length=32, quiet=True,
                  output=str(out))
    with pytest.raises(SystemExit) as done:
        main(["compare", "--methods", "baseline,lora", "--processes", "2", "--model", fast["model"], "--data",
              fast["data"], "--epochs", "1", "--batch-size", "6", "--max-length", "32", "--quiet", "--output", str(out)])
    assert done.value.code == 0, capsys.readouterr().err
    metrics = json.loads((out / "lora" / "metrics.json").read_text())
    assert metrics["train"]["processes"] == 2 and metrics["train"]["samples"] == 108  # every row, once
    assert json.loads((out / "compare.json").read_text())["processes"] == 2
    assert "each method data-parallel in 2 processes (batch size per process)" in (out / "compare.md").read_text()
    lightft.compare("lora", processes=2, **shared)  # reused
    with pytest.raises(LightftError, match=r"cmp/lora holds a finished run trained in 2 processes \(this compare: 1; "
                                           r"--batch-size is per process\); pass another --output"):
        lightft.compare("lora", **shared)
    for bad in (0, 1.5, True):
        with pytest.raises(LightftError, match=rf"--processes must be a whole number >= 1, got {bad!r}"):
            lightft.compare("lora", processes=bad, **shared)


def test_a_failing_process_stops_its_partners(fast, tmp_path, monkeypatch):
    """One of the processes of a method dies: the other, waiting on it in a collective, is stopped, and compare fails
    with one line."""
    from lightft import comparison

    started = []
    real = comparison._start_children

    def one_dies(config_file, quiet, processes):
        children = real(config_file, quiet, processes)
        children[1].kill()
        started.extend(children)
        return children

    monkeypatch.setattr(comparison, "_start_children", one_dies)
    with pytest.raises(LightftError, match=r"method 'lora' failed \(exit -9\); its error is printed above"):
        lightft.compare("lora", processes=2, model=fast["model"], data=fast["data"], epochs=1, batch_size=6,
                        max_length=32, quiet=True, output=str(tmp_path / "cmp"))
    assert [child.poll() is not None for child in started] == [True, True]


def test_sigusr1_pauses_a_comparison_of_data_parallel_runs_and_it_resumes(tiny_model_dir, tmp_path):
    """The request is passed on to each of the method's processes, which pause together; compare stops with 75."""
    import signal
    import subprocess
    import sys
    import time

    from lightft.pause import EXIT_STATUS
    from tests.conftest import synthetic_rows, write_jsonl

    data = tmp_path / "data"
    data.mkdir()
    write_jsonl(data / "train.jsonl", synthetic_rows(1500, seed=1))
    write_jsonl(data / "test.jsonl", synthetic_rows(40, seed=2))
    command = [sys.executable, "-m", "lightft", "compare", "--methods", "lora", "--processes", "2", "--model",
               str(tiny_model_dir), "--data", str(data), "--epochs", "2", "--max-length", "32", "--quiet",
               "--batch-size", "8", "--output", str(tmp_path / "cmp")]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    # the method's processes start once compare has checked the data and model: slow on a loaded machine
    started = time.monotonic()
    while not (tmp_path / "cmp" / ".lora.config.yaml").exists() and time.monotonic() - started < 120:
        time.sleep(0.1)
    time.sleep(3)  # into their training
    assert process.poll() is None, "the comparison ended before it could be paused"
    process.send_signal(signal.SIGUSR1)
    _, err = process.communicate(timeout=300)
    assert process.returncode == EXIT_STATUS, err
    assert err.strip().splitlines()[-1] == ("paused: the comparison stops at lora (its training state is saved); the "
                                            "same command resumes it")
    assert err.count("paused:") == 1  # compare's line only: its method's processes leave it to compare
    state = json.loads((tmp_path / "cmp" / ".lora.checkpoint" / "state.json").read_text())
    assert state["processes"] == 2 and not (tmp_path / "cmp" / "lora").exists()
    again = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert again.stderr.count("warning: resuming the unfinished run") == 1  # the main child's, once
    metrics = json.loads((tmp_path / "cmp" / "lora" / "metrics.json").read_text())
    assert metrics["train"]["resumed"] and metrics["train"]["processes"] == 2
    # 1,350 rows: 169 batches of up to 8 dealt out in turn, the shorter share padded with one repeated batch of 8
    assert metrics["train"]["samples"] == 2 * 1358 and len(metrics["history"]) == 2


def test_a_pause_asked_before_a_method_starts_stops_the_comparison_there(fast, tmp_path, monkeypatch, capsys):
    """The request may come while compare reads the data, or after a method finished without pausing: compare
    stops before the next method (its children start with SIGUSR1 blocked until their handler is in place)."""
    import threading

    from lightft import comparison, pause

    real = comparison._start_children

    def signalled_at_once(config_file, quiet, processes):
        children = real(config_file, quiet, processes)
        for child in children:  # before the child's CLI can have installed its handler
            child.send_signal(__import__("signal").SIGUSR1)
        return children

    monkeypatch.setattr(comparison, "_start_children", signalled_at_once)
    out = tmp_path / "cmp"
    run = dict(model=fast["model"], data=fast["data"], epochs=1, batch_size=8, max_length=32, quiet=True,
               output=str(out), checkpoint_minutes=10)
    with pytest.raises(pause.Paused, match=r"paused: the comparison stops at head \(its training state is saved\)"):
        comparison.compare("head,lora", **run)  # the early signal waited for the handler: head paused at step 1
    assert (out / ".head.checkpoint" / "state.json").is_file()
    monkeypatch.undo()
    timer = threading.Timer(0, pause.request)
    timer.start()
    timer.join()
    with pytest.raises(pause.Paused, match="paused: the comparison stops before head; the same command goes on"):
        comparison.compare("head,lora", **run)
    assert not pause.requested()
    done = comparison.compare("head,lora", **run)
    assert [r["method"] for r in done.rows] == ["head", "lora"]
