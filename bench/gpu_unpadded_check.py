"""GPU check of lightft.model.unpadded on a random-init BERT-base-cased in bf16.

Checks that packed (varlen) logits and gradients match the padded SDPA forward,
for a plain model and for a peft LoRA model, then times forward+backward
samples/s of both paths at ~270 mean tokens per sequence, batch 64. Both bf16
paths are compared with an fp32 padded reference: the unpadded error must stay
within twice the padded path's own bf16 error (plus a small floor).

    python bench/gpu_unpadded_check.py              # on a CUDA machine, < 60 s
    python bench/gpu_unpadded_check.py --cpu-smoke  # tiny model on CPU, to catch bugs

Prints one PASS/FAIL line per check and exits non-zero if any check fails.
"""

from __future__ import annotations

import argparse
import copy
import importlib.util
import json
import sys
import time
import traceback
from pathlib import Path

import torch
import torch.nn.functional as F
from transformers import AutoModelForSequenceClassification, BertConfig

HERE = Path(__file__).resolve().parent
# Load the module by path: the check must not depend on the rest of the package importing cleanly.
_spec = importlib.util.spec_from_file_location("lightft_unpadded", HERE.parent / "src/lightft/model/unpadded.py")
U = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(U)

RESULTS: list[bool] = []


def report(ok: bool, name: str, detail: str) -> None:
    RESULTS.append(bool(ok))
    print(f"{'PASS' if ok else 'FAIL'} {name}: {detail}", flush=True)


def guarded(name, fn, *args, **kwargs):
    """Run one check; an exception is a FAIL line (with its traceback), not the end of the run."""
    try:
        return fn(*args, **kwargs)
    except Exception as exc:  # noqa: BLE001 - report and go on to the next check
        traceback.print_exc()
        report(False, name, f"{type(exc).__name__}: {exc}")


def count_varlen_calls() -> list[int]:
    """Wrap the module's fused kernel so we can tell whether the CUDA path really ran."""
    calls = [0]
    kernel = U.varlen_attn
    if kernel is not None:
        def counted(*args, **kwargs):
            calls[0] += 1
            return kernel(*args, **kwargs)
        U.varlen_attn = counted
    return calls


