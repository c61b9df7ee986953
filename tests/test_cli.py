"""The CLI: help that covers every flag, one-line errors with non-zero exits, and no half-written runs."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import pytest

from lightft import hub
from lightft.cli import build_parser, main, methods_text
from lightft.config import TrainConfig, flag
from lightft.methods import METHODS
from tests.conftest import synthetic_rows, write_jsonl


def run_cli(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    out = capsys.readouterr()
    return exit_info.value.code, out.out, out.err


@pytest.mark.parametrize("command", ["train", "compare", "eval", "predict", "methods", "quickstart"])
def test_every_subcommand_has_help(command, capsys):
    code, out, _ = run_cli([command, "--help"], capsys)
    assert code == 0 and "usage: lightft" in out
    if command in ("train", "compare"):
        for f in dataclasses.fields(TrainConfig):
            if command == "compare" and f.name in ("method", "baseline"):  # --methods says whether a baseline runs
                continue
            assert f"--{flag(f.name)}" in out, f"--{flag(f.name)} missing from {command} --help"
    for action in build_parser()._subparsers._group_actions[0].choices[command]._actions:
        assert action.help, f"{command} {action.option_strings} has no help"


def test_methods_listing_matches_the_registry(capsys):
    code, out, _ = run_cli(["methods"], capsys)
    assert code == 0
    assert out.strip() == methods_text(METHODS).strip()
    for name, m in METHODS.items():
        assert re.search(rf"^{name} +{re.escape(m.summary)}$", out, re.M), name
        assert f"default --lr {m.lr:g}" in out
        for opt in m.options:
            assert f"--{flag(opt)}" in out


@pytest.fixture()
def bad(tmp_path, tiny_model_dir):
    """Run `lightft train` on a data directory; check the error, the exit code and that nothing was written."""

    def check(train_rows, test_rows, extra, message, capsys, data=None):
        root = tmp_path / "data"
        if train_rows is not None:
            write_jsonl(root / "train.jsonl", train_rows)
        if test_rows is not None:
            write_jsonl(root / "test.jsonl", test_rows)
        out_dir = tmp_path / "runs" / "r"
        argv = ["train", "--model", str(tiny_model_dir), "--data", str(data or root), "--output", str(out_dir),
                "--epochs", "1", "--quiet", *extra]
        code, _, err = run_cli(argv, capsys)
        assert code == 2
        # these cases reuse the training rows as test rows, which lightft rightly points out on its own line
        err = "".join(line for line in err.splitlines(True) if "also appear in train word for word" not in line)
        assert err.startswith("error: ") and err.count("\n") == 1, err
        assert "Traceback" not in err
        import re

        assert re.search(message, err), err
        assert not out_dir.exists()
        assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())

    return check


ROWS = synthetic_rows(40, 0)


def test_missing_file(bad, capsys, tmp_path):
    bad(None, None, [], r"data '.*missing.jsonl' not found; pass an existing file or directory with --data", capsys,
        data=str(tmp_path / "missing.jsonl"))


def test_wrong_column(bad, capsys):
    bad(ROWS, ROWS, ["--label-column", "sentiment"],
        r"label column 'sentiment' \(--label-column\) not found; the columns are: text, label", capsys)


def test_empty_text(bad, capsys):
    rows = [dict(r) for r in ROWS]
    rows[3]["text"] = ""
    bad(rows, ROWS, [], r"train row 4 has an empty text in column 'text'", capsys)


def test_eval_label_not_in_train(bad, capsys):
    bad(ROWS, ROWS + [{"text": "hmm", "label": "unsure"}], [],
        r"label\(s\) 'unsure' appear in the test split \(1 row\) but never in train, which has 'neg', 'pos'", capsys)


def test_single_class(bad, capsys):
    bad([r for r in ROWS if r["label"] == "neg"], ROWS, [], r"single class \('neg'.*needs at least 2 classes", capsys)


def test_unknown_method(bad, capsys):
    bad(ROWS, ROWS, ["--method", "qlora"], r"unknown --method 'qlora'; choose one of: head, lora, dora, .*, bitfit, full",
        capsys)


def test_unknown_target_module(bad, capsys):
    bad(ROWS, ROWS, ["--targets", "q_proj"],
        r"--targets 'q_proj': no module named 'q_proj' in this bert model; candidates are: dense, key, query, value", capsys)


def test_bad_numbers_are_all_reported_at_once(bad, capsys):
    bad(ROWS, ROWS, ["--epochs", "0", "--dropout", "1.5"],
        r"--epochs must be a whole number >= 1, got 0; --dropout must be in \[0, 1\), got 1.5", capsys)


def test_unreachable_hub_model_fails_fast(tmp_path, tiny_data, capsys, monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "https://hub.invalid")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "empty-cache"))
    hub.hub_reachable.cache_clear()
    import time

    start = time.monotonic()
    try:
        code, _, err = run_cli(["eval", "bert-base-cased", "--data", str(tiny_data), "--quiet"], capsys)
    finally:
        hub.hub_reachable.cache_clear()
    assert time.monotonic() - start < 20, "no retry loop against an unreachable hub"
    assert code == 2
    assert err.startswith("error: model 'bert-base-cased' is not a local path, and it cannot be downloaded as a hub "
                          "id: the Hugging Face hub cannot be reached; check the path, or pass an existing model "
                          "directory (saved with save_pretrained) with eval's MODEL_OR_RUN argument, or connect to "
                          "the internet")


def test_eval_on_a_folder_of_runs_names_them(fast, tmp_path, capsys):
    import lightft

    lightft.train(method="head", **{**fast, "output": str(tmp_path / "cmp" / "head")})
    code, _, err = run_cli(["eval", str(tmp_path / "cmp"), "--data", fast["data"], "--quiet"], capsys)
    assert (code, err) == (2, f"error: {tmp_path / 'cmp'} is a folder of runs (a comparison), not one run: pass one of "
                              f"them, e.g. {tmp_path / 'cmp' / 'head'} (it holds head)\n")


def test_unreachable_hub_model_for_train(tmp_path, tiny_model_dir, capsys, monkeypatch):
    write_jsonl(tmp_path / "d" / "train.jsonl", ROWS)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "empty-cache"))
    hub.hub_reachable.cache_clear()
    try:
        code, _, err = run_cli(["train", "--model", "bert-base-cased", "--data", str(tmp_path / "d"), "--output",
                                str(tmp_path / "r"), "--quiet"], capsys)
    finally:
        hub.hub_reachable.cache_clear()
    assert code == 2
    assert err.strip() == (
        "error: model 'bert-base-cased' is not a local path, and it cannot be downloaded as a hub id: offline mode "
        "is set (HF_HUB_OFFLINE); check the path, or pass an existing model directory (saved with save_pretrained) "
        "with --model, or connect to the internet"
    )
    assert not (tmp_path / "r").exists()


def test_unreachable_hub_dataset(tmp_path, capsys, monkeypatch, tiny_model_dir):
    monkeypatch.setenv("HF_ENDPOINT", "https://hub.invalid")
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    hub.hub_reachable.cache_clear()
    try:
        code, _, err = run_cli(["train", "--model", str(tiny_model_dir), "--data", "imdb", "--quiet", "--output",
                                str(tmp_path / "r")], capsys)
    finally:
        hub.hub_reachable.cache_clear()
    assert code == 2
    assert err == ("error: dataset 'imdb' is not a local path, and it cannot be downloaded as a hub id: the Hugging "
                   "Face hub cannot be reached; check the path, or pass an existing file or directory with --data, or "
                   "connect to the internet\n")


def test_train_predict_eval_from_the_command_line(tmp_path, tiny_model_dir, tiny_data, capsys):
    run = tmp_path / "run"
    code, out, err = run_cli(["train", "--model", str(tiny_model_dir), "--data", str(tiny_data), "--output", str(run),
                              "--epochs", "1", "--max-length", "32", "--quiet"], capsys)
    assert code == 0, err
    assert "baseline (untrained head): accuracy" in out and f"run directory: {run}" in out
    code, out, _ = run_cli(["predict", str(run), "good great film", "awful boring"], capsys)
    assert code == 0
    lines = out.strip().splitlines()
    assert lines[0].split("\t")[:4] == ["label", "score", "p(neg)", "p(pos)"] and len(lines) == 3
    code, out, err = run_cli(["predict", str(run), "good " * 40, "awful"], capsys)  # the first is cut at 32 tokens
    assert code == 0 and len(out.strip().splitlines()) == 3
    assert err == ("warning: 1 of 2 texts (50.0%) reach --max-length 32 tokens, where longer texts are cut; training "
                   "with a larger --max-length keeps more of them, at more time per text\n")
    texts = tmp_path / "texts.txt"
    texts.write_text("good great film\nawful boring\n")
    preds = tmp_path / "preds.jsonl"
    code, _, _ = run_cli(["predict", str(run), "--file", str(texts), "--output", str(preds)], capsys)
    rows = [json.loads(x) for x in preds.read_text().splitlines()]
    assert code == 0 and [r["text"] for r in rows] == ["good great film", "awful boring"]
    code, out, _ = run_cli(["eval", str(run), "--data", str(tiny_data), "--quiet"], capsys)
    assert code == 0 and out.startswith(f"run {run} on {tiny_data.name} test (40 rows)")
    # options between the run and the texts, texts with tabs, standard input
    code, out, err = run_cli(["predict", str(run), "--batch-size", "1", "good\tfilm", "--base-model",
                              str(tiny_model_dir), "awful"], capsys)
    assert code == 0, err
    assert [line.split("\t")[-1] for line in out.strip().splitlines()[1:]] == ["good film", "awful"]
    import io

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("sys.stdin", io.StringIO("good great film\n\nawful boring\n"))
        code, out, _ = run_cli(["predict", str(run), "--file", "-"], capsys)
    assert code == 0 and len(out.strip().splitlines()) == 3
    # a single file is evaluated whole; --split then does nothing, and says so
    code, out, err = run_cli(["eval", str(run), "--data", str(tiny_data / "test.jsonl"), "--split", "validation",
                              "--quiet"], capsys)
    assert code == 0 and out.startswith(f"run {run} on {tiny_data / 'test.jsonl'} (40 rows)")
    assert f"warning: --split validation is ignored: a single file ({tiny_data / 'test.jsonl'}) is evaluated whole" in err
    code, _, err = run_cli(["eval", str(run), "--data", str(tiny_data), "--max-length", "600", "--quiet"], capsys)
    assert (code, err) == (2, f"error: --max-length 600 is more than the 512 positions of model '{run}' (bert); "
                              "pass --max-length 512 or less\n")
    code, _, err = run_cli(["predict", str(run), "x", "--base-model", str(tmp_path / "gone")], capsys)
    assert code == 2 and err.endswith("not found; pass an existing model directory or a hub id with --base-model\n")
    from transformers import BertConfig, BertForSequenceClassification

    other = tmp_path / "other-bert"  # another hidden size: the adapter cannot fit it
    BertForSequenceClassification(BertConfig(vocab_size=30522, hidden_size=16, num_hidden_layers=1,
                                             num_attention_heads=2, intermediate_size=16)).save_pretrained(other)
    code, _, err = run_cli(["predict", str(run), "x", "--base-model", str(other)], capsys)
    assert code == 2 and re.fullmatch(rf"error: run {run} does not load on --base-model {other} \(RuntimeError: .+\); pass "
                                      rf"the model it was trained from \(config\.yaml: {tiny_model_dir}\), a copy of it, "
                                      r"or, if it is that model, restore the run directory from a copy\n", err), err
    code, _, err = run_cli(["predict", str(tmp_path / "nope"), "x"], capsys)
    assert code == 2 and "run directory" in err and "not found" in err
    code, _, err = run_cli(["eval", str(tmp_path / "nope"), "--data", str(tiny_data)], capsys)
    assert (code, err) == (2, f"error: {tmp_path / 'nope'} not found; pass a run directory written by `lightft train`, "
                              "a model directory, or a hub id\n")
    numbers = tmp_path / "numbers.jsonl"
    numbers.write_text('{"text": "good film"}\n{"text": 5}\n')
    code, _, err = run_cli(["predict", str(run), "--file", str(numbers)], capsys)
    assert (code, err) == (2, f"error: row 2 of {numbers} has an int, not a text, in column 'text'; fill it in or "
                              "drop the row\n")
    holes = tmp_path / "holes.jsonl"
    holes.write_text('{"text": "good film", "label": "pos"}\n{"text": " ", "label": "neg"}\n'
                     '{"text": "so so", "label": "meh"}\n')
    code, _, err = run_cli(["eval", str(run), "--data", str(holes), "--quiet"], capsys)
    assert code == 2 and err.startswith("error: row 2 of the file has ") and "test row" not in err, err
    holes.write_text('{"text": "good film", "label": "pos"}\n{"text": "so so", "label": "meh"}\n')
    code, _, err = run_cli(["eval", str(run), "--data", str(holes), "--quiet"], capsys)
    assert code == 2 and err.startswith("error: label(s) 'meh' appear in the file (1 row), but the run was trained on 'neg', 'pos' only"), err
    odd = tmp_path / "texts.dat"
    odd.write_text("good\n")
    code, _, err = run_cli(["predict", str(run), "--file", str(odd)], capsys)
    assert code == 2 and "expected a .txt, .jsonl, .jsonl.gz, .csv, .tsv or .parquet file, or - for standard" in err


def test_a_failed_compile_is_one_warning_line_and_the_run_completes(tmp_path, tiny_model_dir, tiny_data, capsys,
                                                                  monkeypatch):
    import warnings

    import torch

    from lightft.model import compiled

    def broken(graph, example_inputs):
        raise RuntimeError("no working C++ compiler found\nmore detail")

    torch._dynamo.reset()
    monkeypatch.setattr(compiled, "BACKEND", broken)
    monkeypatch.setattr(compiled, "_FAILED", set())
    monkeypatch.setattr(warnings, "showwarning", warnings.showwarning)  # main() installs its own; restore after
    run = tmp_path / "run"
    with warnings.catch_warnings():
        warnings.simplefilter("default")
        code, _, err = run_cli(["train", "--model", str(tiny_model_dir), "--data", str(tiny_data), "--epochs", "1",
                                "--max-length", "32", "--output", str(run), "--quiet", "--compile"], capsys)
    assert code == 0, err
    lines = [line for line in err.splitlines() if "compile" in line]
    assert lines == ["warning: --compile failed (RuntimeError: no working C++ compiler found); running without it"]
    assert (run / "metrics.json").is_file()
    torch._dynamo.reset()


def test_a_broken_config_yaml_says_where(tmp_path, capsys):
    cfg = tmp_path / "config.yaml"
    cfg.write_text("model: m\ndata: [d\nlr: 2\n")
    code, _, err = run_cli(["train", "--config", str(cfg)], capsys)
    assert (code, err) == (2, f"error: config file {cfg} is not valid YAML (expected ',' or ']', but got ':' at line 3, "
                              "column 3); fix it there\n")


def test_config_numbers_given_as_strings(tmp_path):
    # YAML reads `lr: 2e-3` (no dot) as a string; it and API keywords given as strings are converted.
    cfg = tmp_path / "c.yaml"
    cfg.write_text("model: m\ndata: d\nlr: 2e-3\nrank: '4'\n")
    from lightft.pipeline import resolve_config

    resolved = resolve_config(str(cfg), alpha="8")
    assert (resolved.lr, resolved.rank, resolved.alpha) == (0.002, 4, 8.0)


@pytest.mark.parametrize("values, message", [
    ({"lr": float("nan")}, r"--lr must be a finite number, got nan"),
    ({"weight_decay": None}, r"--weight-decay needs a value, got None"),
    ({"baseline": "no"}, r"--baseline must be true or false, got 'no'"),
    ({"seed": 2**40}, r"--seed must be in 0\.\.4294967295"),
    ({"method": ["lora"]}, r"--method must be a string, got \['lora'\] \(list\)"),
    ({"rank": 2.5}, r"--rank must be a whole number, got 2\.5"),
    ({"weight_decay": -1}, r"--weight-decay must be >= 0 \(0 turns it off\), got -1"),
    ({"max_grad_norm": -0.5}, r"--max-grad-norm must be >= 0 \(0 turns it off\), got -0\.5"),
])
def test_config_types_are_checked(values, message):
    from lightft.errors import LightftError
    from lightft.pipeline import resolve_config

    with pytest.raises(LightftError, match=message):
        resolve_config(model="m", data="d", **values)


def test_diverging_run_stops_with_one_line_and_writes_nothing(bad, capsys):
    bad(ROWS, ROWS, ["--method", "full", "--lr", "1e30", "--max-grad-norm", "0", "--max-length", "32"],
        r"training diverged: the mean training loss became nan by step \d+ \(epoch 1\); lower --lr \(it is 1e\+30\) "
        r"or clip gradients again \(--max-grad-norm 1\)", capsys)


def test_max_length_beyond_the_model_positions(bad, capsys):
    bad(ROWS, ROWS, ["--max-length", "600"],
        r"--max-length 600 is more than the 512 positions of model '.*' \(bert\); pass --max-length 512 or less", capsys)


@pytest.mark.parametrize("length", ["1", "2"])
def test_max_length_with_no_room_for_text(length, bad, capsys):
    bad(ROWS, ROWS, ["--max-length", length],
        rf"--max-length {length} leaves no room for text: the tokenizer of '.*' adds 2 special tokens to every text; "
        r"pass --max-length 3 or more \(128 to 512 is usual\)", capsys)


def test_a_max_length_that_cuts_every_training_text_is_said_on_the_terminal(tmp_path, tiny_model_dir, tiny_data,
                                                                             capsys):
    run = tmp_path / "run"
    code, _, err = run_cli(["train", "--model", str(tiny_model_dir), "--data", str(tiny_data), "--output", str(run),
                            "--epochs", "1", "--max-length", "3", "--method", "head", "--quiet"], capsys)
    assert code == 0, err
    assert err == ("warning: 108 of 108 train texts (100.0%) reach --max-length 3 tokens, where longer texts are cut; a "
                   "larger --max-length keeps more of them, at more time per text\n")
    assert "108 of 108 train texts" in (run / "report.md").read_text()


def _model_copy(tiny_model_dir, dest, files=None):
    """The tiny model copied to ``dest``, whole or only ``files``, to be broken by the test."""
    import shutil

    if files is None:
        shutil.copytree(tiny_model_dir, dest)
    else:
        dest.mkdir()
        for name in files:
            shutil.copy(tiny_model_dir / name, dest / name)
    return dest


def test_model_without_tokenizer_files(bad, capsys, tmp_path, tiny_model_dir):
    bare = _model_copy(tiny_model_dir, tmp_path / "no-tokenizer", ("config.json", "model.safetensors"))
    bad(ROWS, ROWS, ["--model", str(bare)], r"model directory .*no-tokenizer has no tokenizer files \(none of "
        r"tokenizer\.json, .*\); save the model's tokenizer there", capsys)


def test_model_with_pickled_weights_only(bad, capsys, tmp_path, tiny_model_dir):
    pickled = _model_copy(tiny_model_dir, tmp_path / "pickled")
    (pickled / "model.safetensors").rename(pickled / "pytorch_model.bin")
    bad(ROWS, ROWS, ["--model", str(pickled)], r"model directory .*pickled has no \.safetensors weights \(found: "
        r"pytorch_model\.bin\); lightft reads safetensors only", capsys)


def test_model_with_damaged_weights_or_config(bad, capsys, tmp_path, tiny_model_dir):
    import shutil

    damaged = _model_copy(tiny_model_dir, tmp_path / "damaged")
    (damaged / "model.safetensors").write_bytes((tiny_model_dir / "model.safetensors").read_bytes()[:1000])
    bad(ROWS, ROWS, ["--model", str(damaged)], r"model '.*damaged' has damaged weights \(.+\); download or save it "
        r"again$", capsys)
    shutil.copy(tiny_model_dir / "model.safetensors", damaged / "model.safetensors")
    (damaged / "config.json").write_text('{"model_type": "bert", ')
    bad(ROWS, ROWS, ["--model", str(damaged)], r"model directory .*damaged has a config\.json transformers cannot "
        r"read \(.+\); save the model again with save_pretrained$", capsys)


@pytest.mark.parametrize("kind, what", [("gpt2", "a decoder \\(a text generator\\)"), ("t5", "an encoder-decoder")])
def test_a_model_that_is_not_an_encoder(bad, capsys, tmp_path, tiny_model_dir, kind, what):
    from transformers import AutoConfig

    model = _model_copy(tiny_model_dir, tmp_path / kind, ("tokenizer.json", "tokenizer_config.json"))
    AutoConfig.for_model(kind).save_pretrained(model)  # the check reads the config only, before any weights
    bad(ROWS, ROWS, ["--model", str(model)], rf"model '.*{kind}' is a {kind} model, {what}; lightft fine-tunes "
        r"encoders such as BERT, RoBERTa, DeBERTa, ELECTRA or MiniLM: pass one with --model$", capsys)


def test_model_without_weights(bad, capsys, tmp_path, tiny_model_dir):
    bare = _model_copy(tiny_model_dir, tmp_path / "no-weights")
    (bare / "model.safetensors").unlink()
    bad(ROWS, ROWS, ["--model", str(bare)], r"model directory .*no-weights has no weights \(no \.safetensors file\); "
        r"save the model there with model\.save_pretrained\(DIR\)$", capsys)


def test_model_path_that_is_a_file(bad, capsys, tmp_path):
    (tmp_path / "weights.bin").write_bytes(b"x")
    bad(ROWS, ROWS, ["--model", str(tmp_path / "weights.bin")], r"model '.*weights\.bin' is a file; pass the "
        r"directory that holds config\.json", capsys)


def test_checkpoint_with_a_head_for_other_classes(tmp_path, tiny_model_dir, capsys):
    # The tiny model was saved with a 2-class head; 3-class data gets a fresh 3-class head instead of a crash.
    write_jsonl(tmp_path / "d" / "train.jsonl", synthetic_rows(30, 1, classes=("neg", "pos", "meh")))
    write_jsonl(tmp_path / "d" / "test.jsonl", synthetic_rows(12, 2, classes=("neg", "pos", "meh")))
    code, out, err = run_cli(["train", "--model", str(tiny_model_dir), "--data", str(tmp_path / "d"), "--method",
                              "head", "--epochs", "1", "--max-length", "32", "--output", str(tmp_path / "r"),
                              "--quiet"], capsys)
    assert code == 0, err
    assert json.loads((tmp_path / "r" / "labels.json").read_text())["labels"] == ["meh", "neg", "pos"]


def test_eval_and_predict_never_overwrite_a_run_file(fast, capsys):
    import lightft

    run = lightft.train(method="head", **fast)
    before = (run.path / "metrics.json").read_text()
    code, _, err = run_cli(["eval", str(run.path), "--data", fast["data"], "--output", str(run.path / "metrics.json"),
                            "--quiet"], capsys)
    assert code == 2 and re.fullmatch(r"error: --output .*metrics\.json would overwrite a file of the run directory "
                                      r".*; pass a path outside it or a new file name\n", err), err
    code, _, err = run_cli(["predict", str(run.path), "fine", "--output", str(run.path)], capsys)
    assert code == 2 and "is a directory; pass a file path" in err
    code, _, err = run_cli(["predict", str(run.path), "fine", "--batch-size", "0"], capsys)
    assert code == 2 and "--batch-size must be a whole number >= 1, got 0" in err
    assert (run.path / "metrics.json").read_text() == before
    # the input a command reads is not its output either: predictions would replace the labelled file
    texts = Path(fast["data"]) / "test.jsonl"
    labelled = texts.read_text()
    for argv, flag in ((["predict", str(run.path), "--file", str(texts)], "--file"),
                       (["eval", str(run.path), "--data", str(texts), "--quiet"], "--data")):
        code, _, err = run_cli([*argv, "--output", str(texts)], capsys)
        assert (code, err) == (2, f"error: --output {texts} is the {flag} input, which writing there would replace; "
                                  "pass another --output file\n")
    assert texts.read_text() == labelled


@pytest.mark.parametrize("env, said", [({}, "interrupted\n"), ({"WORLD_SIZE": "2", "RANK": "0"}, "interrupted\n"),
                                       ({"WORLD_SIZE": "2", "RANK": "1"}, ""), ({"LIGHTFT_COMPARE_CHILD": "1"}, "")])
def test_sigterm_cleans_up_like_ctrl_c(bad, capsys, monkeypatch, env, said):
    """Said once: by the main process of a data-parallel run, and by compare rather than its children."""
    import os
    import signal

    import lightft

    def killed(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGTERM)

    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(lightft, "train", killed)
    code, _, err = run_cli(["train", "--model", "m", "--data", "d"], capsys)
    assert (code, err) == (143, said)  # 128 + SIGTERM, as shells report a killed program


def test_usage_errors_are_one_line(capsys):
    code, _, err = run_cli(["train", "--epochs", "x"], capsys)
    assert code == 2
    assert err == "error: argument --epochs: invalid int value: 'x' (see `lightft train --help`)\n"
    code, _, err = run_cli(["predict"], capsys)  # TEXT is optional (--file): only the run is asked for
    assert (code, err) == (2, "error: the following arguments are required: RUN_DIR (see `lightft predict --help`)\n")


def test_version_names_the_libraries_on_one_line(capsys):
    code, out, _ = run_cli(["--version"], capsys)
    assert code == 0 and re.fullmatch(r"lightft \d+\.\d+\.\d+ \(Python 3\.\d+\.\d+; torch .+, transformers .+, "
                                      r"peft .+, accelerate .+\)\n", out), out


def test_help_and_import_do_not_load_torch():
    """`import lightft` and `lightft --help` answer without importing torch (seconds saved on every call)."""
    import subprocess
    import sys

    code = ("import sys, lightft\nfrom lightft.cli import run\ntry:\n    run(['train', '--help'])\n"
            "except SystemExit:\n    pass\nassert 'torch' not in sys.modules, 'torch was imported'")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0 and "--method" in done.stdout, done.stderr


def test_a_closed_pipe_ends_quietly():
    """`lightft methods | head -1`: the reader leaves early; no BrokenPipeError traceback."""
    import subprocess
    import sys

    done = subprocess.Popen([sys.executable, "-m", "lightft", "methods"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    done.stdout.close()
    assert (done.wait(), done.stderr.read()) == (141, b"")


def test_api_names_survive_submodule_imports():
    """The public functions are not shadowed by the modules behind them once those are imported."""
    import lightft
    import lightft.comparison
    import lightft.evaluation
    import lightft.pipeline
    import lightft.training.loop

    for name in ("train", "evaluate", "compare", "load", "read_texts"):
        assert callable(getattr(lightft, name)) and not isinstance(getattr(lightft, name), type(lightft)), name
    assert {"train", "evaluate", "compare", "load", "Predictor"} <= set(dir(lightft))


def test_ctrl_c_during_the_library_import_waits_for_it_then_stops(capsys, monkeypatch):
    """An interrupt while torch loads is held until the import ends (a half-imported numpy fails later with a
    RecursionError traceback), then stops the command cleanly."""
    import importlib
    import os
    import signal

    import lightft.cli

    finished, real_import = [], importlib.import_module

    def slow_import(name):
        os.kill(os.getpid(), signal.SIGINT)
        finished.append(name)  # reached: the signal did not interrupt the import
        return real_import(name)

    monkeypatch.setattr(lightft.cli.importlib, "import_module", slow_import)
    before = signal.signal(signal.SIGINT, signal.default_int_handler)  # whatever the shell that started pytest set
    try:
        code, _, err = run_cli(["train", "--model", "m", "--data", "d"], capsys)
        assert (code, err, finished) == (130, "interrupted\n", ["lightft.pipeline"])
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    finally:
        signal.signal(signal.SIGINT, before)


def test_an_ignored_ctrl_c_stays_ignored_through_the_library_import(monkeypatch):
    """A command started with SIGINT ignored (``cmd &`` in a script, nohup-like launchers) is not made
    interruptible by the import's hold: the signal stays ignored, the import finishes, the handler is unchanged."""
    import importlib
    import os
    import signal

    import lightft.cli

    seen, real_import = [], importlib.import_module

    def import_with_a_ctrl_c(name):
        os.kill(os.getpid(), signal.SIGINT)
        seen.append(signal.getsignal(signal.SIGINT))
        return real_import(name)

    monkeypatch.setattr(lightft.cli.importlib, "import_module", import_with_a_ctrl_c)
    before = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        try:
            lightft.cli._import_uninterrupted("lightft.errors")
        except KeyboardInterrupt:
            pytest.fail("the ignored Ctrl-C was held and raised after the import")
        assert seen == [signal.SIG_IGN] and signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, before)


