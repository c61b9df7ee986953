"""Data-parallel training under accelerate launch / torchrun (gloo on the CPU): two processes of batch 6 train what
one process of batch 12 trains, the main process alone writes the run, and what is not supported yet says so."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

import lightft
from lightft.errors import LightftError


@pytest.fixture(scope="module")
def still_model(tmp_path_factory, tiny_model_dir):
    """The tiny BERT without dropout: runs in one and in two processes can then match to rounding."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    out = tmp_path_factory.mktemp("tiny-still")
    torch.manual_seed(0)
    BertForSequenceClassification(BertConfig(
        vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
        max_position_embeddings=512, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)).save_pretrained(out)
    AutoTokenizer.from_pretrained(tiny_model_dir).save_pretrained(out)
    return out


def run(args, processes: int, ok: bool = True):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore::FutureWarning"}
    env.pop("WORLD_SIZE", None)
    launch = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}"] \
        if processes > 1 else [sys.executable]
    done = subprocess.run([*launch, "-m", "lightft", "train", *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=600)
    assert (done.returncode == 0) == ok, done.stderr[-3000:]
    return done


def test_two_processes_train_what_one_process_with_their_joint_batch_trains(still_model, tiny_data, tmp_path):
    common = ["--model", still_model, "--data", tiny_data, "--method", "lora", "--dropout", 0, "--epochs", 2,
              "--max-length", 32, "--precision", "fp32", "--quiet", "--lr", 5e-2, "--grad-accum", 2]
    one = run([*common, "--batch-size", 12, "--output", tmp_path / "one"], 1)
    two = run([*common, "--batch-size", 6, "--output", tmp_path / "two"], 2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["one", "two"]  # one run directory, no state left
    assert two.stdout.count("run directory:") == 1  # only the main process reports
    a, b = (json.loads((tmp_path / n / "metrics.json").read_text()) for n in ("one", "two"))
    # 108 training rows: 9 batches of 12, or 18 of 6 dealt out in turn; windows of 2 updates (24 rows) either way
    assert a["train"]["samples"] == b["train"]["samples"] == 216
    assert (a["train"]["processes"], b["train"]["processes"]) == (1, 2)  # --batch-size is per process
    assert [s for s, _ in a["train"]["loss_curve"]] == [s for s, _ in b["train"]["loss_curve"]] == [9, 18]
    for (_, x), (_, y) in zip(a["train"]["loss_curve"], b["train"]["loss_curve"]):
        assert x == pytest.approx(y, abs=2e-5)
    assert a["train"]["loss_curve"][0][1] != a["train"]["loss_curve"][1][1]  # it trained
    for x, y in zip(a["history"], b["history"]):
        assert x["validation"]["loss"] == pytest.approx(y["validation"]["loss"], abs=1e-6)
    assert a["eval"]["loss"] == pytest.approx(b["eval"]["loss"], abs=1e-6)
    assert a["baseline"]["loss"] == pytest.approx(b["baseline"]["loss"], abs=1e-9)
    assert lightft.load(tmp_path / "two").predict(["good film"])[0]["label"] in ("neg", "pos")


def test_what_several_processes_do_not_support_yet_is_one_line(fast, monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    with pytest.raises(LightftError, match=r"lightft compare trains its methods one after another.*does not run "
                                           r"under accelerate launch \(2 processes here\)"):
        lightft.compare("lora", **{k: v for k, v in fast.items() if k != "output"})


@pytest.mark.parametrize("flags", [["--compile"], ["--unpadded", "on"]], ids=["compile", "unpadded"])
def test_compiled_or_packed_forwards_train_under_several_processes_as_in_one(still_model, tiny_data, tmp_path, flags):
    """--compile compiles the repeated layers inside DDP's module; the packed forward (CPU: its reference attention)
    runs as DDP's own forward: the same figures as one process."""
    common = ["--model", still_model, "--data", tiny_data, "--method", "lora", "--dropout", 0, "--epochs", 1,
              "--max-length", 32, "--precision", "fp32", "--quiet", "--lr", 5e-2, "--no-baseline", "--grad-accum", 2,
              *flags]
    one = run([*common, "--batch-size", 12, "--output", tmp_path / "one"], 1)
    two = run([*common, "--batch-size", 6, "--output", tmp_path / "two"], 2)
    assert "--compile failed" not in one.stderr + two.stderr
    a, b = (json.loads((tmp_path / n / "metrics.json").read_text()) for n in ("one", "two"))
    assert a["train"]["unpadded"] == b["train"]["unpadded"] == (flags[0] == "--unpadded")
    assert [s for s, _ in a["train"]["loss_curve"]] == [s for s, _ in b["train"]["loss_curve"]] == [9]
    assert a["train"]["loss_curve"][0][1] == pytest.approx(b["train"]["loss_curve"][0][1], abs=2e-5)
    assert a["eval"]["loss"] == pytest.approx(b["eval"]["loss"], abs=1e-6)


def test_a_saved_one_process_state_is_never_lost_or_shared(still_model, tiny_data, tmp_path, monkeypatch):
    import fcntl

    from lightft.training.checkpoint import path_for
    from tests.training.test_checkpoint import EVERY_UPDATE, Killed, kill_after_save

    common = ["--model", still_model, "--data", tiny_data, "--method", "lora", "--epochs", 1, "--max-length", 32,
              "--quiet", "--batch-size", 6, "--output", tmp_path / "run"]
    kill_after_save(monkeypatch, 3)  # an interrupted one-process run's saved state
    with pytest.raises(Killed):
        lightft.train(model=str(still_model), data=str(tiny_data), method="lora", epochs=1, max_length=32, quiet=True,
                      batch_size=6, output=str(tmp_path / "run"), checkpoint_minutes=EVERY_UPDATE)
    state = path_for(tmp_path / "run")
    refused = run(common, 2, ok=False)
    # said once, by the main process (every process stops on its finding); torchrun then prints its own summary
    assert refused.stderr.count(f"error: {tmp_path / 'run'} has the saved state of an unfinished run trained in 1 "
                                "process, and 2 processes train here; resume it in 1 process (the same command "
                                "without accelerate launch), pass --no-resume") == 1, refused.stderr[-3000:]
    assert (state / "state.json").exists() and not (tmp_path / "run").exists()
    with open(state / "lock", "a+") as held:  # a one-process run training into the same output right now
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        busy = run([*common, "--no-resume"], 2, ok=False)
    assert busy.stderr.count("another lightft run is training into") == 1 and (state / "state.json").exists()
    fresh = run([*common, "--no-resume"], 2)
    assert "--no-resume: discarded the saved state of an unfinished run" in fresh.stderr
    assert (tmp_path / "run" / "metrics.json").exists() and sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def _children(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (from /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_two_processes_killed_with_sigkill_resume_as_if_never_stopped(tiny_model_dir, tmp_path):
    """The real thing under torchrun: the process group killed mid-epoch once a state is saved, then the same command
    again. Dropout is on, so each process's own RNG state must come back for the figures to match."""
    import time

    from lightft.training.checkpoint import path_for
    from tests.conftest import synthetic_rows, write_jsonl

    data = tmp_path / "data"
    data.mkdir()
    write_jsonl(data / "train.jsonl", synthetic_rows(1500, seed=1))
    write_jsonl(data / "test.jsonl", synthetic_rows(40, seed=2))
    common = ["--model", tiny_model_dir, "--data", data, "--epochs", 2, "--max-length", 32, "--quiet", "--no-baseline",
              "--lr", 1e-3, "--batch-size", 8]
    run([*common, "--output", tmp_path / "whole", "--checkpoint-minutes", 0], 2)

    killed = [*common, "--output", tmp_path / "killed", "--checkpoint-minutes", 0.002]
    state = path_for(tmp_path / "killed") / "state.json"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore::FutureWarning"}
    env.pop("WORLD_SIZE", None)
    group = subprocess.Popen([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                              "-m", "lightft", "train", *map(str, killed)], env=env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, start_new_session=True)
    deadline, saved = time.monotonic() + 300, {}
    while time.monotonic() < deadline and group.poll() is None:
        if state.is_file():
            saved = json.loads(state.read_text())
            if saved["state"]["step"] >= 40 and saved["sums"]["steps"]:  # mid-epoch, past a few saves
                break
        time.sleep(0.05)
    assert group.poll() is None, "the run ended before it could be killed"
    workers = _children(group.pid)  # torchrun starts each worker in a session of its own
    assert len(workers) == 2
    for pid in [*workers, group.pid]:  # both workers and the launcher, as a machine that dies
        os.kill(pid, signal.SIGKILL)
    group.wait()
    while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not (tmp_path / "killed").exists() and saved["processes"] == 2 and len(saved["ranks"]) == 1
    assert saved["ranks"][0]["sums"]["steps"] == saved["sums"]["steps"]  # both at the same batch

    other = run(killed, 1, ok=False)  # --batch-size is per process: one process cannot go on with it
    assert "trained in 2 processes, and 1 process trains here; resume it in 2 processes (accelerate launch " \
           "--num_processes 2, or torchrun --nproc_per_node 2)" in other.stderr and state.is_file()

    again = run(killed, 2)
    assert again.stderr.count("warning: resuming the unfinished run bound for") == 1
    want, got = (json.loads((tmp_path / n / "metrics.json").read_text()) for n in ("whole", "killed"))
    assert got["train"]["resumed"][0]["step"] >= 40
    assert {k: got[k] for k in ("history", "validation")} == {k: want[k] for k in ("history", "validation")}
    assert got["train"]["loss_curve"] == want["train"]["loss_curve"]
    assert got["train"]["samples"] == want["train"]["samples"] and got["eval"]["loss"] == want["eval"]["loss"]
    assert not path_for(tmp_path / "killed").exists()


def test_an_error_every_process_meets_alike_is_said_once(still_model, tmp_path):
    done = run(["--model", still_model, "--data", tmp_path / "nowhere.jsonl", "--quiet"], 2, ok=False)
    assert done.stderr.count("error: data ") == 1 and "not found; pass an existing file" in done.stderr, \
        done.stderr[-3000:]
    assert "error (process" not in done.stderr


def test_an_error_one_process_alone_meets_is_said_once_and_named(still_model, tiny_data, tmp_path):
    """A failure only process 1 meets (a hub timeout, say): the group stops together, and the main process names it."""
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "sitecustomize.py").write_text(
        "import os\n"
        "if os.environ.get('RANK') == '1':\n"
        "    import lightft.pipeline\n"
        "    from lightft.errors import LightftError\n"
        "    def timed_out(*args, **kwargs):\n"
        "        raise LightftError('the hub timed out')\n"
        "    lightft.pipeline.load_tokenizer = timed_out\n")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join(
        [str(tmp_path / "site"), *filter(None, [os.environ.get("PYTHONPATH")])])}
    env.pop("WORLD_SIZE", None)
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m",
                           "lightft", "train", "--model", str(still_model), "--data", str(tiny_data), "--quiet",
                           "--output", str(tmp_path / "run")], capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode != 0 and done.stderr.count("the hub timed out") == 1, done.stderr[-3000:]
    assert "error (process 1 of 2): the hub timed out" in done.stderr and not (tmp_path / "run").exists()


def test_a_process_that_dies_ends_the_others_with_one_line(tiny_model_dir, tmp_path):
    """Process 1 killed mid-run (the OOM killer, say): process 0's collective breaks, and it says so in one line
    instead of gloo's traceback. The two processes are started as torchrun starts them, without torchrun, which
    would stop process 0 itself as soon as it saw process 1 die."""
    import time

    from lightft.comparison import _free_port
    from lightft.training.checkpoint import path_for
    from tests.conftest import synthetic_rows, write_jsonl

    data = tmp_path / "data"
    data.mkdir()
    write_jsonl(data / "train.jsonl", synthetic_rows(1500, seed=1))
    write_jsonl(data / "test.jsonl", synthetic_rows(40, seed=2))
    group = {"WORLD_SIZE": "2", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(_free_port()), "OMP_NUM_THREADS": "1",
             "PYTHONWARNINGS": "ignore::FutureWarning"}
    command = [sys.executable, "-m", "lightft", "train", "--model", str(tiny_model_dir), "--data", str(data), "--quiet",
               "--no-baseline", "--epochs", "4", "--max-length", "32", "--batch-size", "8", "--output",
               str(tmp_path / "run"), "--checkpoint-minutes", "0.002"]
    workers = [subprocess.Popen(command, env={**os.environ, **group, "RANK": str(rank), "LOCAL_RANK": str(rank)},
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) for rank in (0, 1)]
    state = path_for(tmp_path / "run") / "state.json"
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and not state.is_file():  # into training
        time.sleep(0.05)
    assert workers[1].poll() is None, "the run ended before a process could be killed"
    workers[1].kill()
    _, err = workers[0].communicate(timeout=300)
    workers[1].communicate()
    assert workers[0].returncode == 1, err[-3000:]
    assert err.strip().splitlines()[-1].startswith("error (process 0 of 2): another process of this run stopped, "
                                                    "which ended this one (")
    assert "Traceback" not in err and not (tmp_path / "run").exists() and state.is_file()  # resumable
