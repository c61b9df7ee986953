#!/usr/bin/env bash
# Fifth GPU run (session 7), after run 4 found compiled training with CUDA graphs (reduce-overhead) dying with a
# segmentation fault on the H100: each compile set-up now runs in its own process (python -X faulthandler, so a
# crash prints its Python stack), the product's --compile (layers, default mode) first. Carry and call as for
# bench/gpu_run4.sh, timeout_s 520. (Step e now stops at once: lightft refuses CUDA graphs in training since.)
set -o pipefail
export PYTHONUNBUFFERED=1 PYTHONPATH=src PYTHONWARNINGS=ignore TOKENIZERS_PARALLELISM=false
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
STEPS=${STEPS:-120} BS=${BS:-32} INFER_N=${INFER_N:-4096} TOKENS=${TOKENS:-32768}
TRAIN=(python -X faulthandler bench/train_speed.py --workload gpu --ids .carry/train.json.gz --tokenizer .carry/tok
       --skip-reference --steps "$STEPS" --batch-size "$BS")
step() { local name=$1 limit=$2; shift 2; timeout "$limit" "$@" 2>&1 | grep -v -i warn | tee "$OUT/$name.log"; }
nvidia-smi --query-gpu=name --format=csv,noheader | tee "$OUT/gpu.txt"
# a. the product's --compile: the layers, torch.compile's default mode (no CUDA graphs), LoRA at 32 rows
step layers 100 "${TRAIN[@]}" --methods lora --compile default --out "$OUT/layers.json"
# b. the same with 32k-token batches, LoRA and full (eager 32-row and 32k-token runs beside it)
step tokens 150 "${TRAIN[@]}" --methods lora,full --max-tokens "$TOKENS" --compile default --out "$OUT/tokens.json"
# c. the whole model compiled, default mode, LoRA at 32 rows
step model 110 "${TRAIN[@]}" --methods lora --compile model:default --out "$OUT/model.json"
# d. inference compiled without CUDA graphs
step infer 80 python -X faulthandler bench/infer_speed.py --workload gpu --ids .carry/test.json.gz \
  --tokenizer .carry/tok --n "$INFER_N" --batch-size 128 --max-tokens 65536 --compile default,model:default
# e. the crash of run 4 again, for its stack
step crash 60 "${TRAIN[@]}" --methods lora --steps 20 --compile reduce-overhead
