"""Reference side of lightft's speed benchmarks: the transformers ``Trainer`` + peft pipeline a careful user writes.

``trainer_peft_train`` fine-tunes with ``peft.get_peft_model`` (LoRA) or all weights (full) through a stock
``transformers.Trainer`` with ``DataCollatorWithPadding`` (dynamic padding, random batches), and measures it.
``pipeline_infer`` is the plain padded inference loop. Both take pre-tokenised id sequences (special tokens
included), so the reference and lightft are fed exactly the same tokens. Both run on CUDA when available
(``bf16=True`` means autocast to bfloat16 with float32 weights, as ``TrainingArguments(bf16=True)`` does), else on
CPU in float32.

Run the MiniLM sanity workload with ``python -m bench.reference`` (``--help`` for the options).
"""

from __future__ import annotations

import math
import tempfile
import time
from collections.abc import Sequence

import torch

_METHODS = ("lora", "full")


def _device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _truncate(ids: Sequence[int], max_length: int) -> list[int]:
    """Cut to ``max_length`` keeping the final special token ([SEP]), as the tokenizer's truncation does."""
    ids = list(ids)
    return ids if len(ids) <= max_length else ids[: max_length - 1] + ids[-1:]


def _default_tokenizer(tokenizer):
    # Only padding is asked of it: [PAD] = 0 in both the MiniLM (uncased) and BERT-base-cased vocabularies.
    if tokenizer is not None:
        return tokenizer
    from bench.workloads import minilm_tokenizer

    return minilm_tokenizer()


def _reset_peak_memory(device: torch.device) -> None:
    """The same reset lightft's side gets (CPU: Linux's peak RSS, reset through /proc/self/clear_refs)."""
    from lightft.runtime import reset_peak_memory

    if device.type == "cuda":
        torch.cuda.synchronize()
    reset_peak_memory(device)


def _peak_memory(device: torch.device) -> tuple[float, str]:
    """Peak memory in MiB since the last reset, and what it measures."""
    from lightft.runtime import peak_memory_mb

    return peak_memory_mb(device), "cuda_max_memory_allocated" if device.type == "cuda" else "process_peak_rss"


def _count_params(model) -> tuple[int, int]:
    params = list(model.parameters())
    return sum(p.numel() for p in params if p.requires_grad), sum(p.numel() for p in params)


def _validate(method, tokenized_inputs, labels, batch_size, max_steps, max_length) -> None:
    problems = []
    if method not in _METHODS:
        problems.append(f"method must be one of {_METHODS}, got {method!r}")
    if len(tokenized_inputs) != len(labels):
        problems.append(f"tokenized_inputs and labels differ in length: {len(tokenized_inputs)} vs {len(labels)}")
    if batch_size < 1 or len(tokenized_inputs) < batch_size:
        problems.append(f"need 1 <= batch_size <= number of inputs; got batch_size={batch_size} "
                        f"for {len(tokenized_inputs)} inputs (last partial batches are dropped)")
    if max_steps < 1:
        problems.append(f"max_steps must be >= 1, got {max_steps}")
    if max_length < 2:
        problems.append(f"max_length must be >= 2, got {max_length}")
    if problems:
        raise ValueError("trainer_peft_train: " + "; ".join(problems))


