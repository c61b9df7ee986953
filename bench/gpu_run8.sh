#!/usr/bin/env bash
# Eighth GPU run (planned in session 9 after run 7, run in session 10). What it measures:
#  - FA2 varlen vs cuDNN ragged attention (attention was 23% of the compiled LoRA step in run 7);
#  - where the 73 s cold / 45 s warm time to first step with --compile goes (cProfile of the product loop), what
#    inductor's cache holds afterwards (C++ files: what `compile_file` compiled), and the same cold/warm pair with
#    inductor's compile-worker pool off (compile_threads=1) in a fresh cache: is the pool the per-process cost?
#  - --compile without bucket padding (the default since session 9) against the old bucket-padded batches;
#  - full fine-tuning compiled with a longer warm-up (run 7's timed window for it was disturbed);
#  - inference with the whole model compiled, unbucketed, and where its time goes (the 8,000 samples/s target).
# Here: `python bench/make_carry.py`; device tool: `bash bench/gpu_run8.sh`, carry [".carry/train.json.gz",
# ".carry/test.json.gz", ".carry/tok"], timeout_s 540. Eight files come back (the tool's limit).
source bench/gpu_steps.sh
export TORCHINDUCTOR_CACHE_DIR=/tmp/ind-default
step attention 40 python bench/gpu_attention.py --ids .carry/train.json.gz
step train 240 "${PROF[@]}" --warm 10 --timed 20 --profiled 3 --ttfs lora:32768:default --cprofile "$OUT/cold.prof" \
  --profile lora:32768:default --profile lora:32768:default:bucket --profile full:32768:default \
  --profile lora:32768:default:dropout0
step warm 60 "${PROF[@]}" --ttfs lora:32768:default --cprofile "$OUT/warm.prof"
{ echo "== inductor cache $TORCHINDUCTOR_CACHE_DIR: files by extension"
  find "$TORCHINDUCTOR_CACHE_DIR" -type f -printf '%f\n' | sed -n 's/.*\.//p' | sort | uniq -c | sort -rn | head -20
  echo "== C/C++ sources and shared objects"; find "$TORCHINDUCTOR_CACHE_DIR" ~/.triton -type f \
    \( -name '*.cpp' -o -name '*.c' -o -name '*.so' \) -printf '%s %p\n' 2>/dev/null | head -40
  for f in $(find "$TORCHINDUCTOR_CACHE_DIR" -name '*.cpp' | head -3); do echo "== $f"; head -c 3000 "$f"; echo; done
  echo "== triton cache entries: $(ls ~/.triton/cache 2>/dev/null | wc -l)"; } >>"$OUT/gpu.txt" 2>&1
export TORCHINDUCTOR_CACHE_DIR=/tmp/ind-threads1
{ timeout 100 "${PROF[@]}" --inductor compile_threads=1 --ttfs lora:32768:default
  timeout 60 "${PROF[@]}" --inductor compile_threads=1 --ttfs lora:32768:default; } 2>&1 | grep -v -i warn \
  | tee "$OUT/threads1.log"
export TORCHINDUCTOR_CACHE_DIR=/tmp/ind-default
step infer 100 "${PROF[@]}" --ids .carry/test.json.gz --infer 131072:model:default --infer 131072:eager