def test_predict_file_inputs_that_are_not_a_plain_table(tmp_path, monkeypatch):
    import io
    import os

    from lightft.errors import LightftError, LightftWarning
    from lightft.predict import read_texts

    with pytest.raises(LightftError, match=r"^--file .* is a directory; pass a \.txt, \.jsonl, \.csv, \.tsv or \.parquet"):
        read_texts(tmp_path)
    read, write = os.pipe()  # what --file <(command) passes: a pipe, read one text per line
    os.write(write, b"great film\n\nawful film\n")
    os.close(write)
    assert read_texts(f"/dev/fd/{read}") == ["great film", "awful film"]
    os.close(read)
    with pytest.raises(LightftError, match=r"^--text-column is for table files, and --file - is a stream read one text "
                                           r"per line"):
        read_texts("-", "text")
    fifo = tmp_path / "texts.csv"
    os.mkfifo(fifo)
    with pytest.raises(LightftError, match=r"^--file .*texts\.csv is a pipe named like a table; tables are read from "
                                           r"regular files"):
        read_texts(fifo)
    monkeypatch.setattr("sys.stdin", io.StringIO('{"text": "good"}\n{"text": "bad"}\n'))
    with pytest.warns(LightftWarning, match=r"the lines of standard input look like JSON objects, and each is "
                                            r"classified as it is, braces and all; .*pass it by name: --file FILE\.jsonl"):
        assert read_texts("-") == ['{"text": "good"}', '{"text": "bad"}']
    excel = tmp_path / "excel.csv"  # what train refuses, predict does not classify whole lines of either
    excel.write_text("text;label\ngreat film;pos\n")
    with pytest.raises(LightftError, match=r"^.*excel\.csv is semicolon-separated \(its header 'text;label'"):
        read_texts(excel)


