#!/usr/bin/env bash
# Eighth GPU run (session 9, after run 7): --compile without bucket padding (the new default for modes without CUDA
# graphs) against the old bucket-padded batches in one process, full fine-tuning compiled with a longer warm-up,
# FA2 varlen vs cuDNN ragged attention, and inference with the whole model compiled. Carry as for gpu_run7.sh,
# timeout_s 400.
set -o pipefail
export PYTHONUNBUFFERED=1 PYTHONPATH=src PYTHONWARNINGS=ignore TOKENIZERS_PARALLELISM=false
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
PROF=(python -X faulthandler bench/gpu_profile.py --ids .carry/train.json.gz)
step() { local name=$1 limit=$2; shift 2; timeout "$limit" "$@" 2>&1 | grep -v -i warn | tee "$OUT/$name.log"; }
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"
step attention 40 python bench/gpu_attention.py --ids .carry/train.json.gz
step train 200 "${PROF[@]}" --warm 10 --timed 20 --profiled 3 --profile lora:32768:default \
  --profile lora:32768:default:bucket --profile full:32768:default --profile lora:32768:default:dropout0
step infer 90 python -X faulthandler bench/infer_speed.py --workload gpu --ids .carry/test.json.gz \
  --tokenizer .carry/tok --n 4096 --batch-size 512 --max-tokens 131072 --compile model:default
