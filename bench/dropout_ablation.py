"""Does lightft's CPU fast dropout change accuracy? The lightft side of ``defaults_check.py`` (same splits, same
settings) under one dropout variant, over several seeds; one JSON line per run.

    PYTHONPATH=src python bench/dropout_ablation.py --variant stock --method loha --seeds 42,1,2,3

Variants (all on CPU, bf16 autocast where ``--precision auto`` picks it):

* ``fast``: lightft's default (``model/fast_dropout.py``: masks from 16-bit random lanes, ``lightft_sdpa``);
* ``stock``: torch's own dropout and SDPA (what ``LIGHTFT_FAST_DROPOUT=0`` does);
* ``fp32-attention``: the fast masks, with the training attention computed in fp32 as SDPA's math path does
  (lightft's path keeps scores and softmax in bf16 under autocast);
* ``bernoulli-masks``: lightft's code path, with masks drawn by ``aten::bernoulli_`` instead of the lanes.

Results and what they say: docs/defaults.md, "The LoHa/OFT gap over four seeds, and the fast dropout masks".
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402

import lightft  # noqa: E402
from lightft.data.prepare import prepare_splits  # noqa: E402
from lightft.model import fast_dropout as fd  # noqa: E402
from lightft.quickstart import minilm_path  # noqa: E402
from defaults_check import write_splits  # noqa: E402

VARIANTS = ("fast", "stock", "fp32-attention", "bernoulli-masks")


def fp32_attention(module, query, key, value, attention_mask, scaling=None, dropout=0.0, **kwargs):
    """``fd.padded_attention`` with scores, softmax and the probability-value product in fp32."""
    if not (module.training and 0 < dropout < 1 and query.is_cpu):
        return fd.padded_attention(module, query, key, value, attention_mask, scaling=scaling, dropout=dropout,
                                   **kwargs)
    scale = query.shape[-1] ** -0.5 if scaling is None else scaling
    with torch.autocast("cpu", enabled=False):
        scores = torch.matmul(query.float() * scale, key.float().transpose(-1, -2))
        if attention_mask is not None:
            if attention_mask.dtype == torch.bool:
                attention_mask = torch.zeros(attention_mask.shape).masked_fill_(~attention_mask,
                                                                                torch.finfo(torch.float32).min)
            scores = scores + attention_mask[..., : key.shape[-2]].float()
        probs = fd._FastDropout.apply(torch.softmax(scores, dim=-1), dropout, False)
        out = torch.matmul(probs, value.float()) * fd.keep_scale(dropout)
    return out.to(query.dtype).transpose(1, 2).contiguous(), None


def use_variant(variant: str) -> None:
    if variant == "stock":
        os.environ["LIGHTFT_FAST_DROPOUT"] = "0"
    elif variant == "fp32-attention":
        from transformers import AttentionInterface

        AttentionInterface.register(fd.ATTN_IMPLEMENTATION, fp32_attention)
    elif variant == "bernoulli-masks":
        fd._keep_mask = lambda shape, p: (torch.empty(shape).bernoulli_(1 - p).bool(), 1 / (1 - p))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--variant", choices=VARIANTS, required=True)
    p.add_argument("--method", default="loha")
    p.add_argument("--seeds", default="42,1,2,3")
    p.add_argument("--data", default="../shared/datasets/sst2")
    p.add_argument("--limit-train", type=int, default=2000)
    p.add_argument("--max-length", type=int, default=64)
    args = p.parse_args()
    use_variant(args.variant)
    for seed in (int(s) for s in args.seeds.split(",")):
        splits = prepare_splits(args.data, limit_train=args.limit_train, limit_eval=None, seed=seed)
        with tempfile.TemporaryDirectory(prefix="lightft-dropout-") as tmp:
            write_splits(splits, Path(tmp) / "data")
            started = time.perf_counter()
            run = lightft.train(model=str(minilm_path()), data=str(Path(tmp) / "data"), method=args.method, epochs=3,
                                batch_size=16, max_length=args.max_length, seed=seed, baseline=False, quiet=True,
                                output=str(Path(tmp) / "run"))
            m = run.metrics
            print(json.dumps({"variant": args.variant, "method": args.method, "seed": seed,
                              "validation": round(m["validation"]["accuracy"], 4), "test": round(m["eval"]["accuracy"], 4),
                              "validation_per_epoch": [round(h["validation"]["accuracy"], 4) for h in m["history"]],
                              "seconds": round(time.perf_counter() - started)}), flush=True)


if __name__ == "__main__":
    main()
