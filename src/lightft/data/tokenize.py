"""Tokenize texts once, without padding, into token-id lists (padding happens per batch)."""

from __future__ import annotations

from typing import Sequence

from lightft import progress
from lightft.errors import LightftError

CHUNK = 1000


def tokenize(tokenizer, texts: Sequence[str], max_length: int, *, desc: str = "tokenizing", quiet: bool = False) -> list[list[int]]:
    """Token ids per text, truncated to ``max_length`` (special tokens included)."""
    ids: list[list[int]] = []
    with progress.bar(len(texts), desc, quiet=quiet) as bar:
        for start in range(0, len(texts), CHUNK):
            chunk = list(texts[start : start + CHUNK])
            ids += tokenizer(chunk, truncation=True, max_length=max_length, padding=False)["input_ids"]
            bar.update(len(chunk))
    return ids


def check_room_for_text(tokenizer, max_length: int, spec: str) -> None:
    """``--max-length`` counts the special tokens the tokenizer adds ([CLS] and [SEP] for BERT): at or below their
    number every text would be cut to nothing, and the model would see the same input for all of them."""
    special = tokenizer.num_special_tokens_to_add(pair=False)
    if max_length <= special:
        raise LightftError(f"--max-length {max_length} leaves no room for text: the tokenizer of {spec} adds {special} "
                           f"special tokens to every text; pass --max-length {special + 1} or more (128 to 512 is usual)")


def mostly_cut(ids: Sequence[Sequence[int]], max_length: int) -> bool:
    """Whether (nearly) every text reaches ``max_length``: worth a warning in training, where a run at 90% (IMDB at
    128 tokens, the quickstart) is a deliberate trade and stays a data note in the report."""
    return bool(ids) and sum(len(x) >= max_length for x in ids) >= 0.99 * len(ids)


def cut_note(ids: Sequence[Sequence[int]], max_length: int, what: str) -> str | None:
    """A sentence on how many of ``what`` reach ``max_length`` tokens (those longer lost the rest), or None.

    Truncated ids cannot tell a text of exactly ``max_length`` tokens from a longer one, so both are counted."""
    cut = sum(len(x) >= max_length for x in ids)
    if not cut:
        return None
    return (f"{cut:,} of {len(ids):,} {what} ({cut / len(ids):.1%}) reach --max-length {max_length} tokens, where "
            f"longer texts are cut; a larger --max-length keeps more of them, at more time per text")
