"""Smoke test of the benchmark reference pipeline (bench/reference.py) on a tiny random BERT, on CPU."""

import importlib.util
import math
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[2]


def _load_reference():
    # bench/ is not an installed package; load it by path so no sys.path or package-name clash is involved.
    spec = importlib.util.spec_from_file_location("lightft_bench_reference", REPO / "bench" / "reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


reference = _load_reference()

TRAIN_KEYS = {
    "samples_per_s", "tokens_per_s", "steady_steps", "mean_step_s", "time_to_first_step_s", "total_s",
    "peak_memory_mb", "peak_memory_kind", "first_loss", "last_loss", "losses", "trainable_params",
    "total_params", "device",
}


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    from transformers import BertTokenizer

    vocab = tmp_path_factory.mktemp("vocab") / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [f"w{i}" for i in range(95)]))
    return BertTokenizer(str(vocab))


def tiny_bert():
    from transformers import AutoModelForSequenceClassification, BertConfig

    torch.manual_seed(0)
    config = BertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=37, max_position_embeddings=64, num_labels=2)
    return AutoModelForSequenceClassification.from_config(config)


def tiny_data(n=12, seed=0):
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(4, 40, (n,), generator=g).tolist()  # some longer than max_length=32
    ids = [[2] + torch.randint(5, 100, (k - 2,), generator=g).tolist() + [3] for k in lengths]
    return ids, [i % 2 for i in range(n)]


@pytest.mark.parametrize("method", ["lora", "full"])
def test_trainer_peft_train_smoke(method, tokenizer):
    ids, labels = tiny_data()
    r = reference.trainer_peft_train(tiny_bert(), ids, labels, method=method, batch_size=4, lr=1e-3, max_steps=3,
                                     max_length=32, tokenizer=tokenizer)
    assert set(r) == TRAIN_KEYS
    assert r["device"] == ("cuda" if torch.cuda.is_available() else "cpu")
    assert r["steady_steps"] == 2 and len(r["losses"]) == 3
    assert math.isfinite(r["first_loss"]) and math.isfinite(r["last_loss"])
    assert r["samples_per_s"] > 0 and r["tokens_per_s"] > 0 and r["peak_memory_mb"] > 0
    assert 0 < r["time_to_first_step_s"] <= r["total_s"]
    if method == "full":
        assert r["trainable_params"] == r["total_params"]
    else:
        assert 0 < r["trainable_params"] < r["total_params"] / 2


def test_trainer_peft_train_rejects_bad_arguments(tokenizer):
    ids, labels = tiny_data()
    with pytest.raises(ValueError, match="method must be one of"):
        reference.trainer_peft_train(tiny_bert(), ids, labels, method="qlora", batch_size=4, lr=1e-3,
                                     max_steps=1, tokenizer=tokenizer)


def test_pipeline_infer_logits_shape(tokenizer):
    ids, _ = tiny_data(n=10)
    r = reference.pipeline_infer(tiny_bert(), ids, batch_size=4, max_length=32, tokenizer=tokenizer)
    assert r["logits"].shape == (10, 2) and r["logits"].dtype == torch.float32
    assert torch.isfinite(r["logits"]).all()
    assert r["samples_per_s"] > 0 and r["tokens_per_s"] > 0 and r["peak_memory_mb"] > 0
