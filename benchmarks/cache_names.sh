#!/usr/bin/env bash
# The cache entries (pruned checkpoints, adapters, worlds) and the responses of one small fixed run,
# printed so that two commits can be compared: same entry names means same fingerprints, same
# response digests means same scores. Not a speed benchmark; it checks that a change which should
# not touch behaviour (moving files, say) does not.
#
#   bash benchmarks/cache_names.sh OUT [BIN]
#
# OUT: a new folder for the cache and lm-eval's output. BIN: the bin folder of the environment to
# test (default: .venv/bin); install the other commit into another venv to compare with it.
# Under a minute on 2 cores.
set -euo pipefail
out=$(mkdir -p "$1" && cd "$1" && pwd)
bin=${2:-.venv/bin}
export TAILORED_HARNESS_CACHE="$out/cache" HF_DATASETS_OFFLINE=1 HF_HUB_OFFLINE=1
ref=$("$bin/tailored" reference --quiet 2>"$out/reference.log")
"$bin/python" -m lm_eval --model tailored --model_args "pretrained=$ref,prune_ratio=0.2,shots=8,epochs=1" \
  --tasks synth_boolq,synth_qa --limit 20 --output_path "$out/lm_eval" --log_samples > "$out/lm_eval.log" 2>&1
"$bin/tailored" prune --model "$ref" --ratio 0.5 --layers 1-2 --tasks synth_piqa --quiet > "$out/prune.log" 2>&1
echo "cache entries (file-hashes/ is a memo keyed by path, left out):"
(cd "$out/cache" && find . -mindepth 2 -maxdepth 2 -not -path "./file-hashes/*" | sed 's#^\./##' | sort)
echo "responses per task (sha256 of every logged response, in order):"
"$bin/python" - "$out/lm_eval" <<'PY'
import hashlib, json, pathlib, sys
for path in sorted(pathlib.Path(sys.argv[1]).rglob("samples_*.jsonl")):
    responses = [json.loads(line)["resps"] for line in path.read_text().splitlines()]
    digest = hashlib.sha256(json.dumps(responses).encode()).hexdigest()[:16]
    print(f"  {path.name.split('_20')[0]}: {len(responses)} documents, {digest}")
PY
