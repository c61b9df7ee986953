"""`lightft export`: a run written as a plain transformers model that `transformers.pipeline` loads and that
predicts what `lightft predict` (fp32) predicts; methods that cannot be folded into weights are refused."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import lightft
from lightft.cli import main
from lightft.errors import LightftError

TEXTS = ["good film, great cast", "bad plot and dull acting", "an ordinary evening"]


def pipeline_scores(directory, texts=TEXTS) -> list[dict]:
    """What plain transformers (no lightft, no peft imported) predicts from the exported directory."""
    code = ("import json, sys\nfrom transformers import pipeline\n"
            f"clf = pipeline('text-classification', model={str(directory)!r}, top_k=None, truncation=True)\n"
            f"out = clf({texts!r})\n"
            "assert 'peft' not in sys.modules and 'lightft' not in sys.modules\n"
            "print(json.dumps([{d['label']: d['score'] for d in row} for row in out]))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("method", ["lora", "ia3", "bitfit", "full"])
def test_an_exported_run_predicts_in_transformers_pipeline_what_lightft_predicts(fast, tmp_path, method):
    run = lightft.train(method=method, **{**fast, "epochs": 1, "lr": 1e-2 if method != "full" else 1e-3})
    out = lightft.export(run.path, tmp_path / "exported")
    files = sorted(p.name for p in out.iterdir())
    assert "model.safetensors" in files and "config.json" in files and "README.md" in files
    import yaml

    card = (out / "README.md").read_text()
    front = yaml.safe_load(card.split("---\n")[1])  # the Hub's metadata block opens the card
    assert front == {"library_name": "transformers", "pipeline_tag": "text-classification",
                     "tags": ["lightft", method, "text-classification"]}  # a local base model is not named
    assert fast["model"] not in card and f"`{Path(fast['model']).name}` trained on" in card
    assert not any(f.endswith((".bin", ".pt", ".pkl")) or f.startswith("adapter") for f in files)
    config = json.loads((out / "config.json").read_text())
    assert config["id2label"] == {"0": "neg", "1": "pos"}
    from safetensors.torch import load_file

    exported, base = load_file(out / "model.safetensors"), load_file(f"{fast['model']}/model.safetensors")
    changed = [k for k in exported if "classifier" not in k and k in base
               and (exported[k] - base[k]).abs().max() > 1e-4]
    assert changed, "the trained weights of the method were not folded in"  # not only the head
    want = lightft.load(run.path, precision="fp32").predict(TEXTS)
    got = pipeline_scores(out)
    for w, g in zip(want, got):
        assert set(g) == {"neg", "pos"}
        np.testing.assert_allclose([g["neg"], g["pos"]], [w["probabilities"]["neg"], w["probabilities"]["pos"]],
                                   atol=1e-5)


def test_export_from_the_cli_and_its_bad_input(fast, tmp_path, capsys):
    run = lightft.train(method="lora", **{**fast, "epochs": 1})
    with pytest.raises(SystemExit) as exit_:
        main(["export", str(run.path), "--output", str(tmp_path / "m")])
    assert exit_.value.code == 0
    assert "transformers.pipeline" in capsys.readouterr().out and (tmp_path / "m" / "model.safetensors").is_file()
    (tmp_path / "other").mkdir()  # another run's directory
    for name in ("config.yaml", "labels.json"):
        (tmp_path / "other" / name).write_text("{}")
    for argv, message in [
        (["export", str(run.path), "--output", str(tmp_path / "m")], "already exists; pass a new --output"),
        (["export", str(run.path), "--output", str(run.path / "inner")], "is inside the run directory"),
        (["export", str(run.path), "--output", str(tmp_path / "other" / "x")], "inside the run directory .*other;"),
        (["export", str(tmp_path / "nope"), "--output", str(tmp_path / "m2")], "run directory .* not found"),
    ]:
        with pytest.raises(SystemExit) as exit_:
            main(argv)
        err = capsys.readouterr().err
        assert exit_.value.code == 2 and len(err.strip().splitlines()) == 1, err
        assert pytest.importorskip("re").search(message, err), err
    assert not (tmp_path / "m2").exists() and not (run.path / "inner").exists()


def test_virtual_token_methods_are_refused_with_the_way_out(fast, tmp_path):
    run = lightft.train(method="prompt", **{**fast, "epochs": 1})
    with pytest.raises(LightftError, match="trained with prompt, whose trained virtual tokens are not weights .* "
                                           "predict with `lightft predict`"):
        lightft.export(run.path, tmp_path / "m")
    assert not (tmp_path / "m").exists()


def test_base_model_is_not_used_for_a_full_run(fast, tmp_path):
    run = lightft.train(method="full", **{**fast, "epochs": 1})
    with pytest.warns(lightft.errors.LightftWarning, match="--base-model .* is not used: a full run holds every weight"):
        out = lightft.export(run.path, tmp_path / "m", base_model=tmp_path / "nowhere")
    assert (out / "model.safetensors").is_file()


def test_the_model_card_names_a_hub_base_model():
    from types import SimpleNamespace
    from pathlib import Path

    import yaml

    from lightft.exporting import _card

    config = SimpleNamespace(model="bert-base-cased", method="lora", data="imdb", max_length=256)
    predictor = SimpleNamespace(config=config, labels=SimpleNamespace(names=["neg", "pos"]))
    card = _card(Path("runs/imdb-lora"), predictor, {"eval": {"n": 10, "accuracy": 0.9, "macro_f1": 0.9}},
                 Path("models/imdb"))
    assert yaml.safe_load(card.split("---\n")[1])["base_model"] == "bert-base-cased"
    assert "accuracy 90.00%" in card
