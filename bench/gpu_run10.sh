#!/usr/bin/env bash
# Tenth GPU run (session 10): compiled inference after packing moved to numpy (5x faster on the host; at the
# start of a pass the GPU waits for the first batch's packing). Run 9 gave 7,676 samples/s over 4,096 test reviews,
# 94% of the pass with a kernel running. Here: the same 4,096, then all 25,000 IMDB test reviews, whose longer pass
# spreads the pass's start and end over more batches.
# Here: `python bench/make_carry.py --test-all`; device tool: `bash bench/gpu_run10.sh`, carry
# [".carry/train.json.gz", ".carry/test.json.gz", ".carry/test-all.json.gz", ".carry/tok"], timeout_s 110.
source bench/gpu_steps.sh
export TORCHINDUCTOR_CACHE_DIR=/tmp/ind-run10
step infer 60 "${PROF[@]}" --ids .carry/test.json.gz --infer 131072:model:default
step infer-all 45 "${PROF[@]}" --ids .carry/test-all.json.gz --infer 131072:model:default
