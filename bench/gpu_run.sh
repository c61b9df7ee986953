#!/usr/bin/env bash
# The GPU benchmark run (device tool): carry .carry (pre-tokenised IMDB lengths + tokenizer, bench/workloads.save_ids).
set -o pipefail
export PYTHONUNBUFFERED=1 PYTHONPATH=src PYTHONWARNINGS=ignore TOKENIZERS_PARALLELISM=false
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader | tee "$OUT/gpu.txt"
python -c "import torch, transformers, peft, accelerate; print(torch.__version__, transformers.__version__, peft.__version__, accelerate.__version__)" | tee -a "$OUT/gpu.txt"
python bench/train_speed.py --workload gpu --ids .carry/train.json.gz --tokenizer .carry/tok --methods lora,full \
  --steps 60 --batch-size 32 --max-tokens 16384 --out "$OUT/train_gpu.json" 2>&1 | grep -v -i warn | tee "$OUT/train_gpu.log"
python bench/gpu_profile.py --ids .carry/train.json.gz 2>&1 | grep -v -i warn | tee "$OUT/profile.log"
python bench/infer_speed.py --workload gpu --ids .carry/test.json.gz --tokenizer .carry/tok --n 4096 --batch-size 128 \
  --max-tokens 65536 --out "$OUT/infer_gpu.json" 2>&1 | grep -v -i warn | tee "$OUT/infer_gpu.log"
