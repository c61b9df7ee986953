"""End to end on a tiny random model: the run-directory contract, round trips, determinism, peft interop."""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path

import pytest
import torch
import yaml

import lightft
from lightft.errors import LightftError, LightftWarning

CONTRACT = {"config.yaml", "labels.json", "metrics.json", "report.md", "training.svg", "tokenizer.json",
            "tokenizer_config.json"}


def test_lora_run_directory_contract(fast, tmp_path):
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run = lightft.train(method="lora", **fast)
    assert not [w for w in caught if "is_gradient_checkpointing" in str(w.message)], "peft's deprecation noise"
    saved = json.loads((run.path / "adapter_config.json").read_text())["modules_to_save"]
    assert len(saved) == len(set(saved)) and "classifier" in saved
    files = {p.name for p in run.path.iterdir()}
    assert CONTRACT | {"adapter_config.json", "adapter_model.safetensors"} <= files
    assert not any(p.name.endswith((".bin", ".pt", ".pkl")) for p in run.path.iterdir())
    m = json.loads((run.path / "metrics.json").read_text())
    for key in ("accuracy", "macro_f1", "loss", "per_class", "confusion_matrix"):
        assert key in m["eval"] and key in m["baseline"]
    assert m["params"]["trainable"] < m["params"]["total"]
    for key in ("seconds", "samples_per_second", "peak_memory_mb"):
        assert m["train"][key] > 0
    assert [h["epoch"] for h in m["history"]] == [1, 2]
    assert m["train"]["best_epoch"] in (1, 2)
    cfg = yaml.safe_load((run.path / "config.yaml").read_text())
    assert cfg["lr"] == 1e-3 and cfg["method"] == "lora" and cfg["output"] == fast["output"]
    report = (run.path / "report.md").read_text()
    assert "lora (best epoch" in report and "](training.svg)" in report
    svg = (run.path / "training.svg").read_text()
    assert svg.count("<polyline") == 1 + (m["history"][1]["validation"]["accuracy"] is not None) * 2  # loss; acc, F1
    settings = report.split("## Settings\n\n")[1].splitlines()[0]
    assert settings.startswith("lr 0.001, 2 epochs, batch 8, max length 32, warmup 6%, weight decay 0.01, seed 42, "
                               "precision auto") and "rank 8, alpha 16, dropout 0.1" in settings, settings
    assert not list(run.path.parent.glob(".*partial*")), "no staging directory left behind"



def test_epoch_train_loss_is_the_mean_of_all_its_steps(fast):
    """history's train_loss covers the whole epoch, not only the steps since the last logged window."""
    run = lightft.train(method="head", **{**fast, "batch_size": 4, "baseline": False})
    curve, history = run.metrics["train"]["loss_curve"], run.metrics["history"]
    per_epoch = run.metrics["train"]["samples"] // 2 // 4  # 108 rows / 4 = 27 steps per epoch
    assert [step for step, _ in curve] == [20, per_epoch, 40, 2 * per_epoch]
    (s1, l1), (s2, l2), (s3, l3), (s4, l4) = curve
    assert history[0]["train_loss"] == pytest.approx((s1 * l1 + (s2 - s1) * l2) / s2, abs=1e-4)
    assert history[1]["train_loss"] == pytest.approx(((s3 - s2) * l3 + (s4 - s3) * l4) / (s4 - s2), abs=1e-4)
    assert history[0]["train_loss"] != l2
    assert [h["step"] for h in history] == [per_epoch, 2 * per_epoch]  # where each epoch ends on the curve


def test_config_yaml_reruns_the_same_run(fast, tmp_path):
    first = lightft.train(method="head", **fast)
    again = lightft.train(first.path / "config.yaml", output=str(tmp_path / "again"))
    assert again.metrics["eval"]["accuracy"] == first.metrics["eval"]["accuracy"]
    assert again.metrics["history"] == first.metrics["history"]
    # the run directory itself stands for its config.yaml, and paths may be pathlib.Path, as in the rest of the API
    third = lightft.train(first.path, output=tmp_path / "third")
    assert third.path == tmp_path / "third" and third.metrics["history"] == first.metrics["history"]
    assert lightft.evaluate(first.path, Path(fast["data"]))["accuracy"] == first.metrics["eval"]["accuracy"]
    with pytest.raises(LightftError, match=r"config .* is a directory without a config\.yaml \(it holds config\.json: a "
                                           r"model, which goes to --model / model=\); pass the config\.yaml"):
        lightft.train(fast["model"], data=fast["data"])


