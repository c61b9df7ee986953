"""Training speed: lightft vs transformers Trainer + peft on the same tokens, back to back in one process.

    python bench/train_speed.py --workload cpu --methods lora --lr 2e-3 --eval-n 1000 --seeds 0,1,2
    python bench/train_speed.py --workload gpu --methods lora,full    # BERT-base-cased size, IMDB lengths, max 512

Both sides: the same initial weights, hyperparameters (LoRA r=8, alpha 16, dropout 0.1 on query/value; AdamW,
linear warmup 6%, weight decay 0.01), batch size and number of optimizer updates. Prints samples/s, tokens/s,
peak memory, time to first step, first/last loss (means over the same 20-step windows) and the ratios.

Precision: the reference runs as ``TrainingArguments`` defaults it (fp32 on CPU, bf16 asked for on GPU);
``--reference-bf16`` adds a Trainer run with ``bf16=True`` on CPU too. lightft runs with its own default
(``--precision auto``: bf16 autocast on GPUs and on CPUs with native bf16 matmuls). With ``--seeds`` every run
is repeated per seed (head initialisation, adapter initialisation, batch order, dropout) and the summary gives
the mean speed and the mean test accuracy over seeds.
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
    from lightft.evaluation import predict_logits
    from lightft.model.forward import Forward

    device = next(model.parameters()).device
    if device.type == "cpu":
        model.float()  # lightft keeps frozen linear weights in bf16 under bf16 autocast; evaluate all in fp32
    logits = predict_logits(model, [list(x) for x in ids], forward=Forward(pad_token_id=0), batch_size=64, device=device,
                            precision="bf16" if device.type == "cuda" else "fp32", quiet=True)
    return float((logits.argmax(1) == torch.tensor(labels).numpy()).mean())


def fmt(value, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def run_method(args, method, seed, make_model, ids, labels, max_length, tokenizer, bs, steps, test) -> dict:
    """Every side of one method under one seed: {side name: figures}."""
    gpu = torch.cuda.is_available()
    common = dict(method=method, batch_size=bs, lr=args.lr or LR[method], max_steps=steps, seed=seed)
    ours = dict(group_by_length=args.group_by_length)
    sides = {}  # name: (bf16, torch_compile)
    if not args.skip_reference:
        sides["trainer+peft"] = (gpu, False)
        if args.reference_bf16 and not gpu:
            sides["trainer+peft bf16"] = (True, False)
        if args.reference_compile:
            sides["trainer+peft compile"] = (True, True)
    runs, models = {}, {}
    for name, (bf16, compiled) in sides.items():
        free_memory()
        models[name] = make_model(seed)
        ref = trainer_peft_train(models[name], ids, labels, max_length=max_length, tokenizer=tokenizer, bf16=bf16,
                                 compile=compiled, **common)
        ref["first_loss"], ref["last_loss"] = window_means(ref.pop("losses"))
        ref["precision"] = "bf16" if bf16 else "fp32"
        runs[name] = ref
    models["lightft"] = make_model(seed)
    runs["lightft"] = lightft_train(models["lightft"], ids, labels, **common, **ours)
    if test is not None:
        for name, model in models.items():
            runs[name]["test_accuracy"] = accuracy(model, *test)
    for mode in filter(None, args.compile.split(",")):  # with --max-tokens, compiled runs take the token budget
        budget = f" --max-tokens {args.max_tokens}" if args.max_tokens else ""
        runs[f"lightft --compile {mode}{budget}"] = lightft_train(make_model(seed), ids, labels, compile=mode,
                                                                  max_length=max_length, max_tokens=args.max_tokens,
                                                                  **common, **ours)
    if args.max_tokens:
        runs[f"lightft --max-tokens {args.max_tokens}"] = lightft_train(make_model(seed), ids, labels, max_tokens=args.max_tokens, **common)
        if method == "lora":
            runs[f"lightft --max-tokens {args.max_tokens} dropout 0"] = lightft_train(
                make_model(seed), ids, labels, max_tokens=args.max_tokens, lora_dropout=0.0, **common)
    for name, r in runs.items():
        r.pop("loss_curve", None)
        acc = f"  test accuracy {100 * r['test_accuracy']:.2f}%" if "test_accuracy" in r else ""
        if r.get("compile_failed"):
            acc += "  COMPILE FAILED: these are eager figures"
        if r.get("late_samples_per_s"):
            acc += f"  (second half: {r['late_samples_per_s']:.1f} samples/s)"
        print(f"{method:5s} seed {seed} {name:28s} {r['precision']:4s} {fmt(r['samples_per_s'], '9.1f')} samples/s "
              f"{fmt(r['tokens_per_s'], '10.0f')} tokens/s peak {fmt(r['peak_memory_mb'], '8.0f')} MB  first step "
              f"{fmt(r['time_to_first_step_s'], '6.2f')} s  loss {fmt(r['first_loss'], '.4f')} -> {fmt(r['last_loss'], '.4f')}{acc}",
              flush=True)
    return runs


def summarise(method: str, per_seed: list[dict]) -> dict:
    """Means over seeds of each side's figures (accuracy spread printed too)."""
    out = {}
    for name in per_seed[0]:
        rows = [runs[name] for runs in per_seed]
        mean = {k: sum(r[k] for r in rows) / len(rows) for k, v in rows[0].items()
                if isinstance(v, (int, float)) and not isinstance(v, bool) and all(r.get(k) is not None for r in rows)}
        out[name] = {**rows[0], **mean}
        accs = [100 * r["test_accuracy"] for r in rows if "test_accuracy" in r]
        acc = f"; test accuracy mean {sum(accs) / len(accs):.2f}% (min {min(accs):.2f}, max {max(accs):.2f})" if accs else ""
        print(f"{method:5s} mean of {len(rows)} seeds {name:28s} {mean['samples_per_s']:9.1f} samples/s{acc}")
    return out


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
    p.add_argument("--seeds", default="0", help="Comma-separated training seeds; several give means (default 0).")
    p.add_argument("--reference-bf16", action="store_true", help="On CPU, also run Trainer + peft with bf16=True.")
    p.add_argument("--reference-compile", action="store_true",
                   help="Also run Trainer + peft with bf16=True and torch_compile=True (the issue's best reference).")
    p.add_argument("--group-by-length", action="store_true", help="lightft with length-grouped batches (not the default).")
    p.add_argument("--compile", default="", metavar="MODES",
                   help="Also run lightft compiled, once per compile spec listed (default, max-autotune-no-cudagraphs, "
                        "model:default, model:reduce-overhead; CUDA graphs per layer are refused for training); samples/s over the second "
                        "half of the steps. With --max-tokens, the compiled runs use that token budget.")
    p.add_argument("--out", help="Write the figures as JSON here.")
    args = p.parse_args(argv)
    gpu = args.workload == "gpu"
    bs = args.batch_size or (32 if gpu else 16)
    steps = args.steps or (60 if gpu else 62)
    n = args.n or steps * bs
    make_model, ids, labels, max_length, desc = workload(args.workload, max(n, steps * bs), args.ids)
    if len(ids) < steps * bs:  # lightft trains one epoch over the rows: fewer updates than the reference's max_steps
        p.error(f"{steps} updates x {bs} rows need {steps * bs} rows; the workload has {len(ids)}: lower --steps")
    tokenizer = None
    if args.tokenizer:
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(args.tokenizer)
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else f"cpu ({torch.get_num_threads()} threads)"
    mean_len = sum(map(len, ids[: steps * bs])) / (steps * bs)
    print(f"workload: {desc}; {steps} updates x {bs} rows, mean {mean_len:.0f} tokens/row; device {device}")
    results = {"workload": desc, "device": device, "steps": steps, "batch_size": bs, "mean_tokens": mean_len, "runs": {}}
    test = None
    if args.eval_n:  # the same padded evaluation for every trained model
        _, test_ids, test_labels, _, _ = workload(args.workload, args.eval_n, args.ids, split="test")
        test = (test_ids, test_labels)
    seeds = [int(x) for x in args.seeds.split(",")]
    for method in args.methods.split(","):
        per_seed = [run_method(args, method, seed, make_model, ids, labels, max_length, tokenizer, bs, steps, test)
                    for seed in seeds]
        runs = per_seed[0] if len(seeds) == 1 else summarise(method, per_seed)
        for ref_name, ref in runs.items():  # every lightft side against every reference side
            if not ref_name.startswith("trainer+peft") or not ref["samples_per_s"]:
                continue
            for name, ours in runs.items():
                if name.startswith("lightft") and ours["samples_per_s"] and "max-tokens" not in name:
                    memory = (f", peak memory x{ours['peak_memory_mb'] / ref['peak_memory_mb']:.2f}"
                              if ours["peak_memory_mb"] and ref["peak_memory_mb"] else "")
                    print(f"{method:5s} ratio {name} / {ref_name}: samples/s "
                          f"x{ours['samples_per_s'] / ref['samples_per_s']:.2f}{memory}")
        results["runs"][method] = runs
        if len(seeds) > 1:
            results.setdefault("per_seed", {})[method] = per_seed
    if {"lora", "full"} <= set(results["runs"]) and all(results["runs"][m]["lightft"]["samples_per_s"] for m in ("lora", "full")):
        r = results["runs"]
        print(f"lightft LoRA / lightft full samples/s: x{r['lora']['lightft']['samples_per_s'] / r['full']['lightft']['samples_per_s']:.2f}")
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=2, default=str))
    return results


if __name__ == "__main__":
    main()
