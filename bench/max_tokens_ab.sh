#!/bin/bash
# A/B for --max-tokens training: an old checkout ($OLD, e.g. `git worktree add /tmp/old efffaaa`: per-batch mean loss,
# raw-length budget) against this one (row-weighted loss, padded-width budget). MiniLM LoRA on 2,000 TREC questions.
# Run from the repository root with the dev venv active: OLD=/tmp/old bash bench/max_tokens_ab.sh
set -e
OLD=${OLD:-/tmp/old}
M=$(python -c "from lightft.quickstart import minilm_path; print(minilm_path())")
for seed in 1 2; do
 for side in old new; do
  src=$PWD/src; [ $side = old ] && src=$OLD/src
  out=$(mktemp -d)/run
  PYTHONPATH=$src TQDM_DISABLE=1 python -m lightft train --model "$M" --data ../shared/datasets/trec --method lora \
    --limit-train 2000 --max-length 48 --epochs 3 --max-tokens 768 --seed $seed --no-baseline --quiet --output "$out" > /dev/null 2>&1
  python -c "import json; m=json.load(open('$out/metrics.json')); print('$side seed $seed', 'test acc %.2f%%' % (100*m['eval']['accuracy']), 'F1 %.2f%%' % (100*m['eval']['macro_f1']), 'train %.0fs' % m['train']['seconds'])"
 done
done