@pytest.mark.parametrize("world", ["1", "2"])
def test_a_pause_under_a_launcher_says_the_launcher_reports_it_as_a_failure(world, capsys, monkeypatch, tmp_path):
    """torchrun turns the workers' exit 75 into its own exit 1 and a failure summary: the main process's `paused:`
    line says so, and a single process's line stays as it was."""
    import lightft.cli
    from lightft import pause

    def paused(argv):
        raise pause.Paused(tmp_path / ".run.checkpoint")

    monkeypatch.setattr(lightft.cli, "run", paused)
    monkeypatch.setenv("WORLD_SIZE", world)
    monkeypatch.setenv("RANK", "0")
    code, _, err = run_cli(["train", "--model", "m", "--data", "d"], capsys)
    said = f"paused: the training state is saved in {tmp_path / '.run.checkpoint'}; the same command resumes it"
    if world == "2":
        said += "; the launcher reports the workers' exit status 75 as a failure of its own (torchrun: exit 1)"
    assert (code, err) == (pause.EXIT_STATUS, said + "\n")


@pytest.mark.parametrize("config, problem", [
    ("", "is empty"),
    ("model: m\ndata: [d\n", r"is not valid YAML \(expected ',' or '\]', but got '<stream end>' at line 3, column 1\)"),
    (None, r"fails the checks `train --config` makes \(--max-length must be a whole number, got 'abc'\)"),
])
def test_a_damaged_run_config_is_one_line_in_every_command_that_reads_it(config, problem, fast, tmp_path, capsys):
    """predict, eval and export check a run's config.yaml as `train --config` does: no traceback where a value is first
    used, no export that writes the bad value on (transformers.pipeline would then fail on it)."""
    import shutil

    import lightft

    trained = lightft.train(method="lora", **fast)
    run = tmp_path / "damaged"
    shutil.copytree(trained.path, run)
    cfg = run / "config.yaml"
    cfg.write_text(cfg.read_text().replace("max_length: 32", "max_length: abc") if config is None else config)
    expected = rf"error: run directory {re.escape(str(run))} is damaged: its config\.yaml {problem}; restore it from a " \
               r"copy or train it again\n"
    for argv in (["predict", str(run), "good film"], ["eval", str(run), "--data", fast["data"], "--quiet"],
                 ["export", str(run), "--output", str(tmp_path / "exported")]):
        code, out, err = run_cli(argv, capsys)
        assert code == 2 and re.fullmatch(expected, err), (argv, err)
    assert not (tmp_path / "exported").exists()
    from lightft.serving.pool import ModelPool

    with pytest.raises(lightft.LightftError, match=expected[len("error: "):-2]):
        ModelPool({"r": run}, device="cpu")


