"""Where a CPU LoRA step spends its time: MiniLM-L6 + peft LoRA (r=8, query/value, dropout 0.1), one padded batch.

    PYTHONPATH=src python bench/cpu_profile.py              # ms/step of each set-up, then the top ops
    PYTHONPATH=src python bench/cpu_profile.py --rows 16 --length 206 --top 12

Set-ups, each on the same batch of random token ids, forward + backward + AdamW:
  stock fp32            what Trainer + peft runs on CPU by default
  stock bf16            + bf16 autocast (TrainingArguments(bf16=True))
  lightft fp32          + lightft's fast dropout masks and attention (model/fast_dropout.py)
  lightft bf16          + bf16 autocast with frozen linear weights stored in bf16 (lightft's default on AMX CPUs)
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import torch  # noqa: E402


def build(fast: bool, bf16: bool):
    from peft import LoraConfig, get_peft_model

    from bench.workloads import minilm_model
    from lightft.model.fast_dropout import install_fast_dropout
    from lightft.runtime import store_frozen_in_bf16

    model = get_peft_model(minilm_model(), LoraConfig(r=8, lora_alpha=16, lora_dropout=0.1, task_type="SEQ_CLS",
                                                      target_modules=["query", "value"])).train()
    if fast:
        install_fast_dropout(model)
        store_frozen_in_bf16(model, "bf16" if bf16 else "fp32", torch.device("cpu"))
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    return model, opt


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", type=int, default=16)
    p.add_argument("--length", type=int, default=206, help="Tokens per row (206 = the mean of workload (a)).")
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--top", type=int, default=10, help="Ops to list per set-up in the profile.")
    args = p.parse_args(argv)
    torch.manual_seed(0)
    x = torch.randint(1000, 20000, (args.rows, args.length))
    y = torch.randint(0, 2, (args.rows,))
    mask = torch.ones_like(x)
    print(f"CPU {torch.backends.cpu.get_cpu_capability()}, {torch.get_num_threads()} threads, torch {torch.__version__}; "
          f"batch {args.rows} x {args.length} tokens")
    for name, fast, bf16 in (("stock fp32", False, False), ("stock bf16", False, True),
                             ("lightft fp32", True, False), ("lightft bf16", True, True)):
        model, opt = build(fast, bf16)

        def step():
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                loss = model(input_ids=x, attention_mask=mask, labels=y).loss
            loss.backward()
            opt.step()
            opt.zero_grad()

        for _ in range(2):
            step()
        start = time.perf_counter()
        for _ in range(args.steps):
            step()
        ms = (time.perf_counter() - start) / args.steps * 1000
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
            step()
        events = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
        total = sum(e.self_cpu_time_total for e in events)
        top = ", ".join(f"{e.key} {100 * e.self_cpu_time_total / total:.0f}%" for e in events[: args.top])
        print(f"{name:13s} {ms:7.0f} ms/step  {args.rows / ms * 1000:6.1f} samples/s   top ops (self CPU): {top}", flush=True)


if __name__ == "__main__":
    main()
