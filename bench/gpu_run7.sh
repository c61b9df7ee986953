#!/usr/bin/env bash
# Seventh GPU run (session 9): where the compiled LoRA step's time goes (kernel kinds, MFU), the time to first
# step with --compile cold and with inductor's caches warm (a second process), dropout's cost, and inference
# with the whole model compiled at a 131k-token budget. Here: `python bench/make_carry.py`; then the device tool:
# `bash bench/gpu_run7.sh` with carry [".carry/train.json.gz", ".carry/test.json.gz", ".carry/tok"], timeout_s 420.
source bench/gpu_steps.sh
# 1. one cold process: the product loop's first step with --compile (and torch's compile-time metrics), then
#    profiles of compiled LoRA and full at 32k tokens, eager LoRA, compiled LoRA at 64k, and without any dropout
step cold 220 "${PROF[@]}" --ttfs lora:32768:default --profile lora:32768:default --profile full:32768:default \
  --profile lora:32768:eager --profile lora:65536:default --profile lora:32768:default:nodrop
# 2. a second process on the same machine: the first step with inductor's on-disk caches warm
step warm 60 "${PROF[@]}" --ttfs lora:32768:default
# 3. inference, whole model compiled, 131k tokens per batch
step infer 90 python -X faulthandler bench/infer_speed.py --workload gpu --ids .carry/test.json.gz \
  --tokenizer .carry/tok --n 4096 --batch-size 512 --max-tokens 131072 --compile model:default
