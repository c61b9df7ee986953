"""Inference speed: lightft (merged weights, length-sorted, padding-free on CUDA) vs the plain padded loop.

    python bench/infer_speed.py --workload cpu --n 500
    python bench/infer_speed.py --workload gpu --n 4096

Both sides score the same token ids with the same weights; the script checks their predictions agree.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import torch  # noqa: E402

from bench.lightft_side import lightft_infer  # noqa: E402
from bench.reference import pipeline_infer  # noqa: E402
from bench.workloads import workload  # noqa: E402


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workload", choices=["cpu", "gpu"], required=True)
    p.add_argument("--n", type=int, default=None)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--max-tokens", type=int, default=None, help="lightft token budget per batch.")
    p.add_argument("--ids")
    p.add_argument("--tokenizer")
    p.add_argument("--compile", default="", metavar="MODES",
                   help="Also run lightft compiled, once per torch.compile mode listed (default, reduce-overhead, ...).")
    p.add_argument("--out")
    args = p.parse_args(argv)
    gpu = args.workload == "gpu"
    n = args.n or (4096 if gpu else 500)
    make_model, ids, _, max_length, desc = workload(args.workload, n, args.ids, split="test")
    tokenizer = None
    if args.tokenizer:
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(args.tokenizer)
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else f"cpu ({torch.get_num_threads()} threads)"
    print(f"workload: {desc}; {len(ids)} texts, batch {args.batch_size}; device {device}")
    runs = {"padded loop": pipeline_infer(make_model(), ids, batch_size=args.batch_size, bf16=torch.cuda.is_available(),
                                          max_length=max_length, tokenizer=tokenizer)}
    if not torch.cuda.is_available():  # the padded loop under bf16 autocast too, for CPUs where that pays
        runs["padded loop bf16"] = pipeline_infer(make_model(), ids, batch_size=args.batch_size, bf16=True,
                                                  max_length=max_length, tokenizer=tokenizer)
    runs["lightft"] = ours = lightft_infer(make_model(), ids, batch_size=args.batch_size, max_tokens=args.max_tokens)
    for mode in filter(None, args.compile.split(",")):
        runs[f"lightft --compile {mode}"] = lightft_infer(make_model(), ids, batch_size=args.batch_size,
                                                          max_tokens=args.max_tokens, compile=mode, max_length=max_length)
    ref = runs["padded loop"]
    for name, r in runs.items():
        agree = float((ref["logits"].argmax(-1) == r["logits"].argmax(-1)).float().mean())
        warm = f"  warm-up {r['warmup_s']:.1f} s" if "warmup_s" in r else ""
        warm += "  COMPILE FAILED: these are eager figures" if r.get("compile_failed") else ""
        print(f"{name:16s} {r['samples_per_s']:9.1f} samples/s {r['tokens_per_s']:10.0f} tokens/s peak "
              f"{r['peak_memory_mb']:8.0f} MB  predictions agree with the padded loop on {100 * agree:.1f}%{warm}")
    for ours_name, ours_run in runs.items():
        for name, r in runs.items():
            if ours_name.startswith("lightft") and not name.startswith("lightft"):
                print(f"ratio {ours_name} / {name}: x{ours_run['samples_per_s'] / r['samples_per_s']:.2f}")
    agree = float((ref["logits"].argmax(-1) == ours["logits"].argmax(-1)).float().mean())
    out = {"workload": desc, "device": device, "n": len(ids), "agree": agree,
           "runs": {k: {f: v for f, v in r.items() if f != "logits"} for k, r in runs.items()}}
    if args.out:
        Path(args.out).write_text(json.dumps(out, indent=2, default=str))
    return out


if __name__ == "__main__":
    main()