def test_predict_file_reads_the_column_the_run_trained_on(fast, tmp_path, capsys):
    """A table with several columns of words: `predict --file` takes the run's own text column (told or detected),
    as eval does, instead of asking for --text-column."""
    import lightft

    data = tmp_path / "reviews"
    rows = [{"title": f"review {i} of the film", "body": r["text"], "label": r["label"]}
            for i, r in enumerate(synthetic_rows(60, seed=3))]
    write_jsonl(data / "train.jsonl", rows)
    told = lightft.train(method="head", **{**fast, "data": str(data), "text_column": "body"})
    new = tmp_path / "new.csv"
    new.write_text("title,body\nfirst,good great film\nsecond,awful boring plot\n")
    code, out, err = run_cli(["predict", str(told.path), "--file", str(new)], capsys)
    assert code == 0, err
    assert [line.split("\t")[-1] for line in out.strip().splitlines()[1:]] == ["good great film", "awful boring plot"]
    assert lightft.read_texts(new, run=told.path) == ["good great film", "awful boring plot"]
    assert lightft.read_texts(new, "title", run=told.path) == ["first", "second"]  # --text-column still wins
    # --output keeps the table's other columns, so predictions join back to their rows; its suffix picks the format
    preds = tmp_path / "preds.csv"
    code, out, err = run_cli(["predict", str(told.path), "also this", "--file", str(new), "--output", str(preds)], capsys)
    assert (code, out, err) == (0, f"wrote 3 predictions to {preds}\n", "")
    table = lightft.read_inputs(preds, "text").columns
    assert table["title"] == ["", "first", "second"] and set(table["label"]) <= {"neg", "pos"}
    assert list(table) == ["title", "label", "score", "p(neg)", "p(pos)"]
    code, out, err = run_cli(["predict", str(told.path), "--file", str(new), "--output", "-"], capsys)
    assert code == 0 and [json.loads(line)["title"] for line in out.splitlines()] == ["first", "second"]
    code, _, err = run_cli(["predict", str(told.path), "--file", str(new), "--output", str(tmp_path / "p.json")], capsys)
    assert code == 2 and err.startswith(f"error: --output {tmp_path / 'p.json'}: predictions are written as JSON Lines")
    assert not (tmp_path / "p.json").exists()
    with pytest.raises(lightft.LightftError, match="cannot tell which column holds the text; the columns are: title, body"):
        lightft.read_texts(new)  # no run: nothing says which
    detected = tmp_path / "detected"  # a run that found its column by name keeps it in metrics.json
    write_jsonl(data / "train.jsonl", [{"review": r["body"], "label": r["label"]} for r in rows])
    found = lightft.train(method="head", **{**fast, "data": str(data), "output": str(detected)})
    both = tmp_path / "both.csv"
    both.write_text("text,review\nnot this,good great film\n")
    assert lightft.read_texts(both, run=found.path) == ["good great film"]


