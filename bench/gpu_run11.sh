#!/usr/bin/env bash
# Eleventh GPU run: planned in session 10, not run yet. The "3x the best compiled Trainer + peft" target
# has never been measured like for like: the 972 samples/s (H200) came from another script. This runs, in
# one process on one machine and from the same weights, Trainer + peft LoRA in bf16 and with torch_compile=True,
# and lightft LoRA eager and --compile, all at 32 rows per update for 120 updates (equal updates), then lightft
# with 32k-token batches. With the time to first step now ~23 s (run 9), --compile at 32 rows should finish
# (it did not within 100 s in run 5). First, a microbenchmark of BERT's GEMM + GELU with a cuBLASLt GELU epilogue
# (bench/gpu_gelu_epilogue.py): the separate GELU kernel was 12.7% of compiled inference in run 10. Here: `python bench/make_carry.py`; device tool: `bash bench/gpu_run11.sh`,
# carry [".carry/train.json.gz", ".carry/test.json.gz", ".carry/tok"], timeout_s 420.
source bench/gpu_steps.sh
step gelu 60 python bench/gpu_gelu_epilogue.py
TRAIN=(python -X faulthandler bench/train_speed.py --workload gpu --ids .carry/train.json.gz --tokenizer .carry/tok
       --batch-size 32)
step reference 300 "${TRAIN[@]}" --methods lora --steps 120 --reference-compile --compile default \
  --out "$OUT/reference.json"
step tokens 100 "${TRAIN[@]}" --skip-reference --methods lora --steps 120 --max-tokens 32768 --compile default \
  --out "$OUT/tokens.json"
