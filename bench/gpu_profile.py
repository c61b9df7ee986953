"""Where lightft's LoRA step time goes on a GPU, and how throughput scales with the token budget.

    PYTHONPATH=src python bench/gpu_profile.py --ids .carry/train.json.gz

Prints samples/s for LoRA at batch 32 (dropout 0.1 and 0), a token-budget sweep, full fine-tuning at the
largest budget, and a torch.profiler summary of 5 LoRA steps (GPU busy share, top kernels, top CPU ops).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from bench.lightft_side import lightft_train  # noqa: E402
from bench.workloads import bert_base_cased_model, load_ids  # noqa: E402
from lightft.config import TrainConfig  # noqa: E402
from lightft.data.batching import train_batches  # noqa: E402
from lightft.methods import get_method  # noqa: E402
from lightft.model.forward import Forward  # noqa: E402
from lightft.training.optim import build_optimizer  # noqa: E402


def profile_steps(ids, labels, bs: int, dropout: float, steps: int = 5) -> None:
    device = torch.device("cuda")
    model = get_method("lora").attach(bert_base_cased_model(), TrainConfig(model="x", data="y", dropout=dropout)).to(device)
    model.train()
    fwd = Forward.choose(model, 0, "auto", device)
    opt = build_optimizer(model, 5e-4, 0.01, device)
    collate = fwd.collator()
    batches = train_batches([len(x) for x in ids], bs, seed=0, epoch=0)
    host = [collate([{"input_ids": ids[i], "index": i, "label": labels[i]} for i in b]) for b in batches[: steps + 10]]
    dev = [{k: v.pin_memory().to(device, non_blocking=True) if torch.is_tensor(v) else v for k, v in b.items()} for b in host]

    def step(b):
        with torch.autocast("cuda", dtype=torch.bfloat16):
            logits = fwd.logits(model, b)
        loss = F.cross_entropy(logits.float(), b["labels"])
        loss.backward()
        torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)

    for b in dev[:10]:
        step(b)
    torch.cuda.synchronize()
    t = time.perf_counter()
    for b in dev[10:]:
        step(b)
    torch.cuda.synchronize()
    wall = (time.perf_counter() - t) / steps
    print(f"pure step loop (batches already on GPU): {wall * 1e3:.1f} ms/step = {bs / wall:.0f} samples/s")
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        for b in dev[10:]:
            step(b)
        torch.cuda.synchronize()
    events = prof.key_averages()
    cuda_total = sum(e.self_device_time_total for e in events) / 1e3 / steps
    print(f"GPU kernel time {cuda_total:.1f} ms/step of {wall * 1e3:.1f} ms wall: GPU busy {100 * cuda_total / (wall * 1e3):.0f}%")
    print(events.table(sort_by="self_device_time_total", row_limit=12, max_name_column_width=60))
    print(events.table(sort_by="self_cpu_time_total", row_limit=12, max_name_column_width=60))


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--ids", required=True)
    args = p.parse_args()
    ids, labels = load_ids(args.ids)
    print(torch.cuda.get_device_name(), torch.__version__)
    common = dict(batch_size=32, lr=5e-4, max_steps=60, bf16=True)
    rows = []
    for name, kw in [("lora bs32 dropout0.1", dict(method="lora")),
                     ("lora bs32 dropout0", dict(method="lora", lora_dropout=0.0)),
                     ("lora 16k tokens dropout0", dict(method="lora", lora_dropout=0.0, max_tokens=16384)),
                     ("lora 32k tokens dropout0", dict(method="lora", lora_dropout=0.0, max_tokens=32768)),
                     ("lora 64k tokens dropout0", dict(method="lora", lora_dropout=0.0, max_tokens=65536)),
                     ("full 64k tokens", dict(method="full", max_tokens=65536)),
                     ("full bs32", dict(method="full"))]:
        r = lightft_train(bert_base_cased_model(), ids, labels, **{**common, **kw})
        rows.append(name)
        print(f"{name:28s} {r['samples_per_s']:8.0f} samples/s {r['tokens_per_s']:9.0f} tok/s peak {r['peak_memory_mb']:6.0f} MB "
              f"first step {r['time_to_first_step_s']:.2f} s loss {r['first_loss']} -> {r['last_loss']} ({r['samples']} samples)", flush=True)
    profile_steps(ids, labels, 32, 0.1)


if __name__ == "__main__":
    main()
