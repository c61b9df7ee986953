#!/usr/bin/env bash
# The product on a GPU, through the CLI: train each of $RUNS (METHOD:SEED; default lora at two seeds, ia3 and prefix,
# which had never run on a GPU), predict, then `lightft serve` them all on one server (the two LoRA runs share one
# base), checked over HTTP against lightft.load().predict (bench/gpu_serve_check.py). Carry .carry/minilm2 (MiniLM-L6
# cut to 2 layers, saved in bf16), .carry/trec, and the serve extra's wheels in .carry/whl (make_carry.py --product).
set -o pipefail
common="--model .carry/minilm2 --data .carry/trec --max-length 64 --quiet --epochs 1"
served=()
for run in ${RUNS:-lora:0 lora:1 ia3:0 prefix:0}; do
  m=${run%:*} seed=${run#*:} dir=/tmp/r-${run/:/-}
  rm -rf "$dir"
  time python -m lightft train $common --method "$m" --seed "$seed" --output "$dir"  # run 13: ~35 s each on an H100
  python -c "import json; m=json.load(open('$dir/metrics.json')); t=m['train']; print('$run', m['environment']['device'], 'unpadded', t['unpadded'], 'samples/s', t['samples_per_second'], 'peak MB', t['peak_memory_mb'], 'acc', m['eval']['accuracy'])"
  served+=("${run/:/-}=$dir")
done
python -m lightft predict "${served[0]#*=}" "Who wrote Hamlet ?" "How many miles is it to Boston ?"
python bench/gpu_serve_check.py "${served[@]}" --requests 400 --clients 16
