#!/usr/bin/env bash
# Thirteenth GPU run (session 14), after run 12 measured the cuBLASLt GELU epilogue (model/gelu_epilogue.py is now
# what `lightft predict` runs on a GPU):
#  1. compiled inference over all 25,000 test reviews, the product path (GELU epilogue) and the stock GEMM then GELU,
#     in one process (run 10, H200, stock: 7,954 samples/s; target 8,000);
#  2. the serve check of run 12, which its step limit cut before the comparison: two LoRA runs sharing one base;
#  3. bench/infer_speed.py over the 25,000 reviews: the padded loop, lightft eager and compiled.
# Here: `python bench/make_carry.py --test-all --product`; device tool: `bash bench/gpu_run13.sh`, carry
# [".carry/test-all.json.gz", ".carry/tok", ".carry/minilm2", ".carry/trec", ".carry/whl"], timeout_s 300.
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .carry/whl/*.whl
source bench/gpu_steps.sh
export PYTHONPATH=src:/tmp/site RUNS="lora:0 lora:1"
step infer-all 100 "${PROF[@]}" --ids .carry/test-all.json.gz --infer 131072:model:default \
  --infer 131072:model:default-gelu
step product 90 bash bench/gpu_product.sh
step infer-speed 90 python -X faulthandler bench/infer_speed.py --workload gpu --ids .carry/test-all.json.gz \
  --tokenizer .carry/tok --n 25000 --batch-size 512 --max-tokens 131072 --compile model:default
