#!/usr/bin/env bash
# The product pipeline on a GPU: train (lora, full, prefix), predict and eval through the CLI.
# Carry .carry with .carry/minilm2 (MiniLM-L6 cut to 2 layers) and .carry/trec (../shared/datasets/trec).
set -o pipefail
export PYTHONUNBUFFERED=1 PYTHONPATH=src PYTHONWARNINGS=ignore TOKENIZERS_PARALLELISM=false
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
common="--model .carry/minilm2 --data .carry/trec --max-length 64 --quiet"
for m in lora full prefix; do
  python -m lightft train $common --method $m --epochs 2 --output /tmp/r-$m 2>&1 | tee -a "$OUT/smoke.log"
  python -c "import json; m=json.load(open('/tmp/r-$m/metrics.json')); t=m['train']; print('$m', 'unpadded', t['unpadded'], 'samples/s', t['samples_per_second'], 'steady', t['steady_samples_per_second'], 'peak MB', t['peak_memory_mb'], 'acc', m['eval']['accuracy'], m['environment']['device'])" 2>&1 | tee -a "$OUT/smoke.log"
done
python -m lightft predict /tmp/r-lora "Who wrote Hamlet ?" "How many miles is it to Boston ?" 2>&1 | tee -a "$OUT/smoke.log"
python -m lightft eval /tmp/r-lora --data .carry/trec --quiet 2>&1 | tee -a "$OUT/smoke.log"
