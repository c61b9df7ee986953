#!/usr/bin/env bash
# Second GPU run: after storing frozen weights in bf16 (see docs/performance.md).
set -o pipefail
export PYTHONUNBUFFERED=1 PYTHONPATH=src PYTHONWARNINGS=ignore TOKENIZERS_PARALLELISM=false
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
nvidia-smi --query-gpu=name --format=csv,noheader | tee "$OUT/gpu2.txt"
python bench/train_speed.py --workload gpu --ids .carry/train.json.gz --tokenizer .carry/tok --methods lora,full \
  --steps 60 --batch-size 32 --max-tokens 65536 --out "$OUT/train_gpu2.json" 2>&1 | grep -v -i warn | tee "$OUT/train_gpu2.log"
