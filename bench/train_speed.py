"""Training speed: lightft vs transformers Trainer + peft on the same tokens, back to back in one process.

    python bench/train_speed.py --workload cpu --n 1000               # MiniLM LoRA, 1,000 IMDB reviews, max 256
    python bench/train_speed.py --workload gpu --methods lora,full    # BERT-base-cased size, IMDB lengths, max 512

Both sides: the same initial weights, hyperparameters (LoRA r=8, alpha 16, dropout 0.1 on query/value; AdamW,
linear warmup 6%, weight decay 0.01), batch size and number of optimizer updates. Prints samples/s, tokens/s,
peak memory, time to first step, first/last loss (means over the same 20-step windows) and the ratios.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import torch  # noqa: E402

from bench.lightft_side import free_memory, lightft_train  # noqa: E402
from bench.reference import trainer_peft_train  # noqa: E402
from bench.workloads import workload  # noqa: E402

LR = {"lora": 5e-4, "full": 5e-5}
WINDOW = 20  # lightft logs the mean loss of each 20 steps; the reference's per-step losses are averaged alike


def window_means(losses: list[float]) -> tuple[float, float]:
    last = len(losses) - (len(losses) - 1) % WINDOW - 1 if len(losses) > WINDOW else 0
    return sum(losses[:WINDOW]) / len(losses[:WINDOW]), sum(losses[last:]) / len(losses[last:])


def accuracy(model, ids, labels) -> float:
    from lightft.evaluate import predict_logits
    from lightft.model.forward import Forward

    device = next(model.parameters()).device
    logits = predict_logits(model, [list(x) for x in ids], forward=Forward(pad_token_id=0), batch_size=64, device=device,
                            precision="bf16" if device.type == "cuda" else "fp32", quiet=True)
    return float((logits.argmax(1) == torch.tensor(labels).numpy()).mean())


def fmt(value, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workload", choices=["cpu", "gpu"], required=True)
    p.add_argument("--methods", default="lora,full")
    p.add_argument("--n", type=int, default=None, help="Rows (default: steps x batch size).")
    p.add_argument("--steps", type=int, default=None, help="Optimizer updates (default: cpu 62, gpu 60).")
    p.add_argument("--batch-size", type=int, default=None, help="Rows per update (default: cpu 16, gpu 32).")
    p.add_argument("--max-tokens", type=int, default=None, help="Also run lightft with this token budget per batch.")
    p.add_argument("--ids", help="Pre-tokenised workload (bench/workloads.save_ids) instead of reading IMDB.")
    p.add_argument("--tokenizer", help="Tokenizer directory for the reference's padding collator.")
    p.add_argument("--skip-reference", action="store_true")
    p.add_argument("--lr", type=float, default=None, help="Learning rate for both sides (default: lora 5e-4, full 5e-5).")
    p.add_argument("--eval-n", type=int, default=0, help="Also report both models' test accuracy on N reviews.")
    p.add_argument("--out", help="Write the figures as JSON here.")
    args = p.parse_args(argv)
    gpu = args.workload == "gpu"
    bs = args.batch_size or (32 if gpu else 16)
    steps = args.steps or (60 if gpu else 62)
    n = args.n or steps * bs
    make_model, ids, labels, max_length, desc = workload(args.workload, max(n, steps * bs), args.ids)
    tokenizer = None
    if args.tokenizer:
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(args.tokenizer)
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else f"cpu ({torch.get_num_threads()} threads)"
    mean_len = sum(map(len, ids[: steps * bs])) / (steps * bs)
    print(f"workload: {desc}; {steps} updates x {bs} rows, mean {mean_len:.0f} tokens/row; device {device}")
    results = {"workload": desc, "device": device, "steps": steps, "batch_size": bs, "mean_tokens": mean_len, "runs": {}}
    for method in args.methods.split(","):
        common = dict(method=method, batch_size=bs, lr=args.lr or LR[method], max_steps=steps, bf16=torch.cuda.is_available(), seed=0)
        runs = {}
        if not args.skip_reference:
            free_memory()
            ref_model = make_model()
            ref = trainer_peft_train(ref_model, ids, labels, max_length=max_length, tokenizer=tokenizer, **common)
            ref["first_loss"], ref["last_loss"] = window_means(ref.pop("losses"))
            runs["trainer+peft"] = ref
        our_model = make_model()
        runs["lightft"] = lightft_train(our_model, ids, labels, **common)
        if args.eval_n:  # the same padded evaluation for both trained models (peft injects adapters in place)
            from bench.workloads import workload as _w

            _, test_ids, test_labels, _, _ = _w(args.workload, args.eval_n, args.ids, split="test")
            for name, m in (("trainer+peft", None if args.skip_reference else ref_model), ("lightft", our_model)):
                if m is not None:
                    runs[name]["test_accuracy"] = accuracy(m, test_ids, test_labels)
                    print(f"{method:5s} {name:28s} test accuracy {100 * runs[name]['test_accuracy']:.2f}% on {len(test_ids)} reviews")
        if args.max_tokens:
            runs[f"lightft --max-tokens {args.max_tokens}"] = lightft_train(make_model(), ids, labels, max_tokens=args.max_tokens, **common)
            if method == "lora":
                runs[f"lightft --max-tokens {args.max_tokens} dropout 0"] = lightft_train(
                    make_model(), ids, labels, max_tokens=args.max_tokens, lora_dropout=0.0, **common)
        for name, r in runs.items():
            r.pop("loss_curve", None)
            print(f"{method:5s} {name:28s} {fmt(r['samples_per_s'], '9.1f')} samples/s {fmt(r['tokens_per_s'], '10.0f')} "
                  f"tokens/s peak {fmt(r['peak_memory_mb'], '8.0f')} MB  first step {fmt(r['time_to_first_step_s'], '6.2f')} s  "
                  f"loss {fmt(r['first_loss'], '.4f')} -> {fmt(r['last_loss'], '.4f')}  ({r.get('samples')} samples)")
        if "trainer+peft" in runs and runs["lightft"]["samples_per_s"] and runs["trainer+peft"]["samples_per_s"]:
            ref, ours = runs["trainer+peft"], runs["lightft"]
            print(f"{method:5s} ratio lightft / trainer+peft: samples/s x{ours['samples_per_s'] / ref['samples_per_s']:.2f}, "
                  f"peak memory x{ours['peak_memory_mb'] / ref['peak_memory_mb']:.2f}")
        results["runs"][method] = runs
    if {"lora", "full"} <= set(results["runs"]) and all(results["runs"][m]["lightft"]["samples_per_s"] for m in ("lora", "full")):
        r = results["runs"]
        print(f"lightft LoRA / lightft full samples/s: x{r['lora']['lightft']['samples_per_s'] / r['full']['lightft']['samples_per_s']:.2f}")
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=2, default=str))
    return results


if __name__ == "__main__":
    main()
