"""Data-parallel training under accelerate launch / torchrun (gloo on the CPU): two processes of batch 6 train what
one process of batch 12 trains, the main process alone writes the run, and what is not supported yet says so."""

import json
import os
import subprocess
import sys

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
    assert two.stderr.count("the training state is not saved when 2 processes train together") == 1
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
    with pytest.raises(LightftError, match=r"--compile is not supported with several processes \(accelerate launch\) "
                                           r"yet; drop --compile, or train in one process"):
        lightft.train(**fast, method="lora", compile=True)
    with pytest.raises(LightftError, match=r"--unpadded on is not supported with several processes"):
        lightft.train(**fast, method="lora", unpadded="on")

    with pytest.raises(LightftError, match=r"lightft compare trains its methods one after another.*does not run "
                                           r"under accelerate launch \(2 processes here\)"):
        lightft.compare("lora", **{k: v for k, v in fast.items() if k != "output"})


def test_a_saved_one_process_state_is_never_lost_or_shared(still_model, tiny_data, tmp_path):
    import fcntl

    from lightft.training.checkpoint import path_for

    common = ["--model", still_model, "--data", tiny_data, "--method", "lora", "--epochs", 1, "--max-length", 32,
              "--quiet", "--batch-size", 6, "--output", tmp_path / "run"]
    state = path_for(tmp_path / "run")
    state.mkdir()
    (state / "state.json").write_text("{}")  # an interrupted one-process run's saved state
    refused = run(common, 2, ok=False)
    assert "has the saved state of an unfinished run, which several processes cannot resume yet; resume it in one " \
           "process" in refused.stderr  # (torchrun then prints its own summary)
    assert (state / "state.json").exists() and not (tmp_path / "run").exists()
    with open(state / "lock", "a+") as held:  # a one-process run training into the same output right now
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        busy = run([*common, "--no-resume"], 2, ok=False)
    assert "another lightft run is training into" in busy.stderr and (state / "state.json").exists()
    fresh = run([*common, "--no-resume"], 2)
    assert "--no-resume: discarded the saved state of an unfinished run" in fresh.stderr
    assert (tmp_path / "run" / "metrics.json").exists() and sorted(p.name for p in tmp_path.iterdir()) == ["run"]
