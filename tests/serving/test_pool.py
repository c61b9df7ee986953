"""ModelPool: adapters trained from one base share one copy of it, and every run predicts what lightft.load predicts."""

import numpy as np
import pytest

import lightft
from lightft.errors import LightftError
from lightft.serving.pool import ModelPool, name_runs
from tests.serving.conftest import TEXTS


def assert_same(got: list[dict], want: list[dict], atol=1e-6):
    assert [g["label"] for g in got] == [w["label"] for w in want]
    for g, w in zip(got, want):
        assert list(g["probabilities"]) == list(w["probabilities"])
        np.testing.assert_allclose(list(g["probabilities"].values()), list(w["probabilities"].values()), atol=atol)


def test_adapters_of_one_base_share_it_and_each_predicts_what_load_predicts(served_runs):
    pool = ModelPool(served_runs, precision="fp32")
    shares = {name: set(s.shares_with) for name, s in pool.served.items()}
    # same base and peft type: LoRA and DoRA (both LORA) and LoRA on three labels (its own 3-way head), the two IA3
    # runs; the rest stand alone
    assert shares == {"lora": {"dora", "lora-3"}, "dora": {"lora", "lora-3"}, "ia3": {"ia3-b"}, "ia3-b": {"ia3"},
                      "lora-3": {"lora", "dora"}, "full": set(), "prefix": set()}
    assert pool.served["lora"].predictor.model is pool.served["dora"].predictor.model
    assert pool.served["lora"].predictor.model is pool.served["lora-3"].predictor.model
    assert list(pool.predict("lora-3", TEXTS[:1])[0]["probabilities"]) == ["meh", "neg", "pos"]
    assert pool.served["ia3"].predictor.model is pool.served["ia3-b"].predictor.model
    assert pool.names() == list(served_runs)
    want = {name: lightft.load(run, precision="fp32").predict(TEXTS) for name, run in served_runs.items()}
    # switching back and forth between the adapters of one model
    for name in ["lora", "dora", "lora", "ia3", "ia3-b", "dora", "ia3", "lora-3", "full", "prefix", "lora"]:
        got = pool.predict(name, TEXTS)
        assert_same(got, want[name])
        assert all(isinstance(r["tokens"], int) and 2 < r["tokens"] <= 32 for r in got)


def test_texts_led_by_pages_of_whitespace_predict_what_load_predicts(served_runs):
    """The pool cuts texts by characters before tokenizing (a 20 MB text must not hold the server): blank lines ahead
    of the words do not count, so the words are still read."""
    from lightft.serving.pool import CHARS_PER_TOKEN, cut_text

    padded = [" " * 4000 + "good great film", "\n" * 3300 + "awful boring plot"]  # beyond 50 x --max-length 32
    pool = ModelPool({"lora": served_runs["lora"]}, precision="fp32")
    got = pool.predict("lora", padded)
    assert_same(got, lightft.load(served_runs["lora"], precision="fp32").predict(padded))
    assert all(r["tokens"] > 2 for r in got)
    limit = CHARS_PER_TOKEN * 32
    assert len(cut_text("x" * 10 * limit, limit)) == limit and len(cut_text(" " * 10 * limit, limit)) == 4 * limit


def test_a_shared_base_is_held_once(served_runs):
    runs = {k: served_runs[k] for k in ("lora", "dora")}
    shared = ModelPool(runs, precision="fp32").parameter_bytes()
    apart = ModelPool(runs, precision="fp32", share=False).parameter_bytes()
    one = ModelPool({"lora": runs["lora"]}, precision="fp32").parameter_bytes()
    assert apart > 1.9 * one  # two merged copies
    assert shared < 1.2 * one  # one base plus two small adapters and heads


def test_an_adapter_peft_refuses_to_add_is_loaded_on_its_own(served_runs, monkeypatch):
    from peft import PeftModel

    original = PeftModel.load_adapter

    def refuse(self, model_id, adapter_name, **kwargs):  # from_pretrained loads the first adapter through it too
        if adapter_name != "default":
            raise ValueError("Vera PRNG initialisation key must be the same for all adapters.")
        return original(self, model_id, adapter_name, **kwargs)

    monkeypatch.setattr(PeftModel, "load_adapter", refuse)
    pool = ModelPool({k: served_runs[k] for k in ("lora", "dora")}, precision="fp32")
    assert pool.served["lora"].shares_with == () and pool.served["dora"].shares_with == ()
    assert pool.served["lora"].predictor.model is not pool.served["dora"].predictor.model
    assert_same(pool.predict("dora", TEXTS), lightft.load(served_runs["dora"], precision="fp32").predict(TEXTS))


def test_run_names(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    assert name_runs([str(a), f"second={b}"]) == {"a": a, "second": b}
    assert name_runs(a) == {"a": a}
    assert name_runs({"x": str(a)}) == {"x": a}
    with pytest.raises(LightftError, match=r"two runs are named 'a' .*name them apart with NAME=RUN_DIR, e\.g\. a-2="):
        name_runs([a, f"a={b}"])
    with pytest.raises(LightftError, match="no run to serve"):
        name_runs([])


def test_a_missing_or_damaged_run_is_one_line(served_runs, tmp_path):
    with pytest.raises(LightftError, match="not a run directory|not found|does not exist") as missing:
        ModelPool({"x": tmp_path / "nowhere"})
    assert "\n" not in str(missing.value)
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(served_runs["dora"], broken)
    (broken / "adapter_model.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(LightftError, match="damaged or incomplete") as damaged:
        ModelPool({"lora": served_runs["lora"], "broken": broken})
    assert "\n" not in str(damaged.value)


def test_a_head_sized_for_other_labels_is_built_without_reading_the_base(served_runs, tmp_path, monkeypatch):
    """The three-label run's head comes from the base's config alone (no second load of its weights); an adapter
    whose file lacks part of its head is never served with the nan it was filled with: loaded on its own, it is
    refused as lightft.load refuses it."""
    import shutil

    from safetensors.torch import load_file, save_file

    from transformers import AutoModelForSequenceClassification

    loads, real = [], AutoModelForSequenceClassification.from_pretrained
    monkeypatch.setattr(AutoModelForSequenceClassification, "from_pretrained",
                        lambda *a, **kw: loads.append(a) or real(*a, **kw))
    runs = {k: served_runs[k] for k in ("lora", "lora-3")}
    pool = ModelPool(runs, precision="fp32")
    assert pool.served["lora-3"].shares_with == ("lora",) and len(loads) == 1  # the shared base, once
    assert_same(pool.predict("lora-3", TEXTS), lightft.load(runs["lora-3"], precision="fp32").predict(TEXTS))

    headless = tmp_path / "headless"
    shutil.copytree(runs["lora-3"], headless)
    tensors = load_file(headless / "adapter_model.safetensors")
    save_file({k: v for k, v in tensors.items() if not k.endswith("classifier.bias")},
              str(headless / "adapter_model.safetensors"))
    with pytest.raises(LightftError, match=r"headless is damaged or incomplete \(KeyError: "
                                           r"'base_model.model.classifier.bias'\)"):  # as lightft.load says it
        ModelPool({"lora": runs["lora"], "headless": headless}, precision="fp32")
