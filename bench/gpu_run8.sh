#!/usr/bin/env bash
# Eighth GPU run (planned in session 9 after run 7; not run yet: no device was left). What it measures:
#  - FA2 varlen vs cuDNN ragged attention (attention was 23% of the compiled LoRA step in run 7);
#  - where the 73 s cold / 45 s warm time to first step with --compile goes (cProfile of the product loop);
#  - --compile without bucket padding (the default since session 9) against the old bucket-padded batches;
#  - full fine-tuning compiled with a longer warm-up (run 7's timed window for it was disturbed);
#  - inference with the whole model compiled, unbucketed, and where its time goes (the 8,000 samples/s target).
# Here: `python bench/make_carry.py`; device tool: `bash bench/gpu_run8.sh`, carry [".carry/train.json.gz",
# ".carry/test.json.gz", ".carry/tok"], timeout_s 480.
source bench/gpu_steps.sh
step attention 40 python bench/gpu_attention.py --ids .carry/train.json.gz
step train 260 "${PROF[@]}" --warm 10 --timed 20 --profiled 3 --ttfs lora:32768:default --cprofile "$OUT/cold.prof" \
  --profile lora:32768:default --profile lora:32768:default:bucket --profile full:32768:default \
  --profile lora:32768:default:dropout0
step warm 60 "${PROF[@]}" --ttfs lora:32768:default --cprofile "$OUT/warm.prof"
step infer 100 "${PROF[@]}" --ids .carry/test.json.gz --infer 131072:model:default --infer 131072:eager
