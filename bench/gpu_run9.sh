#!/usr/bin/env bash
# Ninth GPU run (session 10), right after run 8 found that half the cold time to first step with --compile was a
# C++ build: module floats (dropout p, LoRA scaling, LayerNorm eps) traced as 0-d float64 CPU inputs, cast by a
# C++ kernel. With floats specialised (compiled._specialized_floats): the cold and the warm (second process) time to
# first step, what inductor's cache holds (no .cpp expected), the compiled LoRA step, and compiled inference.
# Here: `python bench/make_carry.py`; device tool: `bash bench/gpu_run9.sh`, carry [".carry/train.json.gz",
# ".carry/test.json.gz", ".carry/tok"], timeout_s 240.
source bench/gpu_steps.sh
export TORCHINDUCTOR_CACHE_DIR=/tmp/ind-run9
step cold 110 "${PROF[@]}" --warm 10 --timed 20 --profiled 3 --ttfs lora:32768:default --profile lora:32768:default
{ echo "== inductor cache $TORCHINDUCTOR_CACHE_DIR: files by extension"
  find "$TORCHINDUCTOR_CACHE_DIR" -type f -printf '%f\n' | sed -n 's/.*\.//p' | sort | uniq -c | sort -rn | head -20
  echo "== C/C++ sources"; find "$TORCHINDUCTOR_CACHE_DIR" -type f \( -name '*.cpp' -o -name '*.c' \) | head; } \
  >>"$OUT/gpu.txt" 2>&1
step warm 60 "${PROF[@]}" --ttfs lora:32768:default
step infer 60 "${PROF[@]}" --ids .carry/test.json.gz --infer 131072:model:default
