"""Checkpoint/resume: a run stopped right after any save (mid-epoch, at an epoch's end, after its last epoch) and
run again finishes with exactly the metrics of a run that never stopped; saving changes nothing; a saved state
of other settings or other rows is refused with one line; a real kill -9 of `lightft train` resumes."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

import lightft
from lightft.errors import LightftError, LightftWarning
from lightft.training import checkpoint
from lightft.training.checkpoint import Checkpoint
from tests.conftest import synthetic_rows, write_jsonl

EVERY_UPDATE = 1e-9  # --checkpoint-minutes: a save after every update and every epoch


class Killed(BaseException):
    """Stands for the process dying: nothing in lightft catches it."""


SAVE = Checkpoint.save


def kill_after_save(monkeypatch, n: int) -> None:
    save, count = SAVE, [0]

    def dying_save(self, snap):
        save(self, snap)
        count[0] += 1
        if count[0] == n:
            raise Killed

    monkeypatch.setattr(Checkpoint, "save", dying_save)


def figures(metrics: dict) -> dict:
    """What a run measured, without its timings."""
    def strip(d):
        return {k: v for k, v in d.items() if k not in ("seconds", "samples_per_second")}

    train = {k: metrics["train"][k] for k in ("loss_curve", "best_epoch", "samples", "epochs_run")}
    return {"eval": strip(metrics["eval"]), "baseline": strip(metrics.get("baseline", {})), "history": metrics["history"],
            "validation": metrics["validation"], "train": train}


_REFERENCE: dict = {}


def reference(fast, tmp_path_factory, **kw) -> dict:
    """The uninterrupted run's figures (cached per settings): saving after every update changes nothing."""
    key = json.dumps(kw, sort_keys=True)
    if key not in _REFERENCE:
        root = tmp_path_factory.mktemp("reference")
        saving = lightft.train(**{**fast, **kw, "output": str(root / "saving"), "checkpoint_minutes": EVERY_UPDATE})
        plain = lightft.train(**{**fast, **kw, "output": str(root / "plain"), "checkpoint_minutes": 0})
        assert figures(saving.metrics) == figures(plain.metrics)
        assert not checkpoint.path_for(root / "saving").exists()  # removed once the run directory is written
        _REFERENCE[key] = figures(plain.metrics)
    return _REFERENCE[key]


# 108 training rows (120 less the carved validation) in batches of 8: 14 batches an epoch, 2 epochs.
# With grad_accum 1 a save follows each of an epoch's first 13 updates, then one after its validation (14, 28);
# with grad_accum 2, 6 mid-epoch saves and one at the end (7, 14).
@pytest.mark.parametrize("method,grad_accum,kill_at", [
    ("lora", 1, 3),  # mid-epoch 1
    ("lora", 1, 14),  # after epoch 1's validation
    ("lora", 1, 28),  # after the last epoch: only testing and saving remain
    ("lora", 2, 10),  # mid-epoch 2, accumulation windows
    ("adalora", 1, 20),  # its rank allocator's importance scores travel with the state
    ("full", 1, 16),
])
def test_a_run_killed_after_any_save_finishes_as_if_it_never_stopped(fast, tmp_path_factory, monkeypatch, method,
                                                                     grad_accum, kill_at):
    kw = {"method": method, "grad_accum": grad_accum}
    want = reference(fast, tmp_path_factory, **kw)
    run = {**fast, **kw, "checkpoint_minutes": EVERY_UPDATE}
    kill_after_save(monkeypatch, kill_at)
    with pytest.raises(Killed):
        lightft.train(**run)
    state = checkpoint.path_for(Path(fast["output"]))
    assert not Path(fast["output"]).exists() and (state / "state.json").is_file()
    assert {p.suffix or p.name for p in state.iterdir()} == {".json", ".yaml", ".safetensors", "lock"}  # no pickle
    monkeypatch.setattr(Checkpoint, "save", SAVE)
    with pytest.warns(LightftWarning, match="resuming the unfinished run"):
        resumed = lightft.train(**run)
    assert figures(resumed.metrics) == want
    assert resumed.metrics["train"]["resumed"] and not state.exists()
    assert "the run was resumed from its saved training state" in (resumed.path / "report.md").read_text()


