#!/usr/bin/env bash
# Last wave's method comparisons on the real model, redone with paired tests on whole splits.
#
# Each group is one run_suite.sh run on SmolLM2-135M-Instruct (the real suite's model) over the whole
# validation splits of boolq_tailored and piqa_tailored (3,270 and 1,838 documents), scored with vLLM,
# whose claims are tested document by document (--paired: difference, 95% paired bootstrap interval,
# McNemar's exact p, verdict). Every configuration leaves its digest in results/methods-GROUP-digests/
# and --resume reuses it, so a group stopped part way continues where it stopped (commit the digests
# as they come). Groups:
#
#   pillow  per-input prompt selection (PILLOW): match against none, random and knn (m = 1; random
#           and match over seeds 0-2), each task with its 50-shot adapter
#   tell    TELL (anchor + 2,000 tokens of the other task's data) against SFT at 10 and 25 shots, on
#           Taylor 0.2 pruning (layers 4-27), adapter seeds 0-2
#   best    prompt=best (the template chosen by cross-validation on the shots) against the default template
#   qlora   QLoRA (adapt_quant=nf4: 50-shot task adapters trained on the 4-bit pruned checkpoint) against
#           LoRA, at Taylor 0.2 and 0.5 pruning (layers 4-27), on the real suite's four accuracy tasks
#           (boolq, piqa, winogrande, and hellaswag's first 2,000 as in the suite); needs the qlora extra
#
# Adapted against pruned only at 0.2 and 0.5 is the real suite's own claim (./run_suite.sh --suite
# smollm2 tests it per adapter seed).
#
# Usage (offline, nothing else running):
#   bash benchmarks/method_comparisons.sh pillow --data-dir ../shared/data/hub
#   bash benchmarks/method_comparisons.sh all --data-dir ../shared/data/hub
# Extra arguments go to run_suite.sh (--backend hf, --limit N for a smoke run into another --out, ...).
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
group="${1:-}"
case "$group" in pillow|tell|best|qlora|all) shift ;; *) echo "method_comparisons.sh: group '$group' is not one (valid: pillow, tell, best, qlora, all)" >&2; exit 2 ;; esac

tasks="boolq_tailored,piqa_tailored"
prune="prune_ratio=0.2,prune_layers=4-27,importance=param_first"

run_group() {
  local name="$1"; shift
  echo "== method comparisons: $name"
  bash "$here/run_suite.sh" --suite smollm2 --tasks "$tasks" --backend vllm --resume --no-check \
    --out "$here/results/methods-$name.json" --runs "$here/results/runs/methods-$name" "$@"
}

pillow() {
  local args=(--config "none=prompt_select=none" --config "knn=prompt_select=knn,prompt_m=1")
  for seed in 0 1 2; do
    args+=(--config "random_s$seed=prompt_select=random,prompt_m=1,prompt_seed=$seed"
           --config "match_s$seed=prompt_select=match,prompt_m=1,prompt_seed=$seed"
           --paired "match_s$seed=none" --paired "match_s$seed=random_s$seed" --paired "match_s$seed=knn")
  done
  run_group pillow "${args[@]}" "$@"
}

tell() {
  local args=() shots seed
  for shots in 10 25; do
    for seed in 0 1 2; do
      args+=(--config "sft${shots}_s$seed=$prune,shots=$shots,adapt_seed=$seed"
             --config "tell${shots}_s$seed=$prune,shots=$shots,adapt_seed=$seed,adapt_method=tell,general_data=tasks:boolq_tailored+piqa_tailored,general_tokens=2000,tell_anchor=default"
             --paired "tell${shots}_s$seed=sft${shots}_s$seed")
    done
  done
  run_group tell "${args[@]}" "$@"
}

best() {
  run_group best --config "default=prompt=default" --config "best=prompt=best" --paired "best=default" "$@"
}

qlora() {
  local args=() ratio tag
  for ratio in 0.2 0.5; do
    tag="p${ratio#0.}0"  # p20, p50
    args+=(--config "lora_$tag=prune_ratio=$ratio,prune_layers=4-27,importance=param_first"
           --config "qlora_$tag=prune_ratio=$ratio,prune_layers=4-27,importance=param_first,adapt_quant=nf4"
           --paired "qlora_$tag=lora_$tag")
  done
  run_group qlora "${args[@]}" --tasks boolq,piqa,winogrande,hellaswag --docs hellaswag=2000 "$@"
}

if [ "$group" = all ]; then
  pillow "$@"; tell "$@"; best "$@"; qlora "$@"
else
  "$group" "$@"
fi