def test_a_config_rerun_with_another_method_uses_that_methods_rate(tmp_path):
    from lightft.config import TrainConfig
    from lightft.errors import LightftWarning
    from lightft.pipeline import resolve_config

    saved = TrainConfig(model="m", data="d", method="lora", lr=2e-3)  # as config.yaml stores it: lr resolved
    with pytest.warns(LightftWarning, match=r"--method full replaces the config's lora, so its lr 0.002 is dropped"):
        assert resolve_config(saved, method="full").lr is None  # train() fills in full's 5e-5
    assert resolve_config(saved, method="full", lr=1e-4).lr == 1e-4
    assert resolve_config(saved, method="lora").lr == 2e-3


def test_a_run_that_breaks_after_its_first_epoch_keeps_and_saves_that_epoch(fast, monkeypatch):
    import lightft.evaluation.metrics as metrics_module
    from lightft.errors import LightftWarning

    real, calls = metrics_module.cross_entropy, []

    def nan_on_the_second_validation(logits, labels):
        calls.append(1)
        return float("nan") if len(calls) == 2 else real(logits, labels)

    monkeypatch.setattr(metrics_module, "cross_entropy", nan_on_the_second_validation)
    with pytest.warns(LightftWarning, match="training diverged in epoch 2"):
        run = lightft.train(method="head", **{**fast, "epochs": 3, "baseline": False})
    history = json.loads((run.path / "metrics.json").read_text(), parse_constant=lambda c: pytest.fail(c))["history"]
    assert [h["epoch"] for h in history] == [1, 2] and history[1]["diverged"] and history[1]["validation"]["loss"] is None
    assert run.metrics["train"]["best_epoch"] == 1 and "| 2 |" in (run.path / "report.md").read_text()
    assert "diverged |" in (run.path / "report.md").read_text()


def test_same_seed_same_metrics(fast, tmp_path):
    a = lightft.train(method="lora", **{**fast, "output": str(tmp_path / "a")})
    b = lightft.train(method="lora", **{**fast, "output": str(tmp_path / "b")})
    keep = ("baseline", "eval", "validation", "history", "params")
    timing = ("seconds", "samples_per_second")

    def figures(m):
        return {k: {f: v for f, v in m[k].items() if f not in timing} if isinstance(m[k], dict) else m[k] for k in keep}

    assert figures(a.metrics) == figures(b.metrics)
    assert a.metrics["eval"]["loss"] == b.metrics["eval"]["loss"]
    for k in ("loss_curve", "best_epoch", "samples"):
        assert a.metrics["train"][k] == b.metrics["train"][k]
    c = lightft.train(method="lora", **{**fast, "output": str(tmp_path / "c"), "seed": 7})
    assert c.metrics["train"]["loss_curve"] != a.metrics["train"]["loss_curve"]


@pytest.mark.parametrize("method", ["lora", "adalora", "head", "bitfit", "full"])
def test_saved_run_predicts_what_training_measured(fast, method):
    run = lightft.train(method=method, **fast)
    predictor = lightft.load(run.path)
    from lightft.data import prepare_splits

    splits = prepare_splits(fast["data"], limit_eval=None, seed=42)
    logits = predictor.logits(splits.test.texts)
    accuracy = float((logits.argmax(1) == torch.tensor(splits.test.labels).numpy()).mean())
    assert accuracy == pytest.approx(run.metrics["eval"]["accuracy"], abs=1e-9)
    out = predictor.predict(["good great film", "awful boring plot"])
    assert {o["label"] for o in out} <= {"neg", "pos"}
    assert all(abs(sum(o["probabilities"].values()) - 1) < 1e-6 for o in out)
    assert all(o["probabilities"][o["label"]] == o["score"] for o in out)


