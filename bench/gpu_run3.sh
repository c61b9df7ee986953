#!/usr/bin/env bash
# Third GPU run, for the next session with a GPU: re-baseline (random batches and linear-only bf16 storage are
# unmeasured on a GPU), then --compile for training and inference. Here: `python bench/make_carry.py`; then the
# device tool: `bash bench/gpu_run3.sh` with carry
# [".carry/train.json.gz", ".carry/test.json.gz", ".carry/tok"] (not all of .carry: an old .carry/minilm2 would push it
# past the 64 MiB limit) and timeout_s 580. Each step has its own limit, so a
# slow compile cannot take the rest with it; logs and JSON land in $OUT (at most 8 files come back).
set -o pipefail
export PYTHONUNBUFFERED=1 PYTHONPATH=src PYTHONWARNINGS=ignore TOKENIZERS_PARALLELISM=false
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
IDS=(--ids .carry/train.json.gz --tokenizer .carry/tok)
step() { local name=$1 limit=$2; shift 2; timeout "$limit" "$@" 2>&1 | grep -v -i warn | tee "$OUT/$name.log"; }
{ nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
  python -c "import torch, transformers, peft; print(torch.__version__, transformers.__version__, peft.__version__)"; } | tee "$OUT/gpu.txt"
# 1. Trainer + peft vs lightft (eager), LoRA and full, 60 updates x 32 rows (~2.5 min)
step train 180 python bench/train_speed.py --workload gpu "${IDS[@]}" --methods lora,full --steps 60 --batch-size 32 \
  --out "$OUT/train.json"
# 2. lightft LoRA eager vs --compile: the layers (the default) in default mode and with CUDA graphs, and the whole
#    model with CUDA graphs; 120 updates so the second half is steady
step compile 250 python bench/train_speed.py --workload gpu "${IDS[@]}" --methods lora --skip-reference --steps 120 \
  --batch-size 32 --compile default,reduce-overhead,model:reduce-overhead --out "$OUT/compile.json"
# 3. inference: padded loop vs lightft eager vs lightft compiled (layers, whole model) with CUDA graphs
step infer 130 python bench/infer_speed.py --workload gpu --ids .carry/test.json.gz --tokenizer .carry/tok --n 4096 \
  --batch-size 128 --max-tokens 65536 --compile reduce-overhead,model:reduce-overhead --out "$OUT/infer.json"
