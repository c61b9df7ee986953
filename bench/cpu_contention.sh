#!/usr/bin/env bash
# lightft training on a CPU that another busy process shares (docs/performance.md, "CPU: sharing the cores").
#   bash bench/cpu_contention.sh [ROWS] [SCENARIO ...]
# Scenarios: alone, torch-hog (a second torch process doing small matmuls on torch's default threads, like another
# training job), py-hog (one busy Python loop per core). Extra environment (OMP_WAIT_POLICY, GOMP_SPINCOUNT,
# OMP_NUM_THREADS) passes through to the lightft run. Prints the train seconds lightft measured; with WHAT=eval,
# `lightft eval` of the bare model on ROWS test rows instead, and the seconds it measured.
set -u
rows=${1:-320}; shift || true
scenarios=${*:-alone torch-hog}
M=$(python -c "from lightft.quickstart import minilm_path; print(minilm_path())")
out=$(mktemp -d)
run() {
  rm -rf "$out/run"
  if [ "${WHAT:-train}" = eval ]; then
    lightft eval "$M" --data ../shared/datasets/sst2 --limit-eval "$rows" --max-length 64 --quiet \
      --output "$out/eval.json" > "$out/log" 2>&1
    python -c "import json; m = json.load(open('$out/eval.json')); print(f'$1: {m[\"seconds\"]:.1f} s, {m[\"samples_per_second\"]:.1f} samples/s')"
    grep "^warning: other processes" "$out/log" || true
    return
  fi
  lightft train --model "$M" --data ../shared/datasets/sst2 --method lora --limit-train "$rows" --limit-eval 100 \
    --max-length 64 --epochs 1 --no-baseline --quiet --output "$out/run" > "$out/log" 2>&1
  python -c "import json; m = json.load(open('$out/run/metrics.json'))['train']; print(f'$1: {m[\"seconds\"]:.1f} s, {m[\"samples_per_second\"]:.1f} samples/s')"
  grep "^warning: other processes" "$out/log" || true
}
for s in $scenarios; do
  case $s in
    alone) run alone ;;
    torch-hog) python -c "
import torch
a, b = torch.randn(256, 384), torch.randn(384, 384)
while True:
    c = torch.relu(a @ b) * 0.5 + 1.0" & hog=$!; sleep 3; run torch-hog; kill $hog ;;
    py-hog) pids=""; for _ in $(seq "$(nproc)"); do python -c "while True: pass" & pids="$pids $!"; done
      sleep 1; run py-hog; kill $pids ;;
  esac
done
rm -rf "$out"