def test_lora_adapter_loads_with_plain_peft(fast):
    from peft import PeftModel
    from transformers import AutoModelForSequenceClassification

    run = lightft.train(method="lora", **fast)
    base = AutoModelForSequenceClassification.from_pretrained(fast["model"], num_labels=2)
    model = PeftModel.from_pretrained(base, str(run.path)).eval()
    from transformers import AutoTokenizer

    texts = ["good great film", "awful boring plot", "the movie was"]
    tok = AutoTokenizer.from_pretrained(str(run.path))
    enc = tok(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        expected = model(**enc).logits.numpy()
    got = lightft.load(run.path).logits(texts)
    assert abs(got - expected).max() < 1e-4
    exact = lightft.load(run.path, precision="fp32")
    assert exact.precision == "fp32" and abs(exact.logits(texts) - expected).max() < 1e-5
    with pytest.raises(LightftError, match=r"--precision must be one of auto, bf16, fp32, got 'fp16'"):
        lightft.load(run.path, precision="fp16")
    with pytest.raises(LightftError, match=r"load\(\) got an unknown keyword 'presicion' \(did you mean 'precision'\?\); "
                                           r"it takes device, compile, base_model, precision"):
        lightft.load(run.path, presicion="fp32")


def test_output_directory_must_be_new(fast, tmp_path):
    (tmp_path / "run").mkdir()
    with pytest.raises(LightftError, match=r"output directory .* already exists; pass a new --output"):
        lightft.train(method="lora", **fast)


def test_a_run_whose_output_was_taken_while_it_trained_is_saved_beside_it(fast, monkeypatch):
    import lightft.pipeline

    render = lightft.pipeline.training_svg

    def taken(metrics):  # runs inside the staging block, after the output was checked free
        (Path(fast["output"]) / "notes").mkdir(parents=True)
        return render(metrics)

    monkeypatch.setattr(lightft.pipeline, "training_svg", taken)
    with pytest.warns(LightftWarning, match=r"appeared while this run was working"):
        run = lightft.train(method="head", **fast)
    assert run.path == Path(fast["output"] + "-2") and (run.path / "trained.safetensors").is_file()
    assert yaml.safe_load((run.path / "config.yaml").read_text())["output"] == str(run.path)  # re-runnable as saved
    assert lightft.load(run.path).predict(["good film"])[0]["label"] in ("neg", "pos")


def test_eval_on_the_single_file_a_run_trained_on_scores_its_held_out_rows(fast, tmp_path):
    """Not the whole file, most of which the run trained on: the test rows training held out, carved the same way."""
    import shutil

    single = tmp_path / "all.jsonl"
    shutil.copy(Path(fast["data"]) / "train.jsonl", single)
    run = lightft.train(method="head", **{**fast, "data": str(single), "baseline": False})
    again = lightft.evaluate(run.path, str(single), quiet=True)
    assert again["split"] == "test" and again["data"]["sizes"]["test"] == run.metrics["data"]["sizes"]["test"]
    assert again["accuracy"] == pytest.approx(run.metrics["eval"]["accuracy"])
    assert any("the run was trained on this file" in n for n in again["data"]["notes"])
    with pytest.warns(LightftWarning, match=r"--seed ignored: on the file it trained on, a run is evaluated on the rows "
                                            r"its own --seed 42 and --validation-fraction 0\.1 held out"):
        other_seed = lightft.evaluate(run.path, str(single), seed=7, quiet=True)
    assert other_seed["accuracy"] == again["accuracy"]  # the same held-out rows
    with pytest.warns(LightftWarning, match=r"train\.jsonl is the train file of the data the run trained on .*: it is "
                                            r"evaluated whole, rows the run trained on included; pass the folder"):
        lightft.evaluate(lightft.train(method="head", **{**fast, "output": str(tmp_path / "dir-run")}).path,
                         str(Path(fast["data"]) / "train.jsonl"), quiet=True)
    copy = tmp_path / "copy.jsonl"  # the same rows in another file: evaluated whole, as any other file
    shutil.copy(single, copy)
    assert lightft.evaluate(run.path, str(copy), quiet=True)["split"] == "file"


def test_a_run_interrupted_after_its_first_epoch_is_saved_with_it(fast, monkeypatch):
    import lightft.pipeline

    evaluate, calls = lightft.pipeline.Session.evaluate, []

    def interrupted_second_validation(self, model, split, desc):
        calls.append(desc)
        if desc == "validating" and calls.count("validating") == 2:
            raise KeyboardInterrupt  # Ctrl-C while epoch 2 validates
        return evaluate(self, model, split, desc)

    monkeypatch.setattr(lightft.pipeline.Session, "evaluate", interrupted_second_validation)
    with pytest.warns(LightftWarning, match=r"interrupted in epoch 2: finishing with epoch 1"):
        run = lightft.train(method="head", **{**fast, "epochs": 3})
    assert run.metrics["train"]["interrupted"] is True and run.metrics["train"]["best_epoch"] == 1
    assert "Training was interrupted after epoch 1 of 3; epoch 1, the best so far, is the result." in (
        run.path / "report.md").read_text()
    assert lightft.load(run.path).predict(["good film"])  # a complete run directory


def test_baseline_eval_of_a_bare_model_and_a_run(fast):
    base = lightft.evaluate(fast["model"], fast["data"], quiet=True)
    assert base["kind"] == "baseline" and 0 <= base["accuracy"] <= 1
    run = lightft.train(method="lora", **fast)
    again = lightft.evaluate(str(run.path), fast["data"], quiet=True)
    assert again["kind"] == "run"
    assert again["accuracy"] == pytest.approx(run.metrics["eval"]["accuracy"])


def test_unpadded_training_matches_padded_on_cpu(fast, tmp_path):
    """The padding-free path (CPU reference attention) trains to the same place as the padded one."""
    kw = {**fast, "epochs": 1}
    padded = lightft.train(method="lora", **{**kw, "output": str(tmp_path / "p"), "dropout": 0.0, "unpadded": "off"})
    packed = lightft.train(method="lora", **{**kw, "output": str(tmp_path / "u"), "dropout": 0.0, "unpadded": "on"})
    assert packed.metrics["train"]["unpadded"] is True and padded.metrics["train"]["unpadded"] is False
    # attention-probs dropout is skipped on the packed path, so curves differ slightly; the test loss agrees closely
    assert packed.metrics["eval"]["loss"] == pytest.approx(padded.metrics["eval"]["loss"], abs=0.05)


def test_token_budget_batches(fast, tmp_path):
    with pytest.warns(LightftWarning, match=r"--batch-size 4 not used with --max-tokens 128: batches are sized by "
                                            r"tokens, rows of similar length grouped"):
        run = lightft.train(method="head", **{**fast, "max_tokens": 128, "batch_size": 4})
    assert run.metrics["train"]["samples"] == run.metrics["data"]["sizes"]["train"] * 2


def test_texts_cut_at_max_length_are_counted_in_the_data_notes(fast):
    import lightft

    result = lightft.train(**{**fast, "epochs": 1, "max_length": 8}, baseline=False)
    notes = [n for n in result.metrics["data"]["notes"] if "reach --max-length 8 tokens" in n]
    assert [n.split(" (")[0] for n in notes] == ["103 of 108 train texts", "11 of 12 validation texts",
                                                 "40 of 40 test texts"], notes
    assert notes[0] in (result.path / "report.md").read_text()


def test_adalora_prunes_ranks_to_the_budget(fast):
    """AdaLoRA starts at ceil(1.5 x rank) and ends with rank x modules nonzero singular values, saved as such."""
    import json

    from safetensors.torch import load_file

    run = lightft.train(method="adalora", rank=4, **fast)
    config = json.loads((run.path / "adapter_config.json").read_text())
    assert config["init_r"] == 6 and config["target_r"] == 4
    pattern = config["rank_pattern"]
    assert pattern, "no rank allocation happened"
    kept = sum(sum(bool(x) for x in mask) for mask in pattern.values())
    assert kept == 4 * len(pattern) and any(not all(mask) for mask in pattern.values())
    weights = load_file(str(run.path / "adapter_model.safetensors"))
    e_values = [t for k, t in weights.items() if "lora_E" in k]
    assert sum(int((t != 0).sum()) for t in e_values) <= kept


def test_full_run_directory_loads_with_plain_transformers_in_a_fresh_process(fast):
    """The saved config must not name lightft's attention functions: plain transformers has not registered them."""
    import subprocess
    import sys

    run = lightft.train(method="full", **fast)
    assert "lightft" not in (run.path / "config.json").read_text()
    code = (
        "import sys, torch\n"
        "from transformers import AutoModelForSequenceClassification, AutoTokenizer\n"
        "m = AutoModelForSequenceClassification.from_pretrained(sys.argv[1]).eval()\n"
        "t = AutoTokenizer.from_pretrained(sys.argv[1])\n"
        "print(m(**t(['good great film'], return_tensors='pt')).logits.shape)\n"
    )
    out = subprocess.run([sys.executable, "-c", code, str(run.path)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "torch.Size([1, 2])" in out.stdout


def test_eval_takes_the_data_it_is_given(fast, tmp_path):
    """A file is evaluated whole, a test-only folder works, and a run's --limit-eval is not inherited."""
    from tests.conftest import synthetic_rows, write_jsonl

    run = lightft.train(method="head", **{**fast, "limit_eval": 10})
    rows = synthetic_rows(30, seed=7)
    single = write_jsonl(tmp_path / "extra.jsonl", rows)
    assert lightft.evaluate(str(run.path), str(single), quiet=True)["n"] == 30
    write_jsonl(tmp_path / "only-test" / "test.jsonl", rows)
    assert lightft.evaluate(str(run.path), str(tmp_path / "only-test"), quiet=True)["n"] == 30
    assert lightft.evaluate(str(run.path), fast["data"], quiet=True)["n"] == 40  # every test row, not 10
    again = lightft.evaluate(str(run.path), fast["data"], limit_eval=10, quiet=True)
    assert again["accuracy"] == pytest.approx(run.metrics["eval"]["accuracy"]) and again["n"] == 10
    baseline = lightft.evaluate(fast["model"], str(single), quiet=True)
    assert baseline["kind"] == "baseline" and baseline["n"] == 30


def test_moved_runs(fast, tmp_path):
    """A full run needs no base model; an adapter run whose base moved says how to point at it."""
    import shutil

    base = tmp_path / "base"
    shutil.copytree(fast["model"], base)
    full = lightft.train(method="full", **{**fast, "model": str(base), "output": str(tmp_path / "full")})
    lora = lightft.train(method="lora", **{**fast, "model": str(base), "output": str(tmp_path / "lora")})
    expected = lightft.load(lora.path).predict(["good film"])
    shutil.move(base, tmp_path / "moved")
    assert lightft.evaluate(str(full.path), fast["data"], quiet=True)["accuracy"] == pytest.approx(
        full.metrics["eval"]["accuracy"])
    with pytest.raises(LightftError, match=r"the base model of run .*lora was .*base, which is not there any more; "
                                           r"pass where it is now with --base-model"):
        lightft.load(lora.path)
    moved = lightft.load(lora.path, base_model=str(tmp_path / "moved")).predict("good film")  # one string, one text
    assert moved[0]["probabilities"] == pytest.approx(expected[0]["probabilities"])


def test_weight_files_get_the_usual_permissions(fast):
    import os

    run = lightft.train(method="lora", **fast)
    mask = os.umask(0)
    os.umask(mask)
    for path in run.path.iterdir():
        assert path.stat().st_mode & 0o777 == 0o666 & ~mask, path.name


def test_damaged_run_directories_give_one_line(fast, tmp_path):
    import shutil

    run = lightft.train(method="lora", **fast)
    truncated, labels = tmp_path / "truncated", tmp_path / "labels"
    shutil.copytree(run.path, truncated)
    shutil.copytree(run.path, labels)
    weights = truncated / "adapter_model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(LightftError, match=r"run directory .*truncated is damaged or incomplete \(.*\); restore it"):
        lightft.load(truncated)
    (labels / "labels.json").write_text("{not json")
    with pytest.raises(LightftError, match=r"labels\.json is damaged \(.*\); restore the run directory"):
        lightft.load(labels)
    pickled, no_config = tmp_path / "pickled", tmp_path / "no-config"
    shutil.copytree(run.path, pickled)
    shutil.copytree(run.path, no_config)
    (pickled / "adapter_model.safetensors").rename(pickled / "adapter_model.bin")  # never unpickled instead
    with pytest.raises(LightftError, match=r"run directory .*pickled is incomplete: adapter_model.safetensors is "
                                           r"missing; restore it"):
        lightft.load(pickled)
    (no_config / "adapter_config.json").unlink()  # not looked up on the hub under the folder's name
    with pytest.raises(LightftError, match=r"no-config is incomplete: adapter_config.json is missing"):
        lightft.load(no_config)


def test_output_that_cannot_be_created_fails_before_training(fast, tmp_path):
    (tmp_path / "afile").write_text("x")
    with pytest.raises(LightftError, match=r"--output .*afile/run cannot be created: .*afile is a file"):
        lightft.train(method="head", **{**fast, "output": str(tmp_path / "afile" / "run")})


def test_evaluate_rejects_options_it_does_not_use(fast):
    with pytest.raises(LightftError, match=r"evaluate\(\) does not use epochs, output; it takes split, base_model, "
                                           r"text_column"):
        lightft.evaluate(fast["model"], fast["data"], output="x.json", epochs=3)


def test_a_method_flag_the_method_ignores_warns(fast):
    from lightft.errors import LightftWarning

    with pytest.warns(LightftWarning, match=r"--rank not used by --method ia3 \(it reads --targets\)"):
        lightft.train(method="ia3", rank=4, **fast)


def test_baseline_only_compare(fast):
    comparison = lightft.compare("baseline", model=fast["model"], data=fast["data"], max_length=32, quiet=True,
                                 output=fast["output"])
    assert [r["method"] for r in comparison.rows] == ["baseline"] and comparison.rows[0]["trainable_params"] == 0


def test_a_config_from_a_run_of_other_process_count_warns_about_batch_size(tmp_path, monkeypatch):
    import json

    from lightft.config import TrainConfig
    from lightft.errors import LightftWarning
    from lightft.pipeline import resolve_config

    run = tmp_path / "run"
    run.mkdir()
    TrainConfig(model="m", data="d", batch_size=6).save(run / "config.yaml")
    (run / "metrics.json").write_text(json.dumps({"train": {"processes": 2}}))
    with pytest.warns(LightftWarning, match=r"was trained in 2 processes of --batch-size 6 each \(12 rows per update\), "
                                            r"and 1 process trains 6 rows per update here; pass --batch-size 12 for "
                                            r"the same updates"):
        resolve_config(str(run / "config.yaml"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert resolve_config(str(run), batch_size=12).batch_size == 12  # chosen: no warning
        monkeypatch.setenv("WORLD_SIZE", "2")
        resolve_config(str(run))  # two processes again: the same updates
        (run / "metrics.json").unlink()
        resolve_config(str(run / "config.yaml"))  # not a finished run's: nothing to compare


def test_evaluate_names_a_mistyped_keyword_with_a_suggestion(fast):
    with pytest.raises(LightftError, match=r"^evaluate\(\) does not use spilt \(did you mean 'split'\?\); it takes "
                                           r"split, base_model, text_column, "):
        lightft.evaluate(fast["model"], fast["data"], spilt="test")


def test_class_weights_balance_the_training_loss(fast, tmp_path):
    """--class-weights balanced weighs each row's loss by n / (classes x its class's rows): on balanced data every
    weight is 1 and the run is the unweighted one exactly; on imbalanced data the loss changes, and the data notes
    say what was done (or suggest it)."""
    from tests.conftest import synthetic_rows, write_jsonl

    def curve(run):
        return run.metrics["train"]["loss_curve"]

    plain = lightft.train(method="head", **fast)
    even = lightft.train(method="head", class_weights="balanced", **{**fast, "output": str(tmp_path / "even")})
    scores = ("accuracy", "macro_f1", "loss", "per_class")
    assert curve(even) == curve(plain) and [even.metrics["eval"][k] for k in scores] == \
        [plain.metrics["eval"][k] for k in scores]
    assert "--class-weights balanced: each class's training rows weigh 'neg' 1, 'pos' 1" in even.metrics["data"]["notes"]
    assert yaml.safe_load((even.path / "config.yaml").read_text())["class_weights"] == "balanced"
    assert re.search(r"seed 42, precision auto( \(\w+\))?, class weights balanced\.", (even.path / "report.md").read_text())
    assert "class weights" not in (plain.path / "report.md").read_text()
    assert "| epoch | train loss (class-weighted) | val accuracy |" in (even.path / "report.md").read_text()

    rows = synthetic_rows(240, seed=5)
    data = tmp_path / "skewed"
    write_jsonl(data / "train.jsonl", [r for r in rows if r["label"] == "neg"] + [r for r in rows if r["label"] == "pos"][:11])
    write_jsonl(data / "test.jsonl", synthetic_rows(40, seed=2))
    skewed = {**fast, "data": str(data)}
    left = lightft.train(method="head", **{**skewed, "output": str(tmp_path / "left")})
    notes = left.metrics["data"]["notes"]
    assert "the training classes are imbalanced: 'pos' has 10 rows, 'neg' 108; --class-weights balanced makes each " \
           "class count alike in the loss" in notes, notes
    weighted = lightft.train(method="head", class_weights="balanced", **{**skewed, "output": str(tmp_path / "weighted")})
    assert "--class-weights balanced: each class's training rows weigh 'neg' 0.546, 'pos' 5.9" in \
        weighted.metrics["data"]["notes"]
    assert curve(weighted) != curve(left)
    with pytest.raises(LightftError, match=r"--class-weights must be one of none, balanced, got 'auto'"):
        lightft.train(method="head", class_weights="auto", **fast)
