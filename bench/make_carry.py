"""Prepare `.carry/` for the GPU benchmark (the device machine has neither the data nor the tokenizer).

    python bench/make_carry.py      # then: device run `bash bench/gpu_run.sh` with carry [".carry"]

Writes `.carry/{train,test}.json.gz` (4,096 IMDB reviews each as BERT-base-cased-sized token ids, see
bench/workloads.bert_base_cased_encode) and `.carry/tok` (the MiniLM tokenizer, used only for padding); with
`--test-all`, also `.carry/test-all.json.gz`, all 25,000 test reviews (inference over the whole split); with
`--product`, `.carry/minilm2` (MiniLM-L6 cut to 2 layers, bf16), `.carry/trec` and `.carry/whl` (the serve extra's
wheels, which the device lacks) for bench/gpu_product.sh.
"""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.workloads import bert_base_cased_encode, load_imdb, minilm_tokenizer, save_ids  # noqa: E402

if __name__ == "__main__":
    out = ROOT / ".carry"
    out.mkdir(exist_ok=True)
    for split in ("train", "test"):
        texts, labels = load_imdb(split, 4096, 0)
        save_ids(out / f"{split}.json.gz", bert_base_cased_encode(texts, 512), labels)
    if "--test-all" in sys.argv:
        texts, labels = load_imdb("test", None, 0)
        save_ids(out / "test-all.json.gz", bert_base_cased_encode(texts, 512), labels)
    minilm_tokenizer().save_pretrained(out / "tok")
    if "--product" in sys.argv:  # for bench/gpu_product.sh
        import shutil
        import subprocess

        import torch
        from transformers import AutoModel

        from lightft.quickstart import minilm_path

        model = AutoModel.from_pretrained(minilm_path(), dtype=torch.float32)
        model.encoder.layer = model.encoder.layer[:2]
        model.config.num_hidden_layers = 2
        model.to(torch.bfloat16).save_pretrained(out / "minilm2")  # 30 MB: bf16 keeps the carry under 64 MiB
        minilm_tokenizer().save_pretrained(out / "minilm2")
        shutil.copytree(ROOT.parent / "shared" / "datasets" / "trec", out / "trec", dirs_exist_ok=True)
        wheels = ["fastapi==0.165.0", "starlette==1.10.0", "pydantic==2.14.4", "pydantic_core==2.50.5",
                  "typing-inspection==0.4.5", "annotated-types==0.8.0", "uvicorn==0.54.0", "opentelemetry-api==1.45.2",
                  "typing_extensions==4.16.0"]
        platforms = [a for p in ("manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64")
                     for a in ("--platform", p)]
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
                        "--python-version", "3.12", "--implementation", "cp", *platforms, "-d", str(out / "whl"),
                        *wheels], check=True)
    print(f"wrote {out}")
