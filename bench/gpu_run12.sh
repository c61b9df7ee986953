#!/usr/bin/env bash
# Twelfth GPU run (session 14): run 11's plan (never run) plus the product on a GPU, in order of value:
#  1. bench/gpu_product.sh: lora, ia3 and prefix trained by the CLI on a GPU (prefix never was), then `lightft serve`
#     of all three checked over HTTP against lightft.load().predict (serve never ran on a GPU).
#  2. BERT's GEMM + GELU with a cuBLASLt GELU epilogue (bench/gpu_gelu_epilogue.py), time and error vs exact GELU.
#  3. Compiled inference over 4,096 reviews with and without the epilogue, in one process.
#  4. The "3x the best compiled Trainer + peft" target like for like: one process, the same weights, Trainer + peft
#     LoRA bf16 and torch_compile=True, lightft LoRA eager and --compile, all at 32 rows per update, 120 updates.
# Here: `python bench/make_carry.py --product`; device tool: `bash bench/gpu_run12.sh`, carry [".carry/train.json.gz",
# ".carry/test.json.gz", ".carry/tok", ".carry/minilm2", ".carry/trec", ".carry/whl"], timeout_s 590.
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .carry/whl/*.whl
source bench/gpu_steps.sh
export PYTHONPATH=src:/tmp/site
step product 150 bash bench/gpu_product.sh
step gelu 50 python bench/gpu_gelu_epilogue.py
step infer 100 "${PROF[@]}" --ids .carry/test.json.gz --infer 131072:model:default --infer 131072:model:default+gelu
step reference 270 python -X faulthandler bench/train_speed.py --workload gpu --ids .carry/train.json.gz \
  --tokenizer .carry/tok --batch-size 32 --methods lora --steps 120 --reference-compile --compile default \
  --out "$OUT/reference.json"
