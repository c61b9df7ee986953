"""Gradient accumulation under CUDA graphs, through lightft's training loop (``fit``), on a GPU.

    PYTHONPATH=src python bench/gpu_graph_accum.py --ids .carry/train.json.gz          # in bench/gpu_run16.sh
    PYTHONPATH=src python bench/gpu_graph_accum.py --ids .carry/train.json.gz --tiny   # smoke test on a CPU

A CUDA-graph replay writes over the memory of the previous replay's outputs, gradients included, and with gradient
accumulation autograd keeps the first micro-batch's gradient as ``.grad`` itself (pytorch/pytorch#96693). lightft
copies the gradients out first (``compiled.own_gradients``). This trains LoRA on a 2-layer BERT-base-sized model with
grad-accum 2 and every dropout off, three times from the same weights: the whole model compiled without graphs
(``model:default``), with graphs (``model:reduce-overhead``), and with graphs but ``own_gradients`` switched off. It
prints the largest difference of the trained weights from the first run: the second should be at rounding level,
the third far off (or torch's "overwritten" error). On a CPU inductor records no graphs, so all three agree.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from bench.lightft_side import lightft_train  # noqa: E402
from bench.workloads import BERT_BASE_CASED_CONFIG, load_ids  # noqa: E402
from lightft.model import compiled  # noqa: E402
from lightft.training import loop  # noqa: E402


def make_model(tiny: bool):
    from transformers import AutoConfig, AutoModelForSequenceClassification

    config = AutoConfig.from_pretrained(BERT_BASE_CASED_CONFIG, num_labels=2, num_hidden_layers=2,
                                        hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    if tiny:
        config.update(dict(hidden_size=64, num_attention_heads=4, intermediate_size=128))
    torch.manual_seed(0)
    return AutoModelForSequenceClassification.from_config(config)


def train(spec: str, ids, labels, args) -> dict[str, torch.Tensor]:
    torch._dynamo.reset()
    compiled._WHOLE.clear()
    model = make_model(args.tiny)
    r = lightft_train(model, ids, labels, method="lora", batch_size=args.batch_size, lr=5e-4, max_steps=args.steps,
                      lora_dropout=0.0, compile=spec, max_length=512, grad_accum=2)
    print(f"  {spec}: {r['samples_per_s'] or 0:.0f} samples/s, loss {r['first_loss']} -> {r['last_loss']}"
          f"{'  COMPILE FAILED' if r['compile_failed'] else ''}", flush=True)
    return {n: p.detach().float().cpu() for n, p in model.named_parameters() if p.requires_grad}


def largest_difference(a: dict, b: dict) -> float:
    return max((a[n] - b[n]).abs().max().item() for n in a)


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ids", required=True)
    p.add_argument("--steps", type=int, default=40, help="Batches (grad-accum 2: half as many updates).")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--tiny", action="store_true")
    args = p.parse_args()
    ids, labels = load_ids(args.ids)
    print(torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu", torch.__version__, flush=True)
    plain = train("model:default", ids, labels, args)
    scale = max(w.abs().max().item() for n, w in plain.items() if "lora_B" in n)  # lora_B starts at zero
    print(f"scale: the largest trained lora_B entry (zero before training) is {scale:.3g}", flush=True)
    graphs = train("model:reduce-overhead", ids, labels, args)
    print(f"with CUDA graphs: largest trained-weight difference from model:default "
          f"{largest_difference(graphs, plain):.3g}", flush=True)
    owned = loop.own_gradients
    loop.own_gradients = lambda parameters: None  # what stock CUDA-graph trees do
    try:
        bare = train("model:reduce-overhead", ids, labels, args)
        print(f"with CUDA graphs, gradients not copied: largest difference {largest_difference(bare, plain):.3g}")
    except RuntimeError as exc:
        print(f"with CUDA graphs, gradients not copied: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}")
    finally:
        loop.own_gradients = owned