@pytest.mark.parametrize("terminated", [False, True])
def test_a_run_finished_early_by_an_interrupt_exits_with_the_interrupts_status(terminated, fast, monkeypatch, capsys):
    """Saved with its best epoch, but not the run asked for: `lightft train ... && deploy` must not go on."""
    import lightft.cli
    import lightft.pipeline

    evaluate, calls = lightft.pipeline.Session.evaluate, []

    def interrupted_second_validation(self, model, split, desc):
        calls.append(desc)
        if desc == "validating" and calls.count("validating") == 2:
            if terminated:
                lightft.cli._terminate(15, None)  # what the SIGTERM handler does: raises Terminated
            raise KeyboardInterrupt
        return evaluate(self, model, split, desc)

    monkeypatch.setattr(lightft.pipeline.Session, "evaluate", interrupted_second_validation)
    monkeypatch.setattr(lightft.cli, "_terminated", False)
    argv = ["train", "--method", "head", "--epochs", "3", "--quiet"]
    for key in ("model", "data", "output", "batch_size", "max_length"):
        argv += [f"--{key.replace('_', '-')}", str(fast[key])]
    code, out, err = run_cli(argv, capsys)
    assert code == (143 if terminated else 130), err
    assert "warning: interrupted in epoch 2: finishing with epoch 1" in err and f"run directory: {fast['output']}" in out
    assert (Path(fast["output"]) / "metrics.json").is_file()


