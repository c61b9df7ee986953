#!/usr/bin/env bash
# Fifteenth GPU run (session 16). Run 14 profiled the 32-row LoRA step: the whole model compiled takes 28.0 ms a step
# with 14.5 ms of GPU kernels (38% busy), so the step is host/launch-bound. This run tries CUDA graphs for training on
# the whole model, with the losses printed against the same set-up without graphs. When it ran, lightft refused CUDA
# graphs under autograd (run 4's segfault, layers compiled) and gpu_profile.py lifted that for the profile; lightft
# now allows them for the whole model (session 16), so the script reruns as it is. Here: `python bench/make_carry.py`; device tool:
# `bash bench/gpu_run15.sh`, carry [".carry/train.json.gz", ".carry/tok"], timeout_s 420.
source bench/gpu_steps.sh
export TORCH_LOGS=perf_hints  # says why inductor skips CUDA graphs, if it does
step graphs 250 "${PROF[@]}" --warm 40 --timed 30 --profiled 3 --profile lora:0:model:reduce-overhead
unset TORCH_LOGS
step nographs 130 "${PROF[@]}" --warm 40 --timed 30 --profiled 3 --profile lora:0:model:default
