#!/usr/bin/env bash
# tailored-harness regression suite.
#
# Default (fresh machine, no hub, no ../shared): builds a tiny random LLaMA (GQA) with a tokenizer
# trained on the demo corpus, evaluates it through `lm_eval --model tailored` on the offline demo
# task `tailored_demo`, writes results/suite.json and prints a table.
#
# Other runs:
#   ./run_suite.sh --model /path/or/hub-id --tasks boolq,piqa [--limit N] [--device cuda:0] [--batch-size N]
#   --name NAME (configuration label, default dense), --out FILE (summary JSON, default results/suite.json),
#   --runs DIR (lm-eval output folders, default results/runs)
# Environment: TAILORED_HARNESS_CACHE (cache root, default ~/.cache/tailored-harness).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"

model=""
tasks="tailored_demo"
limit=""
device="cpu"
batch_size="8"
name="dense"
out="$here/results/suite.json"
runs="$here/results/runs"

usage() { sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
  case "$1" in
    --model) model="$2"; shift 2 ;;
    --tasks) tasks="$2"; shift 2 ;;
    --limit) limit="$2"; shift 2 ;;
    --device) device="$2"; shift 2 ;;
    --batch-size) batch_size="$2"; shift 2 ;;
    --name) name="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    --runs) runs="$2"; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "run_suite.sh: unknown argument '$1' (valid: --model --tasks --limit --device --batch-size --name --out --runs)" >&2; exit 2 ;;
  esac
done

for cmd in lm_eval tailored; do
  command -v "$cmd" >/dev/null || { echo "run_suite.sh: '$cmd' not found; install the project first: pip install torch==2.13.0 ." >&2; exit 2; }
done

cache="${TAILORED_HARNESS_CACHE:-$HOME/.cache/tailored-harness}"
if [ -z "$model" ]; then
  model="$cache/models/tiny-demo"
  echo "== building the tiny demo model (reused when cached)"
  tailored tiny-model --out "$model"
fi

run_dir="$runs/$name"
rm -rf "$run_dir"
echo "== evaluating $model on $tasks through lm_eval --model tailored"
lm_eval --model tailored \
  --model_args "pretrained=$model" \
  --tasks "$tasks" \
  --device "$device" \
  --batch_size "$batch_size" \
  ${limit:+--limit "$limit"} \
  --output_path "$run_dir"

echo "== summary ($out)"
tailored report --run "$name=$run_dir" --out "$out"
