#!/usr/bin/env bash
# The product pipeline on a GPU: train (lora, full, prefix), predict and eval through the CLI.
# Carry .carry with .carry/minilm2 (MiniLM-L6 cut to 2 layers) and .carry/trec (../shared/datasets/trec).
set -o pipefail
export PYTHONUNBUFFERED=1 PYTHONPATH=src PYTHONWARNINGS=ignore TOKENIZERS_PARALLELISM=false
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
common="--model .carry/minilm2 --data .carry/trec --max-length 64 --quiet"
python -m lightft train $common --method prefix --epochs 2 --output /tmp/r-prefix 2>&1 | tail -4 | tee -a "$OUT/smoke.log"
python -m lightft predict /tmp/r-prefix "Who wrote Hamlet ?" 2>&1 | tail -2 | tee -a "$OUT/smoke.log"