def test_token_budget_batches_resume_mid_epoch(fast, tmp_path_factory, monkeypatch):
    kw = {"max_tokens": 96, "method": "lora"}
    want = reference(fast, tmp_path_factory, **kw)
    kill_after_save(monkeypatch, 5)
    with pytest.raises(Killed):
        lightft.train(**{**fast, **kw, "checkpoint_minutes": EVERY_UPDATE})
    monkeypatch.setattr(Checkpoint, "save", SAVE)
    with pytest.warns(LightftWarning, match="in epoch 1, after step 5"):
        assert figures(lightft.train(**{**fast, **kw, "checkpoint_minutes": EVERY_UPDATE}).metrics) == want


def stopped_run(fast, monkeypatch, **kw) -> dict:
    run = {**fast, "method": "lora", "checkpoint_minutes": EVERY_UPDATE, **kw}
    kill_after_save(monkeypatch, 4)
    with pytest.raises(Killed):
        lightft.train(**run)
    monkeypatch.setattr(Checkpoint, "save", SAVE)
    return run


def test_a_saved_state_of_other_settings_is_refused_and_no_resume_discards_it(fast, monkeypatch):
    run = stopped_run(fast, monkeypatch)
    with pytest.raises(LightftError, match=r"unfinished run with other settings \(lr 0.001 there, 0.002 here\); run "
                                           r"it with those settings to resume it, pass --no-resume"):
        lightft.train(**{**run, "lr": 2e-3})
    with pytest.warns(LightftWarning, match="--no-resume: discarded the saved state"):
        fresh = lightft.train(**{**run, "lr": 2e-3, "resume": False})
    assert "resumed" not in fresh.metrics["train"]
    assert not checkpoint.path_for(Path(fast["output"])).exists()


def test_settings_that_change_nothing_may_differ(fast, monkeypatch):
    run = stopped_run(fast, monkeypatch)
    with pytest.warns(LightftWarning, match="resuming"):
        lightft.train(**{**run, "checkpoint_minutes": 30, "quiet": False})


