#!/usr/bin/env bash
# adapt_method=sft against the code before adaptation methods existed: same fingerprints, same weights.
#
# Trains the same adapters twice with `tailored adapt`, each into its own empty cache: once with
# this checkout's installed package and `--adapt-method sft`, once with the package of commit BEFORE
# (default 796c414, the last commit without TELL) put first on PYTHONPATH from a temporary
# worktree. Then compares, per task, the adapter folder's name (its fingerprint) and every tensor
# of adapter_model.safetensors.
#
# Usage (offline, from the shared data's hub folder for lm-eval's stock tasks):
#   bash benchmarks/tell_sft_parity.sh MODEL [TASKS] [SHOTS] [BEFORE]
set -euo pipefail
MODEL=$1; TASKS=${2:-boolq_tailored,piqa_tailored}; SHOTS=${3:-10}; BEFORE=${4:-796c414}
source "$(dirname "$0")/before_worktree.sh"
adapt() {  # adapt SIDE EXTRA_ARGS [PYTHONPATH]: prints task<TAB>folder lines into $WORK/SIDE.tsv
  PYTHONPATH=${3:-} TAILORED_HARNESS_CACHE="$WORK/cache-$1" tailored adapt --model "$MODEL" --tasks "$TASKS" \
    --shots "$SHOTS" --quiet $2 >"$WORK/$1.tsv" 2>"$WORK/$1.log" || { tail -5 "$WORK/$1.log"; exit 1; }
}
adapt now "--adapt-method sft"
adapt before "" "$WORK/before"
python - "$WORK" <<'PY'
import pathlib, sys
from safetensors.torch import load_file
work = pathlib.Path(sys.argv[1])
def folders(side):
    return dict(line.split("\t") for line in (work / f"{side}.tsv").read_text().splitlines())
now, before = folders("now"), folders("before")
same = 0
for task in sorted(now):
    a, b = pathlib.Path(now[task]), pathlib.Path(before[task])
    ta, tb = load_file(a / "adapter_model.safetensors"), load_file(b / "adapter_model.safetensors")
    equal = ta.keys() == tb.keys() and all(ta[k].equal(tb[k]) for k in ta)
    same += a.name == b.name and equal
    print(f"{task}: fingerprint now {a.name}, before {b.name}; {len(ta)} tensors, "
          f"{'bit-identical' if equal else 'DIFFERENT'}")
print(f"{same} of {len(now)} adapters with the same fingerprint and bit-identical weights")
sys.exit(0 if now and same == len(now) == len(before) else 1)
PY
