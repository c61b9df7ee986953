#!/usr/bin/env bash
# Not run. Run 7 (session 9) measured step 1's compiled 64k-token LoRA (2,359 samples/s); steps 2 and 3 (compiled
# LoRA at 32 rows, the compiled Trainer + peft reference) are taken over by bench/gpu_run11.sh (session 10).
# The original plan: runs 4 and 5 (docs/performance.md) measured eager and
# --compile with 32k-token batches; this measures what they could not: --compile with 64k-token batches and at
# 32 rows given enough time, and the compiled Trainer + peft on the same host. Here: `python bench/make_carry.py`;
# then the device tool: `bash bench/gpu_run6.sh` with carry [".carry/train.json.gz", ".carry/test.json.gz",
# ".carry/tok"] and timeout_s 580. Every set-up runs in its own process under its own limit.
set -o pipefail
export PYTHONUNBUFFERED=1 PYTHONPATH=src PYTHONWARNINGS=ignore TOKENIZERS_PARALLELISM=false
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
TRAIN=(python -X faulthandler bench/train_speed.py --workload gpu --ids .carry/train.json.gz --tokenizer .carry/tok
       --batch-size 32)
step() { local name=$1 limit=$2; shift 2; timeout "$limit" "$@" 2>&1 | grep -v -i warn | tee "$OUT/$name.log"; }
nvidia-smi --query-gpu=name --format=csv,noheader | tee "$OUT/gpu.txt"
# 1. LoRA and full, --compile with 64k-token batches (the eager 64k runs beside them)
step tokens 200 "${TRAIN[@]}" --skip-reference --methods lora,full --steps 128 --max-tokens 65536 --compile default \
  --out "$OUT/tokens.json"
# 2. LoRA --compile at 32 rows, kernels now cached from step 1
step rows 120 "${TRAIN[@]}" --skip-reference --methods lora --steps 120 --compile default --out "$OUT/rows.json"
# 3. the compiled Trainer + peft (the 972 samples/s on an H200) beside lightft, 32 rows
step reference 200 "${TRAIN[@]}" --methods lora --steps 120 --reference-compile --out "$OUT/reference.json"
