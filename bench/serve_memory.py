"""Memory of serving several LoRA runs of one BERT-base-cased-sized base: shared (lightft serve's default) or one
merged copy per run (--no-share-base, or one transformers.pipeline per exported model).

    python bench/serve_memory.py            # 4 runs; about 2 minutes on 2 CPU cores

The base is BERT-base-cased's shape (bench/bert-base-cased.config.json) with MiniLM's 30,522-token vocabulary
(its tokenizer is the one installed offline), randomly initialised: memory depends on the shapes, not the values.
Each run is a 1-epoch LoRA training on 64 SST-2 rows (2 labels) or TREC rows (6 labels). Each way of loading runs
in its own process, which reports the bytes of the distinct tensors it holds (ModelPool.parameter_bytes) and its
peak resident set (VmHWM) after a prediction with every run.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
DATA = ROOT.parent / "shared" / "datasets"

CHILD = r'''
import json, sys
from pathlib import Path
from lightft.serving.pool import ModelPool
runs, share = json.loads(sys.argv[1]), sys.argv[2] == "shared"
pool = ModelPool(runs, precision="fp32", share=share)
for name in runs:
    pool.predict(name, ["a moving film", "who wrote hamlet ?"])
rss = next(int(l.split()[1]) / 1024 for l in Path("/proc/self/status").read_text().splitlines() if l.startswith("VmHWM:"))
print(json.dumps({"parameter_mb": pool.parameter_bytes() / 2**20, "rss_mb": rss}))
'''


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=int, default=4)
    p.add_argument("--dir", default=str(Path(tempfile.gettempdir()) / "lightft-serve-memory"))
    args = p.parse_args(argv)
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    import lightft
    from lightft.quickstart import minilm_path

    root = Path(args.dir)
    base = root / "bert-base-shape"
    if not (base / "model.safetensors").exists():
        config = json.loads((ROOT / "bench" / "bert-base-cased.config.json").read_text())
        config["vocab_size"] = 30522
        torch.manual_seed(0)
        BertForSequenceClassification(BertConfig(**config)).save_pretrained(base)
        AutoTokenizer.from_pretrained(str(minilm_path())).save_pretrained(base)
    runs = {}
    for i in range(args.runs):
        data = "sst2" if i % 2 == 0 else "trec"
        path = root / f"run-{i}-{data}"
        if not (path / "metrics.json").exists():
            lightft.train(model=str(base), data=str(DATA / data), method="lora", limit_train=64, limit_eval=32,
                          epochs=1, max_length=32, batch_size=16, seed=i, output=str(path), quiet=True,
                          baseline=False)
        runs[f"run{i}-{data}"] = str(path)
    print(f"{args.runs} LoRA runs (r=8) of a BERT-base-cased-sized base, fp32, CPU:")
    figures = {}
    for way in ("shared", "apart"):
        done = subprocess.run([sys.executable, "-c", CHILD, json.dumps(runs), way], capture_output=True, text=True,
                              env={"PYTHONWARNINGS": "ignore", "PATH": "", "PYTHONPATH": str(ROOT / "src")})
        if done.returncode:
            raise SystemExit(done.stderr)
        figures[way] = json.loads(done.stdout.strip().splitlines()[-1])
        label = "one shared base (default)" if way == "shared" else "one merged copy per run (--no-share-base)"
        print(f"  {label:<44} tensors {figures[way]['parameter_mb']:7.0f} MB   peak RSS {figures[way]['rss_mb']:7.0f} MB")
    print(f"  shared / apart: tensors x{figures['shared']['parameter_mb'] / figures['apart']['parameter_mb']:.2f}, "
          f"peak RSS x{figures['shared']['rss_mb'] / figures['apart']['rss_mb']:.2f}")


if __name__ == "__main__":
    main()
