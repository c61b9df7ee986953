#!/usr/bin/env bash
# Sixteenth GPU run: planned in session 16, not run yet. Run 15 trained the whole model under CUDA graphs in a bare
# step loop (18.3 ms per 32-row LoRA step, 1,750 samples/s, H100). lightft now allows that in training
# (model:reduce-overhead; gradients owned before they accumulate), so, in order of value:
#  1. The "3x the compiled Trainer at equal updates" target through the product's loop (fit), like for like: one
#     process, the same weights, Trainer + peft bf16 and torch_compile=True, lightft eager, --compile (layers) and the
#     whole model under CUDA graphs, 32 rows per update, 120 updates as in run 12 (.carry/train.json.gz holds 4,096
#     rows: at most 128 updates of 32).
#  2. Gradient accumulation under CUDA graphs on the GPU (bench/gpu_graph_accum.py): grad-accum 2 through fit, dropout
#     off, against the same run without graphs, and once without lightft's own_gradients (expected to differ or fail).
#  3. The 3,000 samples/s and LoRA 1.4x full targets with 32k-token batches under CUDA graphs (bare step loop). At
#     32k tokens the batches' row counts vary, so a plan of 38 batches has about 30 shapes: a graph replays from a
#     shape's third call, hence 80 warm-up steps (the plan repeats) before the 30 timed ones.
# Here: `python bench/make_carry.py`; device tool: `bash bench/gpu_run16.sh`, carry [".carry/train.json.gz",
# ".carry/tok"], timeout_s 560.
source bench/gpu_steps.sh
step reference 300 python -X faulthandler bench/train_speed.py --workload gpu --ids .carry/train.json.gz \
  --tokenizer .carry/tok --batch-size 32 --methods lora --steps 120 --reference-compile \
  --compile default,model:reduce-overhead --out "$OUT/reference.json"
step accum 80 python -X faulthandler bench/gpu_graph_accum.py --ids .carry/train.json.gz
step tokens-lora 100 "${PROF[@]}" --warm 80 --timed 30 --profiled 3 --profile lora:32768:model:reduce-overhead
step tokens-full 100 "${PROF[@]}" --warm 80 --timed 30 --profiled 3 --profile full:32768:model:reduce-overhead
