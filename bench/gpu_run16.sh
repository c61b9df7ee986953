#!/usr/bin/env bash
# Sixteenth GPU run: planned in session 16, not run yet. Run 15 trained the whole model under CUDA graphs in a bare
# step loop (18.3 ms per 32-row LoRA step, 1,750 samples/s, H100). lightft now allows that in training
# (model:reduce-overhead; gradients owned before they accumulate), so, in order of value:
#  1. The "3x the compiled Trainer at equal updates" target through the product's loop (fit), like for like: one
#     process, the same weights, Trainer + peft bf16 and torch_compile=True, lightft eager, --compile (layers) and the
#     whole model under CUDA graphs, 32 rows per update, 160 updates (run 12 ran the first four at 120).
#  2. The 3,000 samples/s and LoRA 1.4x full targets with 32k-token batches under CUDA graphs (bare step loop).
# Here: `python bench/make_carry.py`; device tool: `bash bench/gpu_run16.sh`, carry [".carry/train.json.gz",
# ".carry/tok"], timeout_s 560.
source bench/gpu_steps.sh
step reference 330 python -X faulthandler bench/train_speed.py --workload gpu --ids .carry/train.json.gz \
  --tokenizer .carry/tok --batch-size 32 --methods lora --steps 160 --reference-compile \
  --compile default,model:reduce-overhead --out "$OUT/reference.json"
step tokens 200 "${PROF[@]}" --warm 30 --timed 30 --profiled 3 --profile lora:32768:model:reduce-overhead \
  --profile full:32768:model:reduce-overhead
