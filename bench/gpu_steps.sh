# Sourced by bench/gpu_run7.sh and later: the environment, $OUT, the GPU's name, and `step NAME LIMIT CMD...`, which
# runs CMD under its own time limit with warnings filtered out and its output kept in $OUT/NAME.log.
set -o pipefail
export PYTHONUNBUFFERED=1 PYTHONPATH=src PYTHONWARNINGS=ignore TOKENIZERS_PARALLELISM=false
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
PROF=(python -X faulthandler bench/gpu_profile.py --ids .carry/train.json.gz)
step() { local name=$1 limit=$2; shift 2; timeout "$limit" "$@" 2>&1 | grep -v -i warn | tee "$OUT/$name.log"; }
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"