def trainer_peft_train(
    model,
    tokenized_inputs: Sequence[Sequence[int]],
    labels: Sequence[int],
    *,
    method: str = "lora",
    lora_r: int = 8,
    lora_alpha: int = 16,
    lora_dropout: float = 0.1,
    targets: Sequence[str] = ("query", "value"),
    batch_size: int,
    lr: float,
    max_steps: int,
    warmup_ratio: float = 0.06,
    weight_decay: float = 0.01,
    bf16: bool = False,
    compile: bool = False,
    seed: int = 0,
    max_length: int = 512,
    logging_steps: int = 1,
    skip_steps: int | None = None,
    tokenizer=None,
) -> dict:
    """Fine-tune ``model`` for ``max_steps`` steps with a stock Trainer (+ peft LoRA) and measure the run.

    ``method="lora"`` wraps the model in place with ``get_peft_model(model, LoraConfig(task_type="SEQ_CLS",
    r=lora_r, lora_alpha=lora_alpha, lora_dropout=lora_dropout, target_modules=targets))`` (the classifier head
    trains too, as peft does for SEQ_CLS); ``"full"`` trains every weight. Pass a fresh model to each call.

    ``tokenized_inputs`` are id sequences with special tokens; longer ones are cut to ``max_length``.
    ``tokenizer`` is only used by ``DataCollatorWithPadding`` to pad (default: the MiniLM tokenizer, [PAD]=0).
    Batches are drawn at random (the Trainer's seeded sampler), padded to the longest in the batch; the last
    partial batch of an epoch is dropped so that every step sees exactly ``batch_size`` samples.

    Timing: a callback stamps ``on_step_begin``/``on_step_end`` (after ``torch.cuda.synchronize()`` on CUDA).
    Steady-state throughput is measured from the end of step ``skip_steps`` to the end of the last step, so it
    includes everything the Trainer does between steps (data loading, collation, logging); the first
    ``skip_steps`` steps (default ``min(5, max(1, max_steps // 4))``, 0 when ``max_steps == 1``) are warm-up.

    Returns a dict: ``samples_per_s``, ``tokens_per_s`` (non-pad tokens), ``steady_steps``, ``mean_step_s``
    (mean begin->end time of a steady step: forward, backward, optimizer), ``time_to_first_step_s`` (Trainer
    construction to the end of step 1, so including model placement and any compilation), ``total_s``
    (Trainer construction to the end of ``train()``), ``peak_memory_mb`` and ``peak_memory_kind``, ``first_loss``,
    ``last_loss`` and ``losses`` (the Trainer's logged training losses), ``trainable_params``, ``total_params``,
    ``device``.
    """
    import transformers
    from transformers import DataCollatorWithPadding, PrinterCallback, Trainer, TrainerCallback, TrainingArguments

    _validate(method, tokenized_inputs, labels, batch_size, max_steps, max_length)
    if skip_steps is None:
        skip_steps = 0 if max_steps == 1 else min(5, max(1, max_steps // 4))
    if not 0 <= skip_steps < max_steps:
        raise ValueError(f"skip_steps must be in 0..{max_steps - 1} for max_steps={max_steps}, got {skip_steps}")
    tokenizer = _default_tokenizer(tokenizer)
    device = _device()

    transformers.set_seed(seed)  # LoRA's A matrices are drawn from the global RNG
    if method == "lora":
        from peft import LoraConfig, get_peft_model

        model = get_peft_model(model, LoraConfig(
            task_type="SEQ_CLS", r=lora_r, lora_alpha=lora_alpha, lora_dropout=lora_dropout,
            target_modules=list(targets),
        ))
    trainable_params, total_params = _count_params(model)

    ids = [_truncate(seq, max_length) for seq in tokenized_inputs]
    # A list of feature dicts is what Trainer + DataCollatorWithPadding take (no `datasets` needed on the GPU box).
    dataset = [{"input_ids": seq, "attention_mask": [1] * len(seq), "labels": int(y)} for seq, y in zip(ids, labels)]

    class StepTimer(TrainerCallback):
        def __init__(self):
            self.begin, self.end, self.tokens = [], [], []

        @staticmethod
        def now() -> float:
            if device.type == "cuda":
                torch.cuda.synchronize()
            return time.perf_counter()

        def on_step_begin(self, args, state, control, **kwargs):
            self.begin.append(self.now())

        def on_step_end(self, args, state, control, **kwargs):
            self.end.append(self.now())
            self.tokens.append(state.num_input_tokens_seen)

    timer = StepTimer()
    with tempfile.TemporaryDirectory(prefix="lightft-ref-") as output_dir:
        args = TrainingArguments(
            output_dir=output_dir,
            per_device_train_batch_size=batch_size,
            learning_rate=lr,
            max_steps=max_steps,
            lr_scheduler_type="linear",
            warmup_steps=math.ceil(warmup_ratio * max_steps),  # transformers 5 folded warmup_ratio into this
            weight_decay=weight_decay,
            bf16=bf16,
            use_cpu=device.type == "cpu",
            torch_compile=compile,
            logging_steps=logging_steps,
            report_to=[],
            save_strategy="no",
            eval_strategy="no",
            dataloader_num_workers=0,
            dataloader_drop_last=True,
            include_num_input_tokens_seen="non_padding",
            disable_tqdm=True,
            seed=seed,
        )
        _reset_peak_memory(device)
        t0 = time.perf_counter()
        trainer = Trainer(
            model=model,
            args=args,
            train_dataset=dataset,
            data_collator=DataCollatorWithPadding(tokenizer),
            processing_class=tokenizer,
            callbacks=[timer],
        )
        trainer.remove_callback(PrinterCallback)  # keep stdout quiet; logs stay in trainer.state.log_history
        trainer.train()
        total_s = timer.now() - t0
    peak_memory_mb, peak_memory_kind = _peak_memory(device)

    start = timer.end[skip_steps - 1] if skip_steps else timer.begin[0]
    tokens_before = timer.tokens[skip_steps - 1] if skip_steps else 0
    steady_steps = len(timer.end) - skip_steps
    window_s = timer.end[-1] - start
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    return {
        "samples_per_s": steady_steps * batch_size / window_s,
        "tokens_per_s": (timer.tokens[-1] - tokens_before) / window_s,
        "steady_steps": steady_steps,
        "mean_step_s": sum(e - b for b, e in zip(timer.begin[skip_steps:], timer.end[skip_steps:])) / steady_steps,
        "time_to_first_step_s": timer.end[0] - t0,
        "total_s": total_s,
        "peak_memory_mb": peak_memory_mb,
        "peak_memory_kind": peak_memory_kind,
        "first_loss": losses[0] if losses else float("nan"),
        "last_loss": losses[-1] if losses else float("nan"),
        "losses": losses,
        "trainable_params": trainable_params,
        "total_params": total_params,
        "device": str(device),
    }


def pipeline_infer(
    model,
    tokenized_inputs: Sequence[Sequence[int]],
    *,
    batch_size: int,
    bf16: bool = False,
    max_length: int = 512,
    skip_batches: int = 1,
    tokenizer=None,
) -> dict:
    """Reference inference: the plain loop a user writes, batches in input order padded to their longest.

    ``model.eval()`` on the device, ``torch.inference_mode()``, bfloat16 autocast when ``bf16``, logits copied
    to the CPU after each batch. The first ``skip_batches`` batches are warm-up and not timed (when there are
    more batches than that). ``tokenizer`` only pads (default: the MiniLM tokenizer, [PAD]=0).

    Returns ``samples_per_s``, ``tokens_per_s`` (non-pad tokens), ``peak_memory_mb``, ``peak_memory_kind``,
    ``device`` and ``logits`` (a float32 CPU tensor ``(len(tokenized_inputs), num_labels)`` in input order).
    """
    if batch_size < 1 or not tokenized_inputs:
        raise ValueError(f"need batch_size >= 1 and at least one input; got batch_size={batch_size}, "
                         f"{len(tokenized_inputs)} inputs")
    tokenizer = _default_tokenizer(tokenizer)
    device = _device()
    model.to(device).eval()
    ids = [_truncate(seq, max_length) for seq in tokenized_inputs]
    chunks = [ids[i: i + batch_size] for i in range(0, len(ids), batch_size)]
    skip = skip_batches if len(chunks) > skip_batches else 0

    _reset_peak_memory(device)
    logits, timed_s, timed_samples, timed_tokens = [], 0.0, 0, 0
    with torch.inference_mode(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
        for i, chunk in enumerate(chunks):
            t = time.perf_counter()
            batch = tokenizer.pad({"input_ids": chunk}, padding=True, return_tensors="pt")
            batch = {k: v.to(device) for k, v in batch.items()}
            logits.append(model(**batch).logits.float().cpu())  # .cpu() waits for the GPU
            if i >= skip:
                timed_s += time.perf_counter() - t
                timed_samples += len(chunk)
                timed_tokens += sum(len(seq) for seq in chunk)
    peak_memory_mb, peak_memory_kind = _peak_memory(device)
    return {
        "samples_per_s": timed_samples / timed_s,
        "tokens_per_s": timed_tokens / timed_s,
        "peak_memory_mb": peak_memory_mb,
        "peak_memory_kind": peak_memory_kind,
        "device": str(device),
        "logits": torch.cat(logits),
    }


def main(argv: list[str] | None = None) -> None:
    """Sanity run: the reference pipeline on IMDB train reviews, printed as one line of numbers."""
    import argparse

    from bench import workloads

    p = argparse.ArgumentParser(prog="python -m bench.reference", description=main.__doc__)
    p.add_argument("--model", choices=("minilm", "bert-base-cased"), default="minilm")
    p.add_argument("--method", choices=_METHODS, default="lora")
    p.add_argument("--n", type=int, default=64, help="IMDB train reviews (seeded subset)")
    p.add_argument("--max-length", type=int, default=256)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--steps", type=int, default=4)
    p.add_argument("--lr", type=float, default=5e-4)
    p.add_argument("--bf16", action="store_true")
    p.add_argument("--compile", action="store_true")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)

    texts, labels = workloads.load_imdb("train", a.n, a.seed)
    if a.model == "minilm":
        model = workloads.minilm_model(seed=a.seed)
        ids = workloads.encode(texts, workloads.minilm_tokenizer(), a.max_length)
    else:
        model = workloads.bert_base_cased_model(seed=a.seed)
        ids = workloads.bert_base_cased_encode(texts, a.max_length)
    r = trainer_peft_train(model, ids, labels, method=a.method, batch_size=a.batch_size, lr=a.lr, max_steps=a.steps,
                           bf16=a.bf16, compile=a.compile, seed=a.seed, max_length=a.max_length)
    print(f"{a.model} {a.method} on {r['device']}: {r['samples_per_s']:.2f} samples/s, "
          f"{r['tokens_per_s']:.0f} tokens/s over {r['steady_steps']} steady steps; "
          f"first step after {r['time_to_first_step_s']:.2f}s, total {r['total_s']:.2f}s; "
          f"peak {r['peak_memory_mb']:.0f} MiB ({r['peak_memory_kind']}); "
          f"loss {r['first_loss']:.4f} -> {r['last_loss']:.4f}; "
          f"trainable {r['trainable_params']:,}/{r['total_params']:,} params")


if __name__ == "__main__":
    main()
