"""The body of a submission's model card: results, recipe, prompts, seeds, versions, artifacts.

Everything is read from what the run wrote: lm-eval's results (metrics, task configs, seeds,
versions), ``config.tailored`` (the spec), the pruned checkpoint's ``pruning.json`` and each adapter's
``adaptation.json`` and ``adapter_config.json``.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from tailored_harness.core.paths import read_json
from tailored_harness.submit.runs import ScoredRun, metrics, scored_split

if TYPE_CHECKING:
    from tailored_harness.submit.manifest import Artifact

SEEDS = ("random_seed", "numpy_seed", "torch_seed", "fewshot_seed")
TORCH_VERSION = re.compile(r"^PyTorch version: (\S+)", re.MULTILINE)


def _table(rows: list[list[Any]], headers: list[str]) -> str:
    from tabulate import tabulate

    return tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True)


def _results(runs: list[ScoredRun]) -> str:
    rows = []
    for run in runs:
        for task, metric, value, stderr in metrics(run):
            config = run.results.get("configs", {}).get(task, {})
            n = run.results.get("n-samples", {}).get(task, {}).get("effective", "")
            rows.append([task, metric, f"{value:.4f}", "" if stderr is None else f"{stderr:.4f}", n,
                         scored_split(config) or "", run.results.get("n-shot", {}).get(task, "")])
    return _table(rows, ["task", "metric", "value", "stderr", "documents", "split", "in-context shots"])


def _pruning(run: ScoredRun, artifacts: list["Artifact"]) -> str:
    pruning = run.pruning
    if not pruning:
        return "Not pruned: the base model's own weights were scored."
    folder = next(a.folder for a in artifacts if a.kind == "pruned")
    report = read_json(folder / "pruning.json") or {}
    spec = report.get("spec", {})
    before, after = pruning["parameters_before"], pruning["parameters_after"]
    lines = [f"Structured pruning in LLM-Pruner's style (checkpoint `{pruning['fingerprint']}`): "
             f"{before:,} parameters before, {after:,} after ({100 * after / before:.2f}% kept).", ""]
    lines.append(_table([[key, value] for key, value in sorted(spec.items())], ["pruning spec", "value"]))
    return "\n".join(lines)


def _adapters(runs: list[ScoredRun], artifacts: list["Artifact"]) -> str:
    folders = {a.fingerprint: a.folder for a in artifacts if a.kind == "adapter"}
    rows = []
    for run in runs:
        for task, info in sorted(run.adapters.items()):
            report = read_json(folders[info["fingerprint"]] / "adaptation.json") or {}
            spec, cost = report.get("spec", {}), info.get("cost") or {}
            rows.append([task, f"`{info['fingerprint']}`", info.get("method", "sft"), info["shots"], info["split"],
                         spec.get("r", ""), spec.get("alpha", ""), spec.get("learning_rate", ""), spec.get("epochs", ""),
                         spec.get("seed", ""), cost.get("optimizer_steps", ""), cost.get("task_tokens", ""),
                         cost.get("general_tokens", "")])
    if not rows:
        return "No adapters: every task was scored with the same weights."
    headers = ["task", "adapter", "method", "shots", "shots from split", "LoRA r", "alpha", "learning rate",
               "epochs", "seed", "optimizer steps", "task tokens", "general tokens"]
    note = ("One LoRA adapter per task, trained on that task's training documents (never on the split it is "
            "scored on) and used only for that task's requests.")
    return note + "\n\n" + _table(rows, headers)


def _prompts(runs: list[ScoredRun]) -> str:
    parts = []
    for run in runs:
        for task in run.tasks:
            config = run.results.get("configs", {}).get(task, {})
            shown = {key: config.get(key) for key in ("description", "doc_to_text", "doc_to_choice", "doc_to_target",
                                                      "target_delimiter") if config.get(key) not in (None, "")}
            anchor = run.adapters.get(task, {}).get("anchor")
            if anchor:
                shown["anchor (TELL, before every request)"] = anchor
            parts.append(f"**{task}**\n\n" + "\n".join(f"- {key}: `{value!r}`" for key, value in shown.items()))
    return "\n\n".join(parts)


def _seeds_and_versions(runs: list[ScoredRun], artifacts: list["Artifact"]) -> str:
    run = runs[0]
    config, spec = run.results["config"], run.spec
    seeds = [["prune_seed", spec.get("prune_seed", "")], ["adapt_seed", spec.get("adapt_seed", "")]]
    seeds += [[f"lm-eval {name}", config.get(name, "")] for name in SEEDS]
    torch = TORCH_VERSION.search(run.results.get("pretty_env_info") or "")
    peft = next((read_json(a.folder / "adapter_config.json") or {} for a in artifacts if a.kind == "adapter"), {})
    versions = [["tailored-harness", run.tailored.get("version", "")], ["lm-eval", run.results.get("lm_eval_version", "")],
                ["transformers", run.results.get("transformers_version", "")], ["torch", torch[1] if torch else ""],
                ["peft", peft.get("peft_version", "")]]
    return _table(seeds, ["seed", "value"]) + "\n\n" + _table(versions, ["library", "version"])


def _artifacts(artifacts: list["Artifact"], included: bool) -> str:
    rows = [[a.kind, a.task or "", f"`{a.fingerprint}`", f"`{a.packaged_path if included else a.folder}`"]
            for a in artifacts]
    where = "in this package" if included else "in the cache they were scored from (not copied: no --include-weights)"
    return (f"The weights scored, {where}. Every file of them and of this package is listed with its size and "
            "sha256 in `manifest.json`; `tailored verify-submission <package>` rechecks them.\n\n"
            + _table(rows, ["artifact", "task", "fingerprint", "path"]))


def command(run: ScoredRun) -> str:
    """The ``lm_eval`` command that reproduces a run (model arguments as the run recorded them)."""
    args = run.results["config"].get("model_args")
    if isinstance(args, dict):
        args = ",".join(f"{key}={value}" for key, value in args.items())
    limit = run.results["config"].get("limit")
    return (f"lm_eval --model tailored --model_args {args} --tasks {','.join(run.tasks)}"
            + (f" --limit {limit:g}" if isinstance(limit, (int, float)) else "") + " --log_samples --output_path out")


def body(runs: list[ScoredRun], model_name: str, base_model: str | None, artifacts: list["Artifact"],
         included: bool) -> str:
    """The card's Markdown below its metadata."""
    base = base_model or runs[0].tailored["pretrained"]
    sections = [
        f"# {model_name}",
        f"`{base}` evaluated with lm-evaluation-harness through the "
        f"[tailored-harness](https://pypi.org/project/tailored-harness/) plugin (`--model tailored`)"
        + (", structurally pruned" if runs[0].pruning else "")
        + (" and adapted per task with LoRA." if any(r.adapters for r in runs) else "."),
        "## Results", _results(runs),
        "## Recipe", "### Pruning", _pruning(runs[0], artifacts),
        "### Adapters", _adapters(runs, artifacts),
        "### Prompts", _prompts(runs),
        "### Seeds and versions", _seeds_and_versions(runs, artifacts),
        "## Reproduce", "\n\n".join(f"```\n{command(run)}\n```" for run in runs),
        "## Artifacts", _artifacts(artifacts, included),
    ]
    return "\n\n".join(sections) + "\n"
