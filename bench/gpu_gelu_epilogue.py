"""BERT's intermediate layer, ``gelu(x @ W.T + b)`` (768 -> 3072), three ways on a GPU: eager (a cuBLAS GEMM, then
a GELU kernel), compiled by inductor (the GEMM, then a fused triton GELU: what ``predict --compile`` runs today),
and one cuBLASLt GEMM with a GELU epilogue (``torch._addmm_activation(..., use_gelu=True)``), which never writes the
pre-activation to memory.

    PYTHONPATH=src python bench/gpu_gelu_epilogue.py [--tokens 131072 32768]

In run 10's compiled inference the separate GELU kernel was 12.7% of the GPU time (64.9 of 508.7 ms per 4,096
reviews, docs/performance.md); this says how much of that an epilogue wins back, and how far its GELU (cuBLASLt's
may be the tanh approximation) is from the exact one BERT uses. Prints ms per call and the largest errors against an
fp32 exact-GELU reference, next to the error that bf16 rounding alone gives.
"""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F


def timed(fn, reps: int = 30) -> float:
    for _ in range(3):
        fn()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    torch.cuda.synchronize()
    start.record()
    for _ in range(reps):
        fn()
    end.record()
    torch.cuda.synchronize()
    return start.elapsed_time(end) / reps


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--tokens", type=int, nargs="+", default=[131072, 32768])
    p.add_argument("--hidden", type=int, default=768)
    p.add_argument("--intermediate", type=int, default=3072)
    args = p.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dtype = torch.bfloat16
    g = torch.Generator(device=device).manual_seed(0)
    w = (torch.randn(args.intermediate, args.hidden, device=device, generator=g) * 0.03).to(dtype)
    b = (torch.randn(args.intermediate, device=device, generator=g) * 0.1).to(dtype)
    print(torch.cuda.get_device_name() if device.type == "cuda" else "cpu", torch.__version__, flush=True)

    def eager(x):
        return F.gelu(F.linear(x, w, b))

    compiled = torch.compile(eager, dynamic=False)

    def epilogue(x):
        return torch._addmm_activation(b, x, w.t(), use_gelu=True)

    for tokens in args.tokens:
        x = torch.randn(tokens, args.hidden, device=device, generator=g).to(dtype)
        exact = F.gelu(F.linear(x.float(), w.float(), b.float()))
        flops = 2 * tokens * args.hidden * args.intermediate
        rounding = (exact.to(dtype).float() - exact).abs().max().item()
        print(f"tokens {tokens}: bf16 rounding of the exact result alone: max error {rounding:.2e}", flush=True)
        for name, fn in [("eager GEMM + GELU", eager), ("inductor GEMM + fused GELU", compiled),
                         ("cuBLASLt GEMM with GELU epilogue", epilogue)]:
            try:
                out = fn(x)
                err = (out.float() - exact).abs()
                ms = timed(lambda: fn(x)) if device.type == "cuda" else float("nan")
                print(f"  {name:34s} {ms:7.3f} ms ({flops / ms / 1e9:5.0f} TFLOP/s)  max error {err.max().item():.2e}, "
                      f"mean {err.mean().item():.2e}", flush=True)
            except Exception as exc:  # noqa: BLE001 - a missing kernel is a result here
                print(f"  {name:34s} failed: {type(exc).__name__}: {str(exc).splitlines()[0][:160]}", flush=True)
        if device.type == "cuda":
            gemm = timed(lambda: F.linear(x, w, b))
            print(f"  {'GEMM + bias alone':34s} {gemm:7.3f} ms ({flops / gemm / 1e9:5.0f} TFLOP/s)", flush=True)


if __name__ == "__main__":
    main()
