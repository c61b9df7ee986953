"""Packed (variable-length) attention on a GPU: torch's ``varlen_attn`` (FlashAttention 2 kernels) against cuDNN's
ragged attention (``aten._cudnn_attention_forward`` with cumulative sequence lengths, the kernel nested-tensor SDPA
uses), forward and forward+backward, on real IMDB review lengths packed into ~32k-token batches, BERT-base heads.

    PYTHONPATH=src python bench/gpu_attention.py --ids .carry/train.json.gz

Prints ms per call for each and the largest differences of output and gradients against the FA2 path. In run 7's
profile, attention was 10.2 of the compiled LoRA step's 44.3 GPU ms (docs/performance.md): this says whether a
faster kernel is there to take.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from bench.workloads import load_ids  # noqa: E402


def timed(fn, reps: int = 20) -> float:
    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(reps):
        fn()
    torch.cuda.synchronize()
    return (time.perf_counter() - start) / reps * 1e3


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--ids", required=True)
    p.add_argument("--tokens", type=int, default=32768)
    args = p.parse_args()
    from torch.nn.attention.varlen import varlen_attn

    ids, _ = load_ids(args.ids)
    lengths, total = [], 0
    for seq in ids:
        if total + len(seq) > args.tokens:
            break
        lengths.append(len(seq))
        total += len(seq)
    heads, dim, device = 12, 64, torch.device("cuda")
    cu = torch.tensor([0] + lengths, device=device).cumsum(0).to(torch.int32)
    longest, scale = max(lengths), dim ** -0.5
    g = torch.Generator(device=device).manual_seed(0)
    q, k, v = (torch.randn(total, heads, dim, device=device, dtype=torch.bfloat16, generator=g).requires_grad_()
               for _ in range(3))
    grad = torch.randn(total, heads, dim, device=device, dtype=torch.bfloat16, generator=g)
    flops = 4 * dim * heads * sum(n * n for n in lengths)  # forward: QK^T and PV
    print(f"{torch.cuda.get_device_name()} torch {torch.__version__} cudnn {torch.backends.cudnn.version()}; "
          f"{len(lengths)} sequences, {total} tokens, longest {longest}; forward {flops / 1e9:.1f} GFLOP")

    def fa2():
        return varlen_attn(q, k, v, cu, cu, longest, longest, scale=scale)

    def cudnn():
        return torch.ops.aten._cudnn_attention_forward(q, k, v, None, cu, cu, longest, longest, True, 0.0, False,
                                                       False, scale=scale)[0]

    try:  # what the ragged cuDNN forward returns (shapes a compile-friendly wrapper's fake kernel must give)
        raw = torch.ops.aten._cudnn_attention_forward(q, k, v, None, cu, cu, longest, longest, True, 0.0, False, False,
                                                      scale=scale)
        print("cuDNN forward returns:", [(tuple(t.shape), t.dtype, tuple(t.stride())) if torch.is_tensor(t) else t
                                         for t in raw])
    except Exception as exc:  # noqa: BLE001
        print(f"cuDNN forward failed: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}")
    results = {}
    for name, fn in [("varlen_attn (FA2)", fa2), ("cuDNN ragged", cudnn)]:
        try:
            out = fn()
            dq, dk, dv = torch.autograd.grad(out, (q, k, v), grad)
            with torch.no_grad():
                fwd = timed(fn)
            both = timed(lambda: torch.autograd.grad(fn(), (q, k, v), grad))
            results[name] = (out.detach(), dq, dk, dv)
            print(f"{name:20s} forward {fwd:6.3f} ms ({flops / fwd / 1e9:5.0f} TFLOP/s)  forward+backward {both:6.3f} ms "
                  f"({3 * flops / both / 1e9:5.0f} TFLOP/s)  out {tuple(out.shape)}", flush=True)
        except Exception as exc:  # noqa: BLE001 - a missing kernel is a result here
            print(f"{name:20s} failed: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}", flush=True)
    if len(results) == 2:
        a, b = results.values()
        for label, x, y in zip(("out", "dq", "dk", "dv"), a, b):
            err = (x.float() - y.float()).abs()
            print(f"  {label}: max |FA2 - cuDNN| {err.max().item():.2e}, mean {err.mean().item():.2e}, "
                  f"mean |FA2| {x.float().abs().mean().item():.2e}")


if __name__ == "__main__":
    main()