def test_a_saved_state_of_other_rows_is_refused(fast, monkeypatch, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    write_jsonl(data / "train.jsonl", synthetic_rows(120, seed=1))
    write_jsonl(data / "test.jsonl", synthetic_rows(40, seed=2))
    run = stopped_run(fast, monkeypatch, data=str(data))
    write_jsonl(data / "train.jsonl", synthetic_rows(120, seed=5))
    with pytest.raises(LightftError, match="trained on other rows than --data .* holds now"):
        lightft.train(**run)


def test_a_damaged_state_is_one_line_error(fast, monkeypatch):
    run = stopped_run(fast, monkeypatch)
    state = checkpoint.path_for(Path(fast["output"]))
    meta = json.loads((state / "state.json").read_text())
    (state / "state.json").write_text(json.dumps({k: v for k, v in meta.items() if k != "tally"}))
    with pytest.raises(LightftError, match=r"is damaged \(state.json lacks what a resume needs"):
        lightft.train(**run)
    (state / "state.json").write_text(json.dumps(meta))
    for tensors in state.glob("tensors-*.safetensors"):
        tensors.write_bytes(b"not safetensors")
    with pytest.raises(LightftError, match=r"saved training state .* is damaged \(tensors unreadable.*\); pass "
                                           "--no-resume to discard it"):
        lightft.train(**run)
    (state / "state.json").write_text("{")
    with pytest.raises(LightftError, match=r"is damaged \(state.json unreadable"):
        lightft.train(**run)
    with pytest.warns(LightftWarning, match="discarded"):
        lightft.train(**{**run, "resume": False})


def test_a_folder_left_by_a_kill_during_the_first_save_is_ignored(fast):
    state = checkpoint.path_for(Path(fast["output"]))
    state.mkdir()
    (state / "tensors-1-1.safetensors").write_bytes(b"half")
    run = lightft.train(**fast)
    assert "resumed" not in run.metrics["train"] and not state.exists()


def test_the_same_command_without_output_resumes_its_run(fast, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    run = stopped_run(fast, monkeypatch, output=None)
    (started,) = Path("runs").glob(".*.checkpoint")
    time.sleep(1.1)  # the default name holds the time to the second
    meta = json.loads((started / "state.json").read_text())
    config = yaml.safe_load((started / "config.yaml").read_text())
    assert checkpoint.find_unfinished(Path("runs"), "", config, meta["extra"]["fingerprint"]) == \
        Path("runs") / started.name[1:-len(".checkpoint")]
    (started / "state.json").write_text(json.dumps({**meta, "processes": 2}))  # trained by two processes
    assert checkpoint.find_unfinished(Path("runs"), "", config, meta["extra"]["fingerprint"]) is None
    assert checkpoint.find_unfinished(Path("runs"), "", config, meta["extra"]["fingerprint"], processes=2)
    (started / "state.json").write_text(json.dumps(meta))
    with pytest.warns(LightftWarning, match="resuming"):
        resumed = lightft.train(**run)
    assert resumed.path.name == started.name[1:-len(".checkpoint")]
    assert list(Path("runs").iterdir()) == [resumed.path]


def long_run(tiny_model_dir, tmp_path, env) -> list[str]:
    """`lightft train` of 1,500 rows for 2 epochs (seconds, long enough to stop part-way), once run whole into
    tmp_path/whole; its command without --output."""
    data = tmp_path / "data"
    data.mkdir()
    write_jsonl(data / "train.jsonl", synthetic_rows(1500, seed=1))
    write_jsonl(data / "test.jsonl", synthetic_rows(40, seed=2))
    command = [sys.executable, "-m", "lightft", "train", "--model", str(tiny_model_dir), "--data", str(data),
               "--epochs", "2", "--max-length", "32", "--quiet", "--no-baseline", "--lr", "1e-3"]
    whole = subprocess.run([*command, "--output", str(tmp_path / "whole"), "--checkpoint-minutes", "0"], env=env,
                           capture_output=True, text=True, timeout=300)
    assert whole.returncode == 0, whole.stderr
    return command


def test_kill_9_then_the_same_command_resumes(tiny_model_dir, tmp_path):
    """The real thing: SIGKILL to `lightft train` once a state is saved mid-run, then the same command again."""
    env = {**os.environ, "PYTHONWARNINGS": "default"}
    command = long_run(tiny_model_dir, tmp_path, env)

    killed = [*command, "--output", str(tmp_path / "killed"), "--checkpoint-minutes", "0.002"]
    state = checkpoint.path_for(tmp_path / "killed") / "state.json"
    process = subprocess.Popen(killed, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and process.poll() is None:
        if state.is_file() and json.loads(state.read_text())["state"]["step"] >= 30:
            break
        time.sleep(0.05)
    assert process.poll() is None, "the run ended before it could be killed"
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert not (tmp_path / "killed").exists()

    again = subprocess.run(killed, env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert "warning: resuming the unfinished run bound for" in again.stderr
    want = json.loads((tmp_path / "whole" / "metrics.json").read_text())
    got = json.loads((tmp_path / "killed" / "metrics.json").read_text())
    assert got["train"]["resumed"][0]["step"] >= 30
    assert {k: got[k] for k in ("history", "validation")} == {k: want[k] for k in ("history", "validation")}
    assert got["eval"]["loss"] == want["eval"]["loss"] and got["train"]["loss_curve"] == want["train"]["loss_curve"]
    assert not checkpoint.path_for(tmp_path / "killed").exists()


def test_a_save_that_fails_warns_once_and_training_goes_on(fast, monkeypatch):
    def full_disk(self, snap):
        self.path.mkdir(parents=True, exist_ok=True)
        (self.path / "tensors-9-half.safetensors").write_bytes(b"half")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Checkpoint, "_write", full_disk)
    with pytest.warns(LightftWarning, match=r"could not save the training state .* \(No space left on device\); "
                                            "training goes on") as caught:
        run = lightft.train(**{**fast, "checkpoint_minutes": EVERY_UPDATE})
    assert len([w for w in caught if "could not save" in str(w.message)]) == 1
    assert (run.path / "metrics.json").is_file() and not checkpoint.path_for(Path(fast["output"])).exists()


@pytest.mark.parametrize("method", ["prefix", "prompt"])
def test_soft_prompt_methods_resume_too(fast, tmp_path_factory, monkeypatch, method):
    """A resumed run skips the baseline evaluation, which used to switch the attention function as a side effect."""
    want = reference(fast, tmp_path_factory, method=method)
    kill_after_save(monkeypatch, 9)
    with pytest.raises(Killed):
        lightft.train(**{**fast, "method": method, "checkpoint_minutes": EVERY_UPDATE})
    monkeypatch.setattr(Checkpoint, "save", SAVE)
    with pytest.warns(LightftWarning, match="resuming"):
        assert figures(lightft.train(**{**fast, "method": method, "checkpoint_minutes": EVERY_UPDATE}).metrics) == want


def test_no_host_sync_per_update_while_no_save_is_due(fast, monkeypatch):
    import torch

    calls = [0]
    item = torch.Tensor.item

    def counting(self):
        calls[0] += 1
        return item(self)

    monkeypatch.setattr(torch.Tensor, "item", counting)
    lightft.train(**{**fast, "checkpoint_minutes": 0, "output": fast["output"] + "-off"})
    off, calls[0] = calls[0], 0
    lightft.train(**{**fast, "checkpoint_minutes": 10})
    assert calls[0] == off


def test_a_run_that_diverges_leaves_no_state_to_block_the_lower_rate(fast):
    run = {**fast, "lr": 1e6, "max_grad_norm": 0, "checkpoint_minutes": EVERY_UPDATE}
    with pytest.raises(LightftError, match="training diverged"):
        lightft.train(**run)
    assert not checkpoint.path_for(Path(fast["output"])).exists()
    assert "resumed" not in lightft.train(**{**run, "lr": 1e-3, "max_grad_norm": 1.0}).metrics["train"]


def test_two_runs_into_one_output_at_once_are_refused(fast):
    state = Checkpoint(checkpoint.path_for(Path(fast["output"])))
    state.acquire(Path(fast["output"]))  # another process training into it now
    try:
        with pytest.raises(LightftError, match="another lightft run is training into .* right now"):
            lightft.train(**fast)
    finally:
        state.release()


def test_without_output_finished_and_busy_states_are_passed_over(fast, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    data = tmp_path / "my[set]"  # glob characters in the data's name
    data.mkdir()
    for split in ("train", "test"):
        (data / f"{split}.jsonl").write_bytes((Path(fast["data"]) / f"{split}.jsonl").read_bytes())
    run = stopped_run(fast, monkeypatch, output=None, data=str(data))
    (state,) = Path("runs").glob(".*.checkpoint")
    finished = Path("runs") / state.name[1:-len(".checkpoint")]
    finished.mkdir()  # its run directory was written, and the process died removing the state
    time.sleep(1.1)
    result = lightft.train(**run)
    assert "resumed" not in result.metrics["train"] and result.path != finished and not state.exists()


def test_no_resume_is_not_written_into_the_runs_config(fast):
    run = lightft.train(**{**fast, "resume": False})
    assert "resume: true" in (run.path / "config.yaml").read_text()


def test_an_interrupt_while_testing_keeps_the_trained_state(fast, monkeypatch):
    """Training over, the test split being scored: Ctrl-C must not cost the trained model."""
    from lightft import pipeline
    from lightft.training import loop

    monkeypatch.setattr(loop, "FINAL_SAVE_SECONDS", 0)  # the tiny run trains for less than the minute it takes
    evaluate = pipeline.Session.evaluate

    def interrupted_test(self, model, split, desc):
        if desc.startswith("testing"):
            raise KeyboardInterrupt
        return evaluate(self, model, split, desc)

    monkeypatch.setattr(pipeline.Session, "evaluate", interrupted_test)
    with pytest.warns(LightftWarning, match="the training state saved last is kept"), pytest.raises(KeyboardInterrupt):
        lightft.train(**fast)
    monkeypatch.setattr(pipeline.Session, "evaluate", evaluate)
    with pytest.warns(LightftWarning, match="after its training \\(testing and saving remain\\)"):
        lightft.train(**fast)


def test_runs_started_in_the_same_second_without_output_take_their_own_names(fast, monkeypatch, tmp_path):
    from lightft import pipeline

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(pipeline, "default_output", lambda cfg: Path("runs") / "data-lora-20260101-000000")
    other = Checkpoint(checkpoint.path_for(Path("runs") / "data-lora-20260101-000000"))
    other.acquire(Path("x"))  # the run that started first, still training
    try:
        run = lightft.train(**{**fast, "output": None, "seed": 3})
    finally:
        other.release()
    assert run.path == Path("runs") / "data-lora-20260101-000000-2"


def test_a_state_with_settings_typed_for_other_methods_resumes(fast, monkeypatch):
    run = stopped_run(fast, monkeypatch)
    with pytest.warns(LightftWarning, match="resuming"):
        lightft.train(**{**run, "vera_rank": 128})  # lora does not read --vera-rank


def test_a_state_without_its_config_is_damaged_not_other_settings(fast, monkeypatch):
    run = stopped_run(fast, monkeypatch)
    (checkpoint.path_for(Path(fast["output"])) / "config.yaml").unlink()
    with pytest.raises(LightftError, match=r"is damaged \(config.yaml: config file .* not found.*\); pass --no-resume"):
        lightft.train(**run)


def test_a_file_system_without_locks_is_one_line_and_leaves_nothing(fast, monkeypatch):
    import errno
    import fcntl

    def no_locks(*args):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(fcntl, "flock", no_locks)
    with pytest.raises(LightftError, match=r"cannot lock the training state .* \(No locks available\); pass "
                                           "--checkpoint-minutes 0"):
        lightft.train(**fast)
    assert not checkpoint.path_for(Path(fast["output"])).exists()
    monkeypatch.undo()
    lightft.train(**{**fast, "checkpoint_minutes": 0})  # the way out works


def test_each_process_state_round_trips(tmp_path):
    """Under several processes the state keeps every process's own RNG and loss sums beside the shared tensors; a
    state that names more processes than it holds parts for is damaged."""
    import random

    import numpy as np
    import torch

    from lightft.training.checkpoint import EpochSums, RankState, Snapshot, rng_state

    def draws():
        return torch.rand(3).tolist(), random.random(), float(np.random.rand())

    states = []
    for seed in (1, 2, 3):
        torch.manual_seed(seed), random.seed(seed), np.random.seed(seed)
        states.append((rng_state(), draws()))
    snap = Snapshot(state={"epoch": 1, "step": 5}, tally={"curve": [(5, 0.5)], "clock": [], "samples": 40},
                    sums=EpochSums(5, 1.5, 40, 0.25, 8, 1), model={"w": torch.ones(2)}, best=None,
                    optimizer={"state": {}, "param_groups": [{"lr": 0.1, "params": [0]}]}, scheduler={"last_epoch": 5},
                    hooks=({}, {}), rng=states[0][0], processes=3,
                    ranks=[RankState(states[i][0], EpochSums(5, 2.0 + i, 41, 0.5, 9, 1), 40 + i) for i in (1, 2)])
    folder = Checkpoint(tmp_path / ".run.checkpoint")
    folder.save(snap)
    back = folder.load()
    assert back.processes == 3 and [r.samples for r in back.ranks] == [41, 42]
    assert [r.sums for r in back.ranks] == [snap.ranks[0].sums, snap.ranks[1].sums] and back.sums == snap.sums
    for restored, (_, drawn) in zip([back.rng, *(r.rng for r in back.ranks)], states):
        checkpoint.set_rng_state(restored)
        assert draws() == drawn  # each process draws on where it stood
    meta = json.loads((folder.path / "state.json").read_text())
    (folder.path / "state.json").write_text(json.dumps({**meta, "ranks": meta["ranks"][:1]}))
    with pytest.raises(LightftError, match=r"is damaged \(state.json lacks what a resume needs \(ValueError: 3 "
                                           r"processes but the state of 2\)"):
        folder.load()


def pause_at_step(monkeypatch, n: int) -> None:
    """A pause request (what SIGUSR1 sets) arriving while the n-th batch trains (without a baseline evaluation,
    whose batches are checked too)."""
    from lightft import pause
    from lightft.threads import ThreadGovernor

    check, count = ThreadGovernor.check, [0]

    def counting(self):
        count[0] += 1
        if count[0] == n + 1:  # fit checks once before the first batch
            pause.request()
        return check(self)

    monkeypatch.setattr(ThreadGovernor, "check", counting)


@pytest.mark.parametrize("step,where", [(3, "in epoch 1, after step 3"), (14, "at the start of epoch 2")])
def test_a_paused_run_saves_its_state_and_resumes_as_if_never_stopped(fast, tmp_path_factory, monkeypatch, step,
                                                                       where):
    """Mid-epoch the pause comes at the update; at an epoch's last batch, after its validation."""
    from lightft.pause import Paused, requested

    want = reference(fast, tmp_path_factory, baseline=False)
    run = {**fast, "baseline": False, "checkpoint_minutes": 10}  # no save is due: the pause alone saves
    pause_at_step(monkeypatch, step)
    with pytest.raises(Paused, match=r"paused: the training state is saved in .*\.run\.checkpoint; the same command "
                                     "resumes it"):
        lightft.train(**run)
    assert not requested() and not Path(fast["output"]).exists()
    monkeypatch.undo()
    with pytest.warns(LightftWarning, match=where):
        assert figures(lightft.train(**run).metrics) == want


def test_a_pause_without_saving_goes_on(fast, monkeypatch):
    pause_at_step(monkeypatch, 3)
    with pytest.warns(LightftWarning, match=r"asked to pause \(SIGUSR1\), but this run saves no training state "
                                            r"\(--checkpoint-minutes 0\): it goes on"):
        run = lightft.train(**{**fast, "checkpoint_minutes": 0})
    assert (run.path / "metrics.json").is_file()


def test_sigusr1_pauses_lightft_train_and_the_same_command_resumes(tiny_model_dir, tmp_path):
    """The real signal: exit status 75 with one line, no run directory, then the same command finishes the run."""
    from lightft.pause import EXIT_STATUS

    command = long_run(tiny_model_dir, tmp_path, dict(os.environ))
    paused = [*command, "--output", str(tmp_path / "paused")]
    process = subprocess.Popen(paused, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    time.sleep(4)  # its handler is in place well before this (and a request before training pauses at step 1)
    assert process.poll() is None, "the run ended before it could be paused"
    process.send_signal(signal.SIGUSR1)
    _, err = process.communicate(timeout=300)
    assert process.returncode == EXIT_STATUS, err
    assert err.strip().splitlines()[-1] == (f"paused: the training state is saved in {tmp_path / '.paused.checkpoint'}"
                                            "; the same command resumes it")
    assert not (tmp_path / "paused").exists()
    again = subprocess.run(paused, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    want, got = (json.loads((tmp_path / n / "metrics.json").read_text()) for n in ("whole", "paused"))
    assert got["train"]["resumed"] and got["history"] == want["history"]
    assert got["train"]["loss_curve"] == want["train"]["loss_curve"] and got["eval"]["loss"] == want["eval"]["loss"]
