"""Where a training step's time goes on a GPU: time to first step with its compile breakdown, steady step time,
and a torch.profiler breakdown of the GPU kernels by kind (matmuls, attention, fused elementwise, ...), with the
model FLOP rate and MFU.

    PYTHONPATH=src python bench/gpu_profile.py --ids .carry/train.json.gz \\
        --ttfs lora:32768:default --profile lora:32768:default --profile full:32768:default
    PYTHONPATH=src python bench/gpu_profile.py --ids .carry/train.json.gz --sweep   # run 1's sweep (docs/performance.md)

A set-up is ``METHOD:MAX_TOKENS:COMPILE[:dropout0]`` (COMPILE ``eager`` or a compile spec, ``default`` being
``--compile``; MAX_TOKENS ``0`` for 32-row batches; ``:bucket`` pads batches to bucket sizes as ``--compile`` did
before run 7). ``--ttfs`` runs the product loop (``fit``) over the workload
once and prints its time to first step, its samples/s over the second half and torch's compile-time metrics; run it
in a second process on the same machine to see the time to first step with inductor's on-disk caches warm.
``--profile`` runs a bare step loop (the product's forward, loss, backward, clipping and fused AdamW, batches
already on the device), times ``--timed`` steps after ``--warm`` warm-up steps, then profiles ``--profiled`` steps.
``--infer TOKENS:COMPILE`` does the same for inference as ``lightft predict`` runs it. ``--tiny`` swaps in a
2-layer BERT (smoke test on a CPU).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import defaultdict
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
from lightft.model.gelu_epilogue import fuse_gelu_epilogue  # noqa: E402
from lightft.runtime import store_frozen_in_bf16  # noqa: E402
from lightft.training.optim import build_optimizer  # noqa: E402

LR = {"lora": 5e-4, "full": 5e-5}
PEAK_TFLOPS = {"H100": 989.0, "H200": 989.0, "A100": 312.0}  # dense bf16, SXM
# kernel name fragments -> kind, first match wins (names from cuBLAS/CUTLASS, flash attention, inductor, ATen)
KINDS = [  # attention first: flash kernels' names mention cutlass types
    ("attention", ("flash", "fmha", "attn")),
    ("matmul", ("gemm", "nvjet", "cutlass", "xmma", "cublas", "sm90_", "sm80_", "splitk")),
    ("optimizer", ("adam", "multi_tensor", "foreach")),
    ("fused by inductor (triton)", ("triton",)),
    ("norm", ("layer_norm", "layernorm")),
    ("dropout / random", ("fused_dropout", "bernoulli", "philox", "uniform")),
    ("copy / cast", ("copy", "cast", "to_copy")),
    ("reduce", ("reduce",)),
    ("elementwise (ATen)", ("elementwise", "vectorized", "unrolled")),
]


class Setup:
    def __init__(self, spec: str):
        parts = spec.split(":")
        self.method, tokens, self.compile = parts[0], int(parts[1]), parts[2]
        if self.compile.startswith("model") and len(parts) > 3 and parts[3] not in ("dropout0", "nodrop", "bucket"):
            self.compile, parts = f"{parts[2]}:{parts[3]}", parts[:3] + parts[4:]
        self.max_tokens = tokens or None
        self.dropout = 0.0 if "dropout0" in parts[3:] else 0.1
        self.no_dropout = "nodrop" in parts[3:]  # every dropout off (the model's too): what dropout costs
        self.bucket = "bucket" in parts[3:]  # pad batches to bucket sizes, as --compile did before run 7
        self.spec = spec

    @property
    def compile_arg(self):
        return False if self.compile == "eager" else self.compile


def kind_of(name: str) -> str:
    low = name.lower()
    return next((kind for kind, keys in KINDS if any(k in low for k in keys)), "other")


def make_model(tiny: bool):
    if not tiny:
        return bert_base_cased_model()
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    return BertForSequenceClassification(BertConfig(vocab_size=29000, hidden_size=64, num_hidden_layers=2,
                                                    num_attention_heads=4, intermediate_size=128))


def flops_per_step(model, batches_lengths: list[list[int]], passes: int) -> float:
    """Model FLOPs of one step (mean over the batches): 2 x linear weights x tokens for the forward, as much again
    for the activation gradients, and again for the weight gradients (full fine-tuning): ``passes`` 1 (inference),
    2 (LoRA and the like) or 3 (full); attention 4 x d x sum(len^2) per layer forward, twice that backward."""
    linear = sum(m.weight.numel() for n, m in model.named_modules()
                 if isinstance(m, torch.nn.Linear) and ".layer." in n and "lora_" not in n)
    config = getattr(model, "config", None) or model.get_base_model().config
    total = 0.0
    for lengths in batches_lengths:
        tokens = sum(lengths)
        attention = 4 * config.hidden_size * sum(n * n for n in lengths) * config.num_hidden_layers
        total += 2 * linear * tokens * passes + attention * (1 if passes == 1 else 3)
    return total / len(batches_lengths)


def ttfs(setup: Setup, ids, labels, tiny: bool, cprofile: str | None = None) -> None:
    """The product loop once over the workload: time to first step (model to device, first compile) and speed.
    With ``cprofile``, the run goes under cProfile (saved there; the 30 functions with the most cumulative time are
    printed): where the compile's seconds go, waits on inductor's compile workers included."""
    import torch._dynamo.utils as dutils
    import torch._inductor.config as inductor_config

    print(f"[ttfs {setup.spec}] inductor compile_threads {inductor_config.compile_threads}, worker start "
          f"{getattr(inductor_config, 'worker_start_method', '?')}, static CUDA launcher "
          f"{getattr(inductor_config, 'use_static_cuda_launcher', '?')}, cache "
          f"{os.environ.get('TORCHINDUCTOR_CACHE_DIR', 'default')}", flush=True)
    profiler = None
    if cprofile:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    start = time.perf_counter()
    r = lightft_train(make_model(tiny), ids, labels, method=setup.method, batch_size=32, lr=LR[setup.method],
                      max_steps=len(ids) // 32, lora_dropout=setup.dropout, max_tokens=setup.max_tokens,
                      compile=setup.compile_arg, max_length=512)
    if profiler is not None:
        import pstats

        profiler.disable()
        profiler.dump_stats(cprofile)
        stats = pstats.Stats(profiler)
        stats.sort_stats("cumulative").print_stats(40)
        stats.sort_stats("tottime").print_stats(20)
    late = r["late_samples_per_s"]
    print(f"[ttfs {setup.spec}] first step {r['time_to_first_step_s']:.2f} s, whole run {time.perf_counter() - start:.1f} s "
          f"for {r['samples']} samples, second half {late and round(late):} samples/s, peak {r['peak_memory_mb']:.0f} MB, "
          f"loss {r['first_loss']} -> {r['last_loss']}" + ("  COMPILE FAILED" if r["compile_failed"] else ""), flush=True)
    if setup.compile != "eager":
        metrics = dutils.compile_times(repr="str", aggregate=True)
        print("\n".join(line for line in metrics.splitlines() if line.strip()), flush=True)


def profile(setup: Setup, ids, labels, *, tiny: bool, warm: int, timed: int, profiled: int) -> None:
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    cfg = TrainConfig(model="x", data="y", method=setup.method, rank=8, alpha=16, dropout=setup.dropout)
    torch.manual_seed(0)
    model = get_method(setup.method).attach(make_model(tiny), cfg).to(device)
    model.train()
    if setup.no_dropout:
        for m in model.modules():
            if isinstance(m, torch.nn.Dropout):
                m.p = 0.0
    store_frozen_in_bf16(model, "bf16", device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    fwd = Forward.choose(model, 0, "auto", device, compile=setup.compile_arg, max_length=512)
    opt = build_optimizer(model, LR[setup.method], 0.01, device)
    trained = [p for p in model.parameters() if p.requires_grad]
    collate = fwd.collator()
    collate.bucket = collate.bucket or setup.bucket
    plan = train_batches([len(x) for x in ids], 32, seed=0, epoch=0, max_tokens=setup.max_tokens,
                         width=getattr(collate, "width", None))
    need = warm + timed + profiled
    plan = (plan * (need // len(plan) + 1))[:need]
    host = [collate([{"input_ids": list(ids[i]), "index": i, "label": labels[i]} for i in b]) for b in plan]
    dev = [{k: v.pin_memory().to(device, non_blocking=True) if torch.is_tensor(v) and device.type == "cuda"
            else v for k, v in b.items()} for b in host]

    losses = []

    def step(b):
        with torch.autocast(device.type, dtype=torch.bfloat16):
            logits = fwd.logits(model, b)
        loss = F.cross_entropy(logits.float(), b["labels"])
        loss.backward()
        losses.append(loss.detach())
        torch.nn.utils.clip_grad_norm_(trained, 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()

    t0 = time.perf_counter()
    for b in dev[:warm]:
        step(b)
    sync()
    warm_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    for b in dev[warm:warm + timed]:
        step(b)
    sync()
    wall = (time.perf_counter() - t0) / timed
    rows = sum(len(b) for b in plan[warm:warm + timed]) / timed
    tokens = sum(len(ids[i]) for b in plan[warm:warm + timed] for i in b) / timed
    flops = flops_per_step(model, [[len(ids[i]) for i in b] for b in plan[warm:warm + timed]], 3 if setup.method == "full" else 2)
    print(f"[profile {setup.spec}] warm-up {warm} steps {warm_s:.1f} s; {wall * 1e3:.1f} ms/step, {rows:.0f} rows "
          f"and {tokens:.0f} real tokens/step = {rows / wall:.0f} samples/s, {tokens / wall:.0f} tokens/s; "
          f"{rate(flops / wall, device)}", flush=True)
    first, last = [f"{x:.4f}" for x in torch.stack(losses[:4]).tolist()], torch.stack(losses[-10:]).mean().item()
    peak = f"; peak {torch.cuda.max_memory_allocated() / 2**20:.0f} MB" if device.type == "cuda" else ""
    print(f"[profile {setup.spec}] losses: first steps {' '.join(first)}, mean of the last 10 {last:.4f}{peak}",
          flush=True)

    def run():
        for b in dev[warm + timed:]:
            step(b)

    profile_kernels(f"profile {setup.spec}", run, profiled, device)


def rate(flops_per_second: float, device: torch.device) -> str:
    """``model N TFLOP/s, MFU M% of PEAK`` (MFU where the GPU's dense bf16 peak is known)."""
    name = torch.cuda.get_device_name() if device.type == "cuda" else "cpu"
    peak = next((v for k, v in PEAK_TFLOPS.items() if k in name), None)
    mfu = f", MFU {100 * flops_per_second / 1e12 / peak:.0f}% of {peak:.0f}" if peak else ""
    return f"model {flops_per_second / 1e12:.0f} TFLOP/s{mfu}"


def profile_kernels(label: str, run, units: int, device: torch.device) -> None:
    """``run()`` (``units`` steps or passes) under torch.profiler; prints the GPU kernel time by kind."""
    from torch.autograd import DeviceType
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with torch_profile(activities=activities) as prof:
        t0 = time.perf_counter()
        run()
        if device.type == "cuda":
            torch.cuda.synchronize()
        wall = (time.perf_counter() - t0) / units
    kernels = [e for e in prof.events() if e.device_type == DeviceType.CUDA]
    if not kernels:
        print(f"[{label}] no GPU kernels recorded (CPU run)")
        return
    try:
        summarise_kernels(label, kernels, wall, units)
    except Exception as exc:  # the figures above must not be lost to a profiler API change
        print(f"[{label}] kernel summary failed ({exc!r}); torch's table instead:")
        print(prof.key_averages().table(sort_by="self_device_time_total", row_limit=25, max_name_column_width=90))


def profile_infer(spec: str, ids, tiny: bool):
    """``TOKENS:COMPILE`` (COMPILE ``eager`` or a spec such as ``model:default``): lightft's inference over the
    workload as ``lightft predict`` runs it (length-sorted batches of at most TOKENS tokens and 512 rows, packed on
    CUDA, linear weights in bf16 under autocast), timed after a warm-up pass over every batch, then one pass under
    the profiler."""
    from lightft.evaluation import predict_logits

    stock_gelu = spec.endswith("-gelu")
    tokens, _, compile_spec = spec.removesuffix("-gelu").partition(":")
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model = make_model(tiny).to(device).eval().requires_grad_(False)
    store_frozen_in_bf16(model, "bf16", device)
    if not stock_gelu:  # as predict.Predictor holds the model
        print(f"[infer {spec}] GELU epilogue in {fuse_gelu_epilogue(model, device)} intermediate layers", flush=True)
    fwd = Forward.choose(model, 0, "auto", device, compile=False if compile_spec == "eager" else compile_spec,
                         max_length=512)
    seqs = [list(x) for x in ids]
    kw = dict(forward=fwd, batch_size=512, device=device, precision="bf16", quiet=True, max_tokens=int(tokens))
    t0 = time.perf_counter()
    predict_logits(model, seqs, **kw)  # warm-up: every batch shape once (compiles, when compiled)
    warm = time.perf_counter() - t0
    t0 = time.perf_counter()
    logits = predict_logits(model, seqs, **kw)  # returns on the host: synchronised
    seconds = time.perf_counter() - t0
    lengths = [len(x) for x in seqs]
    flops = flops_per_step(model, [lengths], 1)
    print(f"[infer {spec}] warm-up pass {warm:.1f} s; {len(seqs) / seconds:.0f} samples/s, "
          f"{sum(lengths) / seconds:.0f} tokens/s; {rate(flops / seconds, device)}", flush=True)
    profile_kernels(f"infer {spec}", lambda: predict_logits(model, seqs, **kw), 1, device)
    return logits


def summarise_kernels(label: str, kernels, prof_wall: float, profiled: int) -> None:
    by_kind, by_name, launches = defaultdict(float), defaultdict(lambda: [0.0, 0]), len(kernels) / profiled
    for e in kernels:
        us = e.device_time_total
        by_kind[kind_of(e.name)] += us
        by_name[e.name][0] += us
        by_name[e.name][1] += 1
    busy = sum(by_kind.values()) / profiled / 1e3
    print(f"[{label}] under the profiler {prof_wall * 1e3:.1f} ms/step wall, GPU kernels {busy:.1f} ms/step "
          f"({100 * busy / (prof_wall * 1e3):.0f}% busy), {launches:.0f} kernels/step")
    for kind, us in sorted(by_kind.items(), key=lambda kv: -kv[1]):
        print(f"    {kind:30s} {us / profiled / 1e3:7.2f} ms/step  {100 * us / profiled / 1e3 / busy:5.1f}%")
    print("    top kernels (ms/step, calls/step, kind, name):")
    for kname, (us, n) in sorted(by_name.items(), key=lambda kv: -kv[1][0])[:25]:
        print(f"    {us / profiled / 1e3:7.2f} {n / profiled:5.0f}  {kind_of(kname):12.12s}  {kname[:110]}")
    sys.stdout.flush()


def sweep(ids, labels) -> None:
    """Run 1's sweep: LoRA at 32 rows (dropout 0.1 and 0), token budgets, full fine-tuning."""
    common = dict(batch_size=32, lr=5e-4, max_steps=60, bf16=True)
    for name, kw in [("lora bs32 dropout0.1", dict(method="lora")),
                     ("lora bs32 dropout0", dict(method="lora", lora_dropout=0.0)),
                     ("lora 16k tokens dropout0", dict(method="lora", lora_dropout=0.0, max_tokens=16384)),
                     ("lora 32k tokens dropout0", dict(method="lora", lora_dropout=0.0, max_tokens=32768)),
                     ("lora 64k tokens dropout0", dict(method="lora", lora_dropout=0.0, max_tokens=65536)),
                     ("full 64k tokens", dict(method="full", max_tokens=65536)),
                     ("full bs32", dict(method="full"))]:
        r = lightft_train(bert_base_cased_model(), ids, labels, **{**common, **kw, "lr": LR[kw["method"]]})
        print(f"{name:28s} {r['samples_per_s']:8.0f} samples/s {r['tokens_per_s']:9.0f} tok/s peak {r['peak_memory_mb']:6.0f} MB "
              f"first step {r['time_to_first_step_s']:.2f} s loss {r['first_loss']} -> {r['last_loss']} ({r['samples']} samples)", flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ids", required=True)
    p.add_argument("--n", type=int, default=None, help="Use the first N reviews.")
    p.add_argument("--ttfs", action="append", default=[], metavar="SETUP")
    p.add_argument("--profile", action="append", default=[], metavar="SETUP")
    p.add_argument("--warm", type=int, default=6)
    p.add_argument("--timed", type=int, default=20)
    p.add_argument("--profiled", type=int, default=5)
    p.add_argument("--infer", action="append", default=[], metavar="TOKENS:COMPILE",
                   help="Profile inference over the workload, e.g. 131072:model:default or 65536:eager; as "
                        "lightft predict runs it (BERT's intermediate GEMM + GELU as one cuBLASLt GEMM with a GELU "
                        "epilogue on a GPU); a '-gelu' suffix keeps the stock GEMM then GELU. Later specs are compared with the first (same predictions, largest logit "
                        "difference).")
    p.add_argument("--cprofile", metavar="FILE", help="Run the (first) --ttfs set-up under cProfile, saved to FILE.")
    p.add_argument("--inductor", action="append", default=[], metavar="KEY=VALUE",
                   help="Set torch._inductor.config.KEY (dotted, e.g. triton.autotune_pointwise=False) first.")
    p.add_argument("--sweep", action="store_true")
    p.add_argument("--tiny", action="store_true")
    args = p.parse_args()
    ids, labels = load_ids(args.ids)
    ids, labels = ids[: args.n], labels[: args.n]
    print(torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu", torch.__version__, flush=True)
    for item in args.inductor:
        import ast

        import torch._inductor.config as inductor_config

        key, _, value = item.partition("=")
        *path, name = key.split(".")
        target = inductor_config
        for part in path:
            target = getattr(target, part)
        setattr(target, name, ast.literal_eval(value))
        print(f"torch._inductor.config.{key} = {getattr(target, name)!r}")
    for i, spec in enumerate(args.ttfs):
        ttfs(Setup(spec), ids, labels, args.tiny, args.cprofile if i == 0 else None)
    for spec in args.profile:
        try:
            profile(Setup(spec), ids, labels, tiny=args.tiny, warm=args.warm, timed=args.timed, profiled=args.profiled)
        except torch.OutOfMemoryError as exc:
            print(f"[profile {spec}] out of memory: {str(exc).splitlines()[0]}", flush=True)
        import gc

        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    first = None
    for spec in args.infer:
        logits = profile_infer(spec, ids, args.tiny)
        if first is None:
            first = (spec, logits)
        else:
            same = (logits.argmax(1) == first[1].argmax(1)).mean()
            print(f"[infer {spec}] against {first[0]}: {100 * same:.2f}% same predictions, largest logit difference "
                  f"{abs(logits - first[1]).max():.3g}", flush=True)
    if args.sweep:
        sweep(ids, labels)


if __name__ == "__main__":
    main()
