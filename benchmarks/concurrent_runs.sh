#!/usr/bin/env bash
# Two `lm_eval --model tailored` runs started together on one empty cache.
#
# Both ask for the same pruned checkpoint and the same per-task adapters. With one builder per cache
# entry, each is built once: one run logs "training adapter for T", the other waits for it and
# reuses it. Then the two results are compared: every metric of results_*.json and every logged
# sample (its responses) must be equal, and `tailored cache verify` must find every entry intact.
#
# Usage: bash benchmarks/concurrent_runs.sh [MODEL] [TASKS] [MODEL_ARGS] [LIMIT]
#   default: the shipped reference model, synth_boolq,synth_piqa, prune_ratio=0.2,shots=50, 40 documents
set -euo pipefail
MODEL=${1:-$(tailored reference)}; TASKS=${2:-synth_boolq,synth_piqa}
ARGS=${3:-prune_ratio=0.2,shots=50}; LIMIT=${4:-40}
WORK=$(mktemp -d); trap 'rm -rf "$WORK"' EXIT
export TAILORED_HARNESS_CACHE="$WORK/cache"
for side in a b; do
  lm_eval --model tailored --model_args "pretrained=$MODEL,$ARGS" --tasks "$TASKS" --limit "$LIMIT" \
    --log_samples --output_path "$WORK/out-$side" >"$WORK/$side.out" 2>"$WORK/$side.log" &
done
wait
for side in a b; do
  echo "run $side: $(grep -c 'training adapter for' "$WORK/$side.log") adapters trained," \
       "$(grep -c 'reusing cached adapter for' "$WORK/$side.log") reused," \
       "pruned checkpoint $(grep -q 'reusing cached pruned checkpoint' "$WORK/$side.log" && echo reused || echo built)"
  grep -h 'training adapter for\|another process' "$WORK/$side.log" | sed "s/^/  $side: /" | cut -c1-160
done
python - "$WORK" <<'PY'
import json, pathlib, sys
work = pathlib.Path(sys.argv[1])
def run(side):
    (results,) = (work / f"out-{side}").rglob("results_*.json")
    data = json.loads(results.read_text())
    samples = {p.name.split("_20")[0]: [json.loads(l)["resps"] for l in p.read_text().splitlines()]
               for p in results.parent.glob("samples_*.jsonl")}
    return data["results"], samples
(ra, sa), (rb, sb) = run("a"), run("b")
print("metrics equal:", ra == rb, "| samples equal:", sa == sb, f"({sum(map(len, sa.values()))} samples)")
for task in sorted(ra):
    print(f"  {task}: " + ", ".join(f"{k}={v:.4f}" for k, v in ra[task].items() if isinstance(v, float)))
sys.exit(0 if ra == rb and sa == sb else 1)
PY
tailored cache verify
