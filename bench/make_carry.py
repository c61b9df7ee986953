"""Prepare `.carry/` for the GPU benchmark (the device machine has neither the data nor the tokenizer).

    python bench/make_carry.py      # then: device run `bash bench/gpu_run.sh` with carry [".carry"]

Writes `.carry/{train,test}.json.gz` (4,096 IMDB reviews each as BERT-base-cased-sized token ids, see
bench/workloads.bert_base_cased_encode) and `.carry/tok` (the MiniLM tokenizer, used only for padding); with
`--test-all`, also `.carry/test-all.json.gz`, all 25,000 test reviews (inference over the whole split).
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
    print(f"wrote {out}")
