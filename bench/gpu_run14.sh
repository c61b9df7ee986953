#!/usr/bin/env bash
# Fourteenth GPU run: planned in session 14, not run yet. In order of value:
#  1. Where a 32-row LoRA step's time goes (the "3x compiled Trainer at equal updates" target): eager, layers
#     compiled (--compile, 798 samples/s in run 12) and the whole model compiled, under the profiler. Run 12's
#     estimate says the compiled step (40 ms) is launch/host-bound with about 13 ms of kernels: this checks it.
#  2. The serve check that runs 12 and 13 cut short: two LoRA runs sharing one base on the GPU, every answer
#     compared with lightft.load().predict; `time` shows where each ~35 s `lightft train` of a tiny model goes.
#  3. The stock GEMM-then-GELU over all 25,000 reviews in the same process as the epilogue (run 13 measured only the
#     epilogue: 8,326 samples/s).
# Here: `python bench/make_carry.py --test-all --product`; device tool: `bash bench/gpu_run14.sh`, carry
# [".carry/train.json.gz", ".carry/test-all.json.gz", ".carry/tok", ".carry/minilm2", ".carry/trec", ".carry/whl"],
# timeout_s 540.
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .carry/whl/*.whl
source bench/gpu_steps.sh
export PYTHONPATH=src:/tmp/site RUNS="lora:0 lora:1"
step profile32 200 "${PROF[@]}" --profile lora:0:eager --profile lora:0:default --profile lora:0:model:default
step product 150 bash bench/gpu_product.sh
step infer-all 170 "${PROF[@]}" --ids .carry/test-all.json.gz --infer 131072:model:default \
  --infer 131072:model:default-gelu