def test_predict_shows_progress_for_a_file_only(fast, tmp_path, capsys, monkeypatch):
    """A --file can hold 25,000 reviews (minutes on a CPU): its tokenizing and predicting show progress on stderr
    (plain lines here, where stderr is not a terminal); texts given as arguments, and --quiet, show none."""
    import lightft

    run = lightft.train(method="head", **fast)
    texts = tmp_path / "texts.txt"
    texts.write_text("good great film\nawful boring\n")
    monkeypatch.delenv("TQDM_DISABLE")
    code, _, err = run_cli(["predict", str(run.path), "--file", str(texts)], capsys)
    assert code == 0 and [line.split(":")[0] for line in err.splitlines()] == ["tokenizing"] * 2 + ["predicting"] * 2
    assert err.splitlines()[-1].startswith("predicting: 100%|##########| 2/2")
    for argv in (["good film"], ["--file", str(texts), "--quiet"]):
        code, out, err = run_cli(["predict", str(run.path), *argv], capsys)
        assert (code, err) == (0, "") and out.startswith("label\tscore")


def test_a_gold_label_column_is_read_as_training_read_its_labels(fast, tmp_path, capsys):
    """A csv's labels are text ("1"); the run's classes are the numbers training made of them, so the gold column
    written beside the predictions holds numbers too, and input_label == label compares like with like."""
    import lightft

    data = tmp_path / "numbered"
    write_jsonl(data / "train.jsonl", [{"text": r["text"], "label": int(r["label"] == "pos")}
                                       for r in synthetic_rows(60, seed=3)])
    run = lightft.train(method="head", **{**fast, "data": str(data)})
    new = tmp_path / "new.csv"
    new.write_text("text,label\ngood great film, 1\nawful boring plot,0\nno gold here,\n")
    code, out, err = run_cli(["predict", str(run.path), "--file", str(new), "--output", "-"], capsys)
    rows = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and [r["input_label"] for r in rows] == [1, 0, ""] and all(type(r["label"]) is int for r in rows)
    assert lightft.read_inputs(new).columns["label"] == [" 1", "0", ""]  # without a run: as the file has them
