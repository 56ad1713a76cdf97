#!/usr/bin/env bash
# bench/gen_8b.py on a GPU machine without groundset installed and without a network: the repo's
# folders as the `groundset` namespace in /tmp/gs (bench/gpu_device.sh's way), the SmolLM2
# tokenizer from `python bench/gpu.py --prepare .gpu/models` carried in .gpu/models/smollm2-135m
# (the imports need nothing the image lacks: pluggy is there; no wheels), results in
# $OUT (or ./gpu-out). Arguments go to gen_8b.py.
set -euo pipefail
out="${OUT:-gpu-out}"
mkdir -p "$out" /tmp/gs/groundset
for d in core backends validators plugins; do ln -sfn "$PWD/$d" "/tmp/gs/groundset/$d"; done
export PYTHONPATH=/tmp/gs HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1 TQDM_DISABLE=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 bench/gen_8b.py --tokenizer .gpu/models/smollm2-135m --json "$out/gen_8b.json" "$@" 2>&1 \
    | tee "$out/gen_8b.log"
