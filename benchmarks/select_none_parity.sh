#!/usr/bin/env bash
# prompt_select=none against the code before per-input selection existed, per request, bit for bit.
#
# Runs the same `lm_eval --model tailored` command (adapters at the default 50 shots, from the
# cache) twice: once with this checkout's installed package and `prompt_select=none`, once with the
# package of commit BEFORE (default d35de09, the last commit without prompt selection) put first on
# PYTHONPATH from a temporary worktree. Then compares every request's response in the logged samples.
#
# Usage (offline, from the shared data's hub folder):
#   bash benchmarks/select_none_parity.sh MODEL [TASKS] [LIMIT] [BEFORE]
set -euo pipefail
MODEL=$1; TASKS=${2:-boolq_tailored,piqa_tailored}; LIMIT=${3:-50}; BEFORE=${4:-d35de09}
source "$(dirname "$0")/before_worktree.sh"
run() {  # run OUT EXTRA_ARGS [PYTHONPATH]
  PYTHONPATH=${3:-} lm_eval --model tailored --model_args "pretrained=$MODEL,dtype=float32$2" --tasks "$TASKS" \
    --limit "$LIMIT" --device cpu --batch_size 1 --log_samples --output_path "$WORK/$1" >"$WORK/$1.log" 2>&1
}
run now ",prompt_select=none"
run before "" "$WORK/before"
python - "$WORK" <<'PY'
import json, pathlib, sys
work = pathlib.Path(sys.argv[1])
def responses(side):
    out = {}
    for path in sorted((work / side).rglob("samples_*.jsonl")):
        for line in path.read_text().splitlines():
            row = json.loads(line)
            task = path.name[len("samples_"):].rsplit("_", 1)[0]
            out[(task, row["doc_id"])] = (row["arguments"], row["resps"])
    return out
now, before = responses("now"), responses("before")
same = sum(now[k] == before.get(k) for k in now)
requests = sum(len(resps) for _, resps in now.values())
print(f"{len(now)} documents ({requests} requests) with prompt_select=none, {len(before)} before; "
      f"documents whose every request has the identical context and response: {same}")
sys.exit(0 if now and same == len(now) == len(before) else 1)
PY
