"""Tokens per training batch, padded vs packed, for the batch plans lightft can draw.

    python bench/batch_tokens.py                      # GPU workload (b): 60 batches x 32 IMDB reviews, max 512
    python bench/batch_tokens.py --ids .carry/train.json.gz

Activation memory grows with the tokens a step processes, so peak memory follows the largest batch: rows x
longest for a padded batch (what Trainer + peft allocates), the real tokens for a packed one (lightft on CUDA),
rounded up to a bucket size under --compile. Prints the mean and the largest batch of each over the same plan,
for random batches (the default) and length-grouped ones (--group-by-length; the default when the H100 figures
in docs/performance.md were taken). No model runs: this is arithmetic on the workload's lengths.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from bench.workloads import workload  # noqa: E402
from lightft.data.batching import bucket_length, train_batches  # noqa: E402


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workload", choices=["cpu", "gpu"], default="gpu")
    p.add_argument("--steps", type=int, default=60)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--ids", help="Pre-tokenised workload (bench/make_carry.py) instead of reading IMDB.")
    args = p.parse_args(argv)
    n = args.steps * args.batch_size
    _, ids, _, max_length, desc = workload(args.workload, n, args.ids)
    lengths = [len(x) for x in ids[:n]]
    print(f"workload: {desc}; {args.steps} batches x {args.batch_size} rows, mean {sum(lengths) / n:.0f} tokens/row")
    out = {}
    for plan_name, group in (("random rows", False), ("length-grouped", True)):
        plan = train_batches(lengths, args.batch_size, seed=args.seed, epoch=0, group=group)
        sizes = {
            "padded (rows x longest)": [len(b) * max(lengths[i] for i in b) for b in plan],
            "packed (real tokens)": [sum(lengths[i] for i in b) for b in plan],
            "packed, --compile bucket": [bucket_length(sum(lengths[i] for i in b), per_doubling=8) for b in plan],
        }
        for layout, tokens in sizes.items():
            out[(plan_name, layout)] = (sum(tokens) / len(tokens), max(tokens))
            print(f"{plan_name:15s} {layout:26s} mean {sum(tokens) / len(tokens):8.0f} tokens/batch, "
                  f"largest {max(tokens):6d} ({max(tokens) / (args.batch_size * max_length):.2f} of {args.batch_size} x {max_length})")
    return out


if __name__ == "__main__":
    main()
