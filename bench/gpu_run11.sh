#!/usr/bin/env bash
# Eleventh GPU run: planned in session 10, not run yet. In order of value:
#  1. BERT's GEMM + GELU with a cuBLASLt GELU epilogue (bench/gpu_gelu_epilogue.py): the separate GELU kernel was
#     12.7% of compiled inference in run 10 (7,954 samples/s, 0.6% short of 8,000). Time and error vs exact GELU.
#  2. Compiled inference over 4,096 reviews with and without the epilogue, in one process (same predictions? the
#     largest logit difference), for the end-to-end gain.
#  3. The "3x the best compiled Trainer + peft" target like for like: in one process and from the same
#     weights, Trainer + peft LoRA in bf16 and with torch_compile=True, lightft LoRA eager and --compile, all at 32
#     rows per update for 120 updates (the 972 samples/s came from another script). With the time to
#     first step now ~23 s (run 9), --compile at 32 rows should finish (it did not within 100 s in run 5).
#  4. lightft LoRA with 32k-token batches, eager and compiled, 120 updates.
# Here: `python bench/make_carry.py`; device tool: `bash bench/gpu_run11.sh`, carry [".carry/train.json.gz",
# ".carry/test.json.gz", ".carry/tok"], timeout_s 590. Compare figures within the run (H100 or H200).
source bench/gpu_steps.sh
step gelu 60 python bench/gpu_gelu_epilogue.py
step infer 100 "${PROF[@]}" --ids .carry/test.json.gz --infer 131072:model:default --infer 131072:model:default+gelu
TRAIN=(python -X faulthandler bench/train_speed.py --workload gpu --ids .carry/train.json.gz --tokenizer .carry/tok
       --batch-size 32)
step reference 280 "${TRAIN[@]}" --methods lora --steps 120 --reference-compile --compile default \
  --out "$OUT/reference.json"
step tokens 100 "${TRAIN[@]}" --skip-reference --methods lora --steps 120 --max-tokens 32768 --compile default \
  --out "$OUT/tokens.json"
