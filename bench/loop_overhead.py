"""Host time per step that lightft's training loop (``fit``) adds to the step itself, on a model too small for
its math to matter: a 1-layer, 32-wide BERT, 32 rows of 5-13 tokens per batch, one CPU thread. On a GPU whose
step is host-bound (a 32-row BERT-base step under CUDA graphs, docs/performance.md "Runs 14-15") every
millisecond the loop spends around the step is a millisecond of the step.

    PYTHONPATH=src python bench/loop_overhead.py [--method lora] [--steps 400] [--repeats 3]
    PYTHONPATH=src python bench/loop_overhead.py --parts 2000 --layers 12
    PYTHONPATH=src python bench/loop_overhead.py --adamw 50

Each repeat trains ``--steps`` batches through ``fit`` (``bench/lightft_side.lightft_train``: accelerate, the
batch plan, progress bar, loss logging) and then the same batches through a bare loop (collate, forward, loss,
backward, clipping, AdamW, zero_grad), and prints both times per step and the difference; the last line gives
the medians. Whole-run times drift by a few tenths of a millisecond from run to run on a shared 2-core machine, so
``--parts`` also times the pieces the loop changed, interleaved over many calls on the same model and gradients:
accelerate's optimizer wrapper against the torch optimizer it wraps (step and zero_grad), and accelerate's clipping
over every parameter against the trained ones only.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from bench.lightft_side import lightft_train  # noqa: E402
from lightft.config import TrainConfig  # noqa: E402
from lightft.data.batching import train_batches  # noqa: E402
from lightft.methods import get_method  # noqa: E402
from lightft.model.forward import Forward  # noqa: E402
from lightft.training.optim import build_optimizer  # noqa: E402

BATCH = 32


LAYERS = 1  # --layers: 12 gives BERT-base's count of tensors (what the optimizer and clipping walk), 32 wide


def tiny_model():
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    return BertForSequenceClassification(BertConfig(vocab_size=1000, hidden_size=32, num_hidden_layers=LAYERS,
                                                    num_attention_heads=2, intermediate_size=64))


def workload(steps: int) -> tuple[list[list[int]], list[int]]:
    rng = random.Random(0)
    n = steps * BATCH
    ids = [[101] + [rng.randrange(1000) for _ in range(rng.randrange(4, 12))] + [102] for _ in range(n)]
    return ids, [rng.randrange(2) for _ in range(n)]


def fit_ms(method: str, ids, labels, steps: int) -> float:
    r = lightft_train(tiny_model(), ids, labels, method=method, batch_size=BATCH, lr=1e-3, max_steps=steps, bf16=False)
    return 1e3 * BATCH / r["samples_per_s"]  # steady rate: after the first step


def bare_ms(method: str, ids, labels) -> float:
    device = torch.device("cpu")
    cfg = TrainConfig(model="x", data="y", method=method, rank=8, alpha=16, dropout=0.1)
    torch.manual_seed(0)
    model = get_method(method).attach(tiny_model(), cfg)
    model.train()
    forward = Forward.choose(model, 0, "auto", device, compile=False, max_length=512)
    optimizer = build_optimizer(model, 1e-3, 0.01, device)
    trained = [p for p in model.parameters() if p.requires_grad]
    collate = forward.collator()
    plan = train_batches([len(x) for x in ids], BATCH, seed=0, epoch=0)
    start = None
    for i, rows in enumerate(plan):
        if i == 1:
            start = time.perf_counter()  # after the first step, as fit's steady rate
        batch = collate([{"input_ids": ids[j], "index": j, "label": labels[j]} for j in rows])
        loss = F.cross_entropy(forward.logits(model, batch).float(), batch["labels"])
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trained, 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    return 1e3 * (time.perf_counter() - start) / (len(plan) - 1)


def parts(method: str, calls: int) -> None:
    """Per-call host time of the pieces ``fit`` changed in session 17, interleaved (A, B, A, B, ...)."""
    from lightft.runtime import make_accelerator

    device = torch.device("cpu")
    cfg = TrainConfig(model="x", data="y", method=method, rank=8, alpha=16, dropout=0.1)
    model = get_method(method).attach(tiny_model(), cfg)
    accelerator = make_accelerator(device, "fp32")
    model, wrapped = accelerator.prepare(model, build_optimizer(model, 1e-3, 0.01, device))
    trained = [p for p in model.parameters() if p.requires_grad]

    def give_gradients():
        for p in trained:
            p.grad = torch.full_like(p, 1e-3)

    def wrapper_step():
        wrapped.step()
        wrapped.zero_grad(set_to_none=True)

    def torch_step():
        wrapped.optimizer.step()
        wrapped.optimizer.zero_grad(set_to_none=True)

    pieces = {
        "optimizer step + zero_grad through accelerate's wrapper": wrapper_step,
        "optimizer step + zero_grad on the torch optimizer": torch_step,
        "accelerate clip_grad_norm_(model.parameters())": lambda: accelerator.clip_grad_norm_(model.parameters(), 1.0),
        "accelerate clip_grad_norm_(trained tensors)": lambda: accelerator.clip_grad_norm_(trained, 1.0),
    }
    spent = dict.fromkeys(pieces, 0.0)
    for _ in range(calls):
        for name, piece in pieces.items():
            give_gradients()
            start = time.perf_counter()
            piece()
            spent[name] += time.perf_counter() - start
    for name, seconds in spent.items():
        print(f"{name}: {1e3 * seconds / calls:.3f} ms/call ({calls} calls)")


def adamw(steps: int) -> None:
    """One AdamW step over MiniLM-L6's trained tensors (LoRA r=8 on query/value with the head, and full), each of
    torch's implementations on this CPU: the per-tensor loop (torch's default on CPU), foreach, and fused (what
    ``training/optim.build_optimizer`` takes on CPU and CUDA since session 17)."""
    from bench.workloads import minilm_model

    for method in ("lora", "full"):
        cfg = TrainConfig(model="x", data="y", method=method, rank=8, alpha=16, dropout=0.1)
        model = get_method(method).attach(minilm_model(), cfg)
        trained = [p for p in model.parameters() if p.requires_grad]
        for kind, flags in (("per-tensor loop", {"foreach": False}), ("foreach", {"foreach": True}),
                            ("fused", {"fused": True})):
            optimizer = torch.optim.AdamW(trained, lr=1e-5, **flags)
            for p in trained:
                p.grad = torch.full_like(p, 1e-3)
            for _ in range(3):
                optimizer.step()
            start = time.perf_counter()
            for _ in range(steps):
                optimizer.step()
            print(f"MiniLM-L6 {method} ({len(trained)} tensors, {sum(p.numel() for p in trained):,} numbers), "
                  f"{torch.get_num_threads()} thread(s), AdamW {kind}: "
                  f"{1e3 * (time.perf_counter() - start) / steps:.2f} ms/step", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--method", default="lora")
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--layers", type=int, default=1, help="encoder layers of the 32-wide model (BERT-base: 12)")
    parser.add_argument("--parts", type=int, default=0, metavar="CALLS",
                        help="only time the changed pieces, interleaved over CALLS calls each")
    parser.add_argument("--adamw", type=int, default=0, metavar="STEPS",
                        help="only time AdamW's implementations over MiniLM-L6's trained tensors, on every core")
    args = parser.parse_args()
    global LAYERS
    LAYERS = args.layers
    if args.adamw:
        return adamw(args.adamw)
    torch.set_num_threads(1)
    if args.parts:
        return parts(args.method, args.parts)
    ids, labels = workload(args.steps)
    fits, bares = [], []
    for repeat in range(args.repeats):
        fits.append(fit_ms(args.method, ids, labels, args.steps))
        bares.append(bare_ms(args.method, ids, labels))
        print(f"[{repeat + 1}] fit {fits[-1]:.2f} ms/step, bare loop {bares[-1]:.2f} ms/step, "
              f"fit adds {fits[-1] - bares[-1]:.2f} ms/step", flush=True)
    print(f"{args.method}, {args.layers} layer(s), {args.steps} steps of {BATCH} rows, median of {args.repeats}: fit "
          f"{statistics.median(fits):.2f} ms/step, bare loop {statistics.median(bares):.2f} ms/step, fit adds "
          f"{statistics.median(f - b for f, b in zip(fits, bares)):.2f} ms/step")


if __name__ == "__main__":
    main()
