"""Do lightft's defaults reach what a careful Trainer + peft script gets? (the product bar on defaults)

    PYTHONPATH=src python bench/defaults_check.py --data ../shared/datasets/trec --limit-train 2000 \
        --out docs/results/defaults-check-trec.json

One seeded set of splits (lightft's own `prepare_splits`: same carve-outs and limits) is written to split files,
so both sides train, select and test on exactly the same rows, with the same encoder, epochs, batch size, max
length, warmup and weight decay:

* **lightft**: `lightft.train(method=M)` with no learning rate given (the method's default), best epoch by its
  default validation metric.
* **the careful script**: `AutoModelForSequenceClassification` + `peft.get_peft_model(LoraConfig(task_type=
  "SEQ_CLS", r=8, alpha=16, dropout=0.1, query/value))` (`use_dora=True` for `dora`; `IA3Config(task_type=
  "SEQ_CLS")` with peft's default targets for `ia3`; all weights for `full`) in a stock `Trainer`, linear
  warmup 6%, evaluation and a checkpoint every epoch, `load_best_model_at_end` on validation accuracy, and the
  learning rate picked on validation from a small grid of the values tutorials use (`REFERENCE_GRID`). That
  is more tuning than lightft gets: lightft must match the best of the grid without any.

Prints one row per (method, side, lr): validation and test accuracy and macro-F1 and the wall time of the whole
call (load, tokenize, train with per-epoch validation, test), then the verdict per method (lightft's test accuracy
minus the careful script's, at the learning rate the script selected on validation). Times are only comparable
when nothing else runs on the machine.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import numpy as np  # noqa: E402
import torch  # noqa: E402

import lightft  # noqa: E402
from lightft.data.prepare import prepare_splits  # noqa: E402
from lightft.evaluation.metrics import classification_metrics  # noqa: E402
from lightft.quickstart import minilm_path  # noqa: E402
from lightft.runtime import default_device, resolve_precision  # noqa: E402

REFERENCE_GRID = {
    "lora": [5e-4, 1e-3, 2e-3],  # peft's examples and tutorials use 3e-4 to 1e-3
    "dora": [5e-4, 1e-3, 2e-3],  # as LoRA: peft's DoRA examples keep LoRA's rates
    "ia3": [1e-3, 3e-3, 1e-2],  # the IA3 paper used 3e-3; peft's IA3 examples 1e-3 to 1e-2
    "full": [2e-5, 5e-5],  # the transformers text-classification guide uses 2e-5; Trainer's default is 5e-5
    "head": [1e-3, 1e-2],
    # The methods below train the adapter lightft builds (`Method.attach`: the same peft config, targets and
    # head on both sides), in the stock Trainer: only the training loop and the learning rate differ.
    "loha": [5e-4, 1e-3, 2e-3, 5e-3],  # LoRA's range and above (LyCORIS suggests higher rates for LoHa/LoKr)
    "lokr": [5e-4, 1e-3, 2e-3, 5e-3],
    "vera": [1e-3, 4e-3, 1e-2, 2e-2],  # the VeRA paper: 4e-3 to 1e-2 for RoBERTa-base on GLUE
    "fourierft": [5e-3, 1e-2, 5e-2, 1e-1],  # the FourierFT paper: 5e-2 to 1e-1 for RoBERTa-base on GLUE
    "oft": [3e-4, 1e-3, 3e-3],
    "boft": [3e-4, 1e-3, 3e-3],
    "bitfit": [1e-4, 1e-3, 5e-3, 1e-2],  # the BitFit paper: 1e-4 to 1e-3 (BERT-large); higher for small models
    "prefix": [3e-3, 1e-2, 3e-2],  # peft's prefix-tuning examples: 1e-2 to 3e-2
    "prompt": [1e-2, 3e-2, 1e-1],  # peft's prompt-tuning examples: 3e-2
    "ptuning": [3e-3, 1e-2, 3e-2],  # peft's P-tuning examples: 1e-3 to 1e-2
    "adalora": [5e-4, 1e-3, 2e-3, 5e-3, 1e-2],  # the AdaLoRA paper: 5e-4 to 1.2e-3 (DeBERTa-base on GLUE); higher
    # rates added in session 9, when 2e-3 proved far too low for 375 updates on TREC
}
ATTACHED = {"loha", "lokr", "vera", "fourierft", "oft", "boft", "prefix", "prompt", "ptuning", "adalora"}
# The Trainer's load_best_model_at_end reloads a saved checkpoint, which peft 0.21 gets wrong for these: P-tuning's
# checkpoint holds the prompt encoder's output, reloaded as its input (the MLP then runs twice), and AdaLoRA's
# holds the ranks of its epoch, reloaded into the final rank pattern's shapes. They keep the best epoch in memory.
BEST_IN_MEMORY = {"prefix", "prompt", "ptuning", "adalora"}


class KeepBest:
    """Best epoch by validation accuracy, kept as a copy of the trained tensors (a Trainer callback)."""

    def __new__(cls, model):
        from transformers import TrainerCallback

        class _KeepBest(TrainerCallback):
            best, state = -1.0, None

            def on_evaluate(self, args, state, control, metrics=None, **kwargs):
                if metrics and metrics["eval_accuracy"] > self.best:
                    self.best = metrics["eval_accuracy"]
                    self.state = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}

            def restore(self):
                params = dict(model.named_parameters())
                with torch.no_grad():
                    for n, t in self.state.items():
                        params[n].copy_(t)

        return _KeepBest()


def adalora_callback(model, steps: int):
    """AdaLoRA in a Trainer: the budget schedule over the run (as lightft lays it: 10% warm, 20% final) and
    ``update_and_allocate`` after each optimizer step, before the gradients are zeroed, as peft's docs ask.
    peft adds the orthogonality penalty itself to the loss it computes from labels (the Trainer's path)."""
    from transformers import TrainerCallback

    config = model.peft_config["default"]
    config.total_step, config.tinit, config.tfinal = steps, max(1, round(0.1 * steps)), max(1, round(0.2 * steps))
    config.deltaT = max(1, round(steps / 100))

    class Allocate(TrainerCallback):
        def on_optimizer_step(self, args, state, control, **kwargs):
            if steps >= 10:  # lightft keeps the initial ranks in runs of fewer updates
                model.base_model.update_and_allocate(state.global_step + 1)  # updates done, as lightft counts

    return Allocate()


def write_splits(splits, directory: Path) -> None:
    """The exact rows lightft would use, as train/validation/test JSONL (label values as in the source)."""
    directory.mkdir(parents=True, exist_ok=True)
    for name in ("train", "validation", "test"):
        split = getattr(splits, name)
        with (directory / f"{name}.jsonl").open("w", encoding="utf-8") as f:
            for text, label in zip(split.texts, split.labels):
                f.write(json.dumps({"text": text, "label": splits.labels.names[label]}) + "\n")


def careful_trainer(model_path: str, method: str, lr: float, splits, args, bf16: bool) -> dict:
    """The Trainer + peft script a careful user writes; returns validation and test metrics of the best epoch."""
    import transformers
    from transformers import (AutoModelForSequenceClassification, AutoTokenizer, DataCollatorWithPadding,
                              PrinterCallback, Trainer, TrainingArguments)

    started = time.perf_counter()  # wall time of the whole script: load, tokenize, train, validate, test
    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    names = [str(n) for n in splits.labels.names]
    tokenizer = AutoTokenizer.from_pretrained(model_path)

    def encode(split):
        ids = tokenizer(split.texts, truncation=True, max_length=args.max_length)["input_ids"]
        return [{"input_ids": x, "attention_mask": [1] * len(x), "labels": y} for x, y in zip(ids, split.labels)]

    transformers.set_seed(args.seed)
    model = AutoModelForSequenceClassification.from_pretrained(
        model_path, num_labels=len(names), id2label=dict(enumerate(names)),
        label2id={n: i for i, n in enumerate(names)})
    if method in ("lora", "dora"):
        from peft import LoraConfig, get_peft_model

        model = get_peft_model(model, LoraConfig(task_type="SEQ_CLS", r=8, lora_alpha=16, lora_dropout=0.1,
                                                 target_modules=["query", "value"], use_dora=method == "dora"))
    elif method == "ia3":  # peft's own defaults for the architecture (BERT: key, value and the FFN output)
        from peft import IA3Config, get_peft_model

        model = get_peft_model(model, IA3Config(task_type="SEQ_CLS"))
    elif method == "head":
        for name, p in model.named_parameters():
            p.requires_grad = name.startswith("classifier")
    elif method == "bitfit":  # every bias of the encoder, plus the head
        for name, p in model.named_parameters():
            p.requires_grad = name.endswith(".bias") or name.startswith("classifier")
    elif method in ATTACHED:
        from lightft.config import TrainConfig
        from lightft.methods import get_method

        model = get_method(method).attach(model, TrainConfig(model=model_path, data="-", method=method,
                                                             max_length=args.max_length, seed=args.seed))

    train = encode(splits.train)
    steps = args.epochs * math.ceil(len(train) / args.batch_size)
    callbacks = [adalora_callback(model, steps)] if method == "adalora" else []
    keep = KeepBest(model) if method in BEST_IN_MEMORY else None
    callbacks += [keep] if keep else []

    def compute_metrics(pred):
        m = classification_metrics(np.asarray(pred.predictions), pred.label_ids, names)
        return {"accuracy": m["accuracy"], "macro_f1": m["macro_f1"]}

    with tempfile.TemporaryDirectory(prefix="lightft-careful-") as out:
        targs = TrainingArguments(
            output_dir=out, num_train_epochs=args.epochs, per_device_train_batch_size=args.batch_size,
            per_device_eval_batch_size=64, learning_rate=lr, lr_scheduler_type="linear",
            warmup_steps=math.ceil(0.06 * steps), weight_decay=0.01, bf16=bf16, use_cpu=not torch.cuda.is_available(),
            eval_strategy="epoch", save_strategy="no" if keep else "epoch", save_only_model=True,
            load_best_model_at_end=not keep,
            metric_for_best_model="accuracy", save_total_limit=2, report_to=[], disable_tqdm=True, seed=args.seed,
            logging_strategy="no", dataloader_num_workers=0,
            remove_unused_columns=False,  # the rows hold only the model's inputs; prefix's wrapped forward hides them
        )
        trainer = Trainer(model=model, args=targs, train_dataset=train, eval_dataset=encode(splits.validation),
                          data_collator=DataCollatorWithPadding(tokenizer), processing_class=tokenizer,
                          compute_metrics=compute_metrics, callbacks=callbacks)
        trainer.remove_callback(PrinterCallback)
        trainer.train()
        if keep:
            keep.restore()
            pattern = getattr(model.peft_config["default"], "rank_pattern", None)
            if method == "adalora" and pattern:  # the final ranks on the best epoch's weights, as lightft tests
                model.base_model.rankallocator.mask_using_rank_pattern(model.base_model.model, pattern)
        validation = trainer.evaluate()
        test = trainer.predict(encode(splits.test)).metrics
        seconds = time.perf_counter() - started
    return {"validation": {"accuracy": validation["eval_accuracy"], "macro_f1": validation["eval_macro_f1"]},
            "test": {"accuracy": test["test_accuracy"], "macro_f1": test["test_macro_f1"]},
            "train_seconds": round(seconds, 1)}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="a dataset lightft reads (directory or file)")
    p.add_argument("--model", default=None, help="encoder directory (default: the installed MiniLM-L6)")
    p.add_argument("--methods", default="lora,full")
    p.add_argument("--limit-train", type=int, default=None)
    p.add_argument("--limit-eval", type=int, default=None)
    p.add_argument("--max-length", type=int, default=256)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--reference-lr", type=float, default=None,
                   help="run the careful script at this one learning rate instead of its grid (for timing)")
    p.add_argument("--out", help="write all figures here as JSON")
    args = p.parse_args(argv)
    model = args.model or str(minilm_path())
    methods = args.methods.split(",")
    unknown = [m for m in methods if m not in REFERENCE_GRID]
    if unknown:
        p.error(f"--methods: no reference script for {unknown}; choose from {sorted(REFERENCE_GRID)}")
    # Both sides under the same precision: lightft's `auto` (bf16 autocast on GPUs and AMX CPUs).
    bf16 = resolve_precision("auto", default_device()) == "bf16"

    splits = prepare_splits(args.data, limit_train=args.limit_train, limit_eval=args.limit_eval, seed=args.seed)
    print(f"data {args.data}: {splits.sizes()}, {len(splits.labels)} classes; max length {args.max_length}, "
          f"{args.epochs} epochs x batch {args.batch_size}, seed {args.seed}, bf16 autocast {bf16}", flush=True)
    rows = []
    with tempfile.TemporaryDirectory(prefix="lightft-defaults-") as tmp:
        data_dir = Path(tmp) / "data"
        write_splits(splits, data_dir)
        for method in methods:
            t0 = time.perf_counter()
            run = lightft.train(model=model, data=str(data_dir), method=method, epochs=args.epochs,
                                batch_size=args.batch_size, max_length=args.max_length, seed=args.seed,
                                baseline=False, quiet=True, output=str(Path(tmp) / f"run-{method}"))
            m = run.metrics
            rows.append({"method": method, "side": "lightft", "lr": run.config.lr,
                         "validation": {k: m["validation"][k] for k in ("accuracy", "macro_f1")},
                         "test": {k: m["eval"][k] for k in ("accuracy", "macro_f1")},
                         "train_seconds": round(time.perf_counter() - t0, 1)})
            print(_line(rows[-1]), flush=True)
            for lr in [args.reference_lr] if args.reference_lr else REFERENCE_GRID[method]:
                try:
                    figures = careful_trainer(model, method, lr, splits, args, bf16)
                except Exception as exc:  # one failing script run must not lose the others
                    print(f"{method:5} careful Trainer + peft   lr {lr:<7g} FAILED: {type(exc).__name__}: "
                          f"{str(exc).splitlines()[0] if str(exc) else ''}", flush=True)
                    continue
                rows.append({"method": method, "side": "careful Trainer + peft", "lr": lr, **figures})
                print(_line(rows[-1]), flush=True)

    verdicts = []
    for method in methods:
        ours = next(r for r in rows if r["method"] == method and r["side"] == "lightft")
        refs = [r for r in rows if r["method"] == method and r["side"] != "lightft"]
        if not refs:
            print(f"{method}: every careful-script run failed; no verdict")
            continue
        ref = max(refs, key=lambda r: r["validation"]["accuracy"])
        diff = 100 * (ours["test"]["accuracy"] - ref["test"]["accuracy"])
        verdicts.append({"method": method, "lightft_lr": ours["lr"], "reference_lr": ref["lr"],
                         "lightft_test_accuracy": ours["test"]["accuracy"],
                         "reference_test_accuracy": ref["test"]["accuracy"], "difference_points": round(diff, 2)})
        print(f"{method}: lightft default lr {ours['lr']:g} test {100 * ours['test']['accuracy']:.2f}% vs careful "
              f"script (lr {ref['lr']:g} picked on validation) {100 * ref['test']['accuracy']:.2f}%: "
              f"{diff:+.2f} points")
    if args.out:
        Path(args.out).write_text(json.dumps({"args": {k: v for k, v in vars(args).items() if k != "out"},
                                              "sizes": splits.sizes(), "bf16": bf16, "rows": rows,
                                              "verdicts": verdicts}, indent=2) + "\n")


def _line(r: dict) -> str:
    v, t = r["validation"], r["test"]
    return (f"{r['method']:5} {r['side']:24} lr {r['lr']:<7g} validation acc {100 * v['accuracy']:6.2f}% "
            f"F1 {100 * v['macro_f1']:6.2f}% | test acc {100 * t['accuracy']:6.2f}% F1 {100 * t['macro_f1']:6.2f}% "
            f"| {r['train_seconds']:.0f} s")


if __name__ == "__main__":
    main()