def random_sequences(lengths, vocab_size, generator):
    return [torch.randint(min(1000, vocab_size // 2), vocab_size, (n,), generator=generator).tolist() for n in lengths]


def padded_inputs(seqs, device):
    ids = torch.zeros(len(seqs), max(map(len, seqs)), dtype=torch.long)
    mask = torch.zeros_like(ids)
    for i, s in enumerate(seqs):
        ids[i, : len(s)] = torch.tensor(s)
        mask[i, : len(s)] = 1
    return ids.to(device), mask.to(device)


def make_runners(model, seqs, device):
    """Two zero-argument callables returning (B, num_labels) logits: padded SDPA and unpadded."""
    ids, mask = padded_inputs(seqs, device)
    packed = U.pack(seqs, pad_token_id=0, position_offset=U.position_offset_for(model), device=device)
    return (lambda: model(input_ids=ids, attention_mask=mask).logits), (lambda: U.unpadded_logits(model, packed))


def flat_grads(model, logits_fn, labels, only_lora):
    model.zero_grad(set_to_none=True)
    F.cross_entropy(logits_fn().float(), labels).backward()
    grads = [p.grad.float().flatten() for n, p in model.named_parameters()
             if p.grad is not None and (not only_lora or "lora_" in n)]
    return torch.cat(grads)


def check_equivalence(name, model32, model16, seqs, device, only_lora):
    labels = torch.arange(len(seqs), device=device) % model32.config.num_labels
    ref_padded, _ = make_runners(model32, seqs, device)
    padded16, unpadded16 = make_runners(model16, seqs, device)

    with torch.no_grad():
        ref, pad, unp = ref_padded(), padded16().float(), unpadded16().float()
    e_pad, e_unp = (pad - ref).abs().max().item(), (unp - ref).abs().max().item()
    floor = 1e-2 * ref.abs().max().item()
    report(e_unp <= 2 * e_pad + floor, f"forward {name}",
           f"max|unpadded-fp32|={e_unp:.2e}  max|padded-fp32|={e_pad:.2e}  "
           f"max|unpadded-padded|={(unp - pad).abs().max().item():.2e}  max|logit|={ref.abs().max().item():.2e}")

    g_ref = flat_grads(model32, ref_padded, labels, only_lora)
    g_pad = flat_grads(model16, padded16, labels, only_lora)
    g_unp = flat_grads(model16, unpadded16, labels, only_lora)
    rel = lambda g: ((g - g_ref).norm() / g_ref.norm()).item()  # noqa: E731
    r_pad, r_unp = rel(g_pad), rel(g_unp)
    what = "lora params" if only_lora else "all params"
    report(r_unp <= 2 * r_pad + 0.02, f"backward {name}",
           f"{what} ({g_ref.numel()} values) rel.err unpadded={r_unp:.3e} padded={r_pad:.3e}")


def samples_per_s(fn, batch, labels, iters, warmup=3):
    for _ in range(warmup):
        F.cross_entropy(fn().float(), labels).backward()
    if labels.is_cuda:
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(iters):
        F.cross_entropy(fn().float(), labels).backward()
    if labels.is_cuda:
        torch.cuda.synchronize()
    return batch * iters / (time.perf_counter() - t0)


def time_paths(name, model, seqs, device, iters):
    model.train()  # real training: dropout on (attention-probs dropout only on the padded path)
    labels = torch.arange(len(seqs), device=device) % model.config.num_labels
    padded, unpadded = make_runners(model, seqs, device)
    sps_pad = samples_per_s(padded, len(seqs), labels, iters)
    sps_unp = samples_per_s(unpadded, len(seqs), labels, iters)
    model.zero_grad(set_to_none=True)
    real = sum(map(len, seqs))
    print(f"TIME {name}: fwd+bwd batch {len(seqs)}, {real / len(seqs):.0f} mean tokens/seq "
          f"({real} real vs {len(seqs) * max(map(len, seqs))} padded tokens): "
          f"padded {sps_pad:.0f} samples/s, unpadded {sps_unp:.0f} samples/s, speedup {sps_unp / sps_pad:.2f}x",
          flush=True)


def lora_wrap(model, r):
    import peft

    config = peft.LoraConfig(task_type="SEQ_CLS", r=r, lora_alpha=2 * r, target_modules=["query", "value"])
    model = peft.get_peft_model(model, config)
    torch.manual_seed(1)
    for n, p in model.named_parameters():  # lora_B starts at zero, which would make lora_A grads vanish
        if "lora_B" in n:
            torch.nn.init.normal_(p, std=0.02)
    return model


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cpu-smoke", action="store_true", help="tiny model on CPU, few sequences")
    args = parser.parse_args()
    t_start = time.perf_counter()

    if args.cpu_smoke:
        device = torch.device("cpu")
        config = BertConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
                            vocab_size=100, max_position_embeddings=64)
        check_lengths, bench_batch, bench_range, iters = [5, 64, 17, 9, 33], 8, (5, 64), 2
    else:
        if not torch.cuda.is_available():
            report(False, "cuda", "no CUDA device (use --cpu-smoke for a CPU run)")
            return 1
        device = torch.device("cuda")
        config = BertConfig(**json.loads((HERE / "bert-base-cased.config.json").read_text()))
        check_lengths = [20, 512, 37, 128, 300, 64, 451, 90, 256, 200, 23, 511, 150, 77, 384, 45]
        bench_batch, bench_range, iters = 64, (28, 512), 10  # uniform 28..512: mean ~270 tokens
    config.num_labels = 3
    gen = torch.Generator().manual_seed(0)
    print(f"device={device} {torch.cuda.get_device_name() if device.type == 'cuda' else ''} torch={torch.__version__} "
          f"varlen_available={U.varlen_available()} varlen_takes_scale={U._VARLEN_TAKES_SCALE}", flush=True)
    calls = count_varlen_calls()

    torch.manual_seed(0)
    plain32 = AutoModelForSequenceClassification.from_config(config, attn_implementation="sdpa").to(device).eval()
    plain16 = copy.deepcopy(plain32).to(torch.bfloat16)
    seqs = random_sequences(check_lengths, config.vocab_size, gen)
    guarded("plain", check_equivalence, "plain", plain32, plain16, seqs, device, only_lora=False)

    lora32 = lora_wrap(plain32, r=8).eval()
    lora16 = copy.deepcopy(lora32).to(torch.bfloat16)
    guarded("lora", check_equivalence, "lora", lora32, lora16, seqs, device, only_lora=True)
    del plain16, lora32

    if device.type == "cuda":
        report(calls[0] > 0, "varlen kernel used", f"{calls[0]} varlen_attn calls")

    bench_seqs = random_sequences(
        torch.randint(bench_range[0], bench_range[1] + 1, (bench_batch,), generator=gen).tolist(),
        config.vocab_size, gen)
    guarded("time lora", time_paths, "lora r=8 bf16", lora16, bench_seqs, device, iters)
    del lora16
    torch.manual_seed(0)
    full16 = AutoModelForSequenceClassification.from_config(config, attn_implementation="sdpa").to(
        device, torch.bfloat16)
    guarded("time full", time_paths, "full fine-tune bf16", full16, bench_seqs, device, iters)

    ok = all(RESULTS)
    print(f"{'ALL PASS' if ok else 'SOME FAIL'} ({sum(RESULTS)}/{len(RESULTS)} checks, "
          f"{time.perf_counter() - t_start:.1f}s)", flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
