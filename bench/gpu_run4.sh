#!/usr/bin/env bash
# Fourth GPU run (session 7; its CUDA-graph training steps crashed, and lightft now refuses them):
# re-baseline at equal batches (random batches, linear-only bf16 storage and the
# --max-tokens loss weighting are unmeasured on a GPU), then --compile for training at 32 rows, inference, and
# the best compile mode with 32k-token batches for LoRA and full. Here: `python bench/make_carry.py`; then the device
# tool: `bash bench/gpu_run4.sh` with carry [".carry/train.json.gz", ".carry/test.json.gz", ".carry/tok"] and
# timeout_s 600. Each step has its own limit, so a slow compile cannot take the rest with it; logs and JSON land in
# $OUT. For a dry run on a CPU: STEPS=4 BS=2 INFER_N=64 TOKENS=1024 bash bench/gpu_run4.sh (slow: BERT-base on CPU).
set -o pipefail
export PYTHONUNBUFFERED=1 PYTHONPATH=src PYTHONWARNINGS=ignore TOKENIZERS_PARALLELISM=false
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
STEPS=${STEPS:-60} BS=${BS:-32} INFER_N=${INFER_N:-4096} TOKENS=${TOKENS:-32768}
IDS=(--ids .carry/train.json.gz --tokenizer .carry/tok)
step() { local name=$1 limit=$2; shift 2; timeout "$limit" "$@" 2>&1 | grep -v -i warn | tee "$OUT/$name.log"; }
{ nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
  python -c "import torch, transformers, peft; print(torch.__version__, transformers.__version__, peft.__version__)"; } \
  | tee "$OUT/gpu.txt"
# 1. Trainer + peft vs lightft (eager), LoRA and full, 60 updates x 32 rows
step train 150 python bench/train_speed.py --workload gpu "${IDS[@]}" --methods lora,full --steps "$STEPS" \
  --batch-size "$BS" --out "$OUT/train.json"
# 2. lightft LoRA eager vs --compile at 32 rows, 120 updates so the second half is steady: the layers with CUDA
#    graphs, the whole model with CUDA graphs, the layers without
step compile 210 python bench/train_speed.py --workload gpu "${IDS[@]}" --methods lora --skip-reference \
  --steps $((2 * STEPS)) --batch-size "$BS" --compile reduce-overhead,model:reduce-overhead,default \
  --out "$OUT/compile.json"
# 3. inference: padded loop vs lightft eager vs lightft compiled (layers, whole model) with CUDA graphs
step infer 100 python bench/infer_speed.py --workload gpu --ids .carry/test.json.gz --tokenizer .carry/tok \
  --n "$INFER_N" --batch-size 128 --max-tokens 65536 --compile reduce-overhead,model:reduce-overhead \
  --out "$OUT/infer.json"
# 4. the fastest compile mode of step 2 with token-budget batches, LoRA and full (eager budget runs beside it)
best=$(python -c "
import json, sys
runs = json.load(open(sys.argv[1]))['runs']['lora']
ok = {k: r for k, r in runs.items() if r.get('compile') and not r.get('compile_failed') and r.get('samples_per_s')}
print(max(ok, key=lambda k: ok[k]['samples_per_s']).split('--compile ')[1] if ok else 'reduce-overhead')
" "$OUT/compile.json" 2>/dev/null || echo reduce-overhead)
echo "best compile mode: $best" | tee -a "$OUT/gpu.txt"
step tokens 120 python bench/train_speed.py --workload gpu "${IDS[@]}" --methods lora,full --skip-reference \
  --steps $((2 * STEPS)) --batch-size "$BS" --max-tokens "$TOKENS" --compile "$best" --out "$OUT/tokens.json"
