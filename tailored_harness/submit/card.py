"""The leaderboard request file and the model card of a submission package.

The request file has the fields and the name of the Open LLM Leaderboard's request files
(``<org>/<model>_eval_request_<private>_<precision>_<weight_type>.json``). The card is a Hugging Face
model card built with ``huggingface_hub`` (``ModelCardData`` writes the YAML metadata and its
``model-index`` from ``EvalResult`` objects): the results, the base model, and the recipe read from
the artifacts themselves (``pruning.json``, each adapter's ``adaptation.json``).
"""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path
from typing import Any

from tailored_harness.core.errors import TailoredError
from tailored_harness.core.paths import read_json
from tailored_harness.submit.manifest import Artifact
from tailored_harness.submit.runs import ScoredRun, metrics, scored_split

#: The leaderboard's model types (its submission form's choices).
MODEL_TYPES = ("pretrained", "fine-tuned", "instruction-tuned", "RL-tuned")
UNKNOWN_LICENSE = "?"  # what the leaderboard writes when a model states no licence
HARNESS_URL = "https://github.com/EleutherAI/lm-evaluation-harness"
_ID_PART = re.compile(r"^[A-Za-z0-9][\w.-]*$")


@dataclasses.dataclass(frozen=True)
class Identity:
    """Who the package says the model is: its name, base model, licence and leaderboard model type."""

    model_name: str
    base_model: str | None
    license: str
    model_type: str

    def __post_init__(self) -> None:
        parts = self.model_name.split("/")
        if len(parts) > 2 or not all(_ID_PART.match(p) for p in parts):
            raise TailoredError(f"--model-name {self.model_name!r} must look like ORG/NAME (letters, digits, . _ -)")
        if self.model_type not in MODEL_TYPES:
            raise TailoredError(f"--model-type {self.model_type!r} is not one of {', '.join(MODEL_TYPES)}")


def known_base(pretrained: str) -> tuple[str | None, str | None]:
    """``(hub id, licence)`` of the base a run named: a folder converted from a GGUF file the plugin
    knows by its sha256 (``tailored real-model``) gives that model's hub id and licence; a hub id
    gives itself; a local folder otherwise gives nothing."""
    from tailored_harness.suite.real_models import MODELS

    folder = Path(pretrained)
    if folder.is_dir():
        record = read_json(folder / "gguf.json") or {}
        for model in MODELS.values():
            if record.get("sha256") == model.sha256:
                return model.hub_ids[0], model.license
        return None, None
    return (pretrained, None) if len(pretrained.split("/")) == 2 else (None, None)


def identity(runs: list[ScoredRun], model_name: str | None, base_model: str | None, license: str | None,
             model_type: str | None) -> Identity:
    """The package's :class:`Identity`: what the user gave, else what the runs tell."""
    run = runs[0]
    found_base, found_license = known_base(run.tailored["pretrained"])
    base = base_model or found_base
    if model_name is None:
        stem = (base or Path(run.tailored["pretrained"]).name).split("/")[-1]
        ratio = run.spec.get("prune_ratio") or 0
        model_name = f"local/{stem}-tailored" + (f"-p{round(100 * ratio)}" if run.pruning else "")
    adapted = any(r.adapters for r in runs)
    return Identity(model_name, base, license or found_license or UNKNOWN_LICENSE,
                    model_type or ("fine-tuned" if adapted else "pretrained"))


def _scored_config(run: ScoredRun, artifacts: list[Artifact]) -> dict[str, Any]:
    checkpoint = next((a.folder for a in artifacts if a.kind in ("pruned", "base")), None)
    return (read_json(checkpoint / "config.json") or {}) if checkpoint else {}


def request_entry(runs: list[ScoredRun], who: Identity, artifacts: list[Artifact], submitted: str) -> dict[str, Any]:
    """The leaderboard request of the package's model (``submitted``: UTC ``%Y-%m-%dT%H:%M:%SZ``)."""
    run = runs[0]
    pruning = run.pruning
    params = pruning["parameters_after"] if pruning else run.results["config"].get("model_num_parameters")
    return {
        "model": who.model_name, "base_model": who.base_model or "", "revision": run.spec.get("revision", "main"),
        "private": False, "precision": run.precision,
        "weight_type": "Adapter" if any(r.adapters for r in runs) else "Original",
        "params": round(params / 1e9, 3) if isinstance(params, (int, float)) and params > 0 else 0,
        "architectures": ",".join(_scored_config(run, artifacts).get("architectures") or []) or "?",
        "model_type": who.model_type, "status": "FINISHED", "submitted_time": submitted,
        "use_chat_template": any(bool(r.results.get("chat_template")) for r in runs), "license": who.license,
    }


def request_path(entry: dict[str, Any]) -> str:
    """Where the leaderboard keeps this request: ``<org>/<model>_eval_request_<private>_<precision>_<weight_type>.json``."""
    org, _, name = entry["model"].rpartition("/")
    filename = f"{name}_eval_request_{entry['private']}_{entry['precision']}_{entry['weight_type']}.json"
    return f"{org}/{filename}" if org else filename


def eval_results(runs: list[ScoredRun]) -> list:
    """One ``huggingface_hub.EvalResult`` per task and metric of the runs."""
    from huggingface_hub import EvalResult

    out = []
    for run in runs:
        for task, metric, value, _ in metrics(run):
            config = run.results.get("configs", {}).get(task, {})
            out.append(EvalResult(task_type="text-generation", task_name=task,
                                  dataset_type=config.get("dataset_path") or task, dataset_name=task,
                                  dataset_config=config.get("dataset_name"), dataset_split=scored_split(config),
                                  metric_type=metric, metric_name=metric, metric_value=value,
                                  source_name="lm-evaluation-harness (--model tailored)", source_url=HARNESS_URL))
    return out


def model_card(runs: list[ScoredRun], who: Identity, artifacts: list[Artifact], included: bool):
    """The package's ``huggingface_hub.ModelCard``: metadata with ``model-index``, then the body."""
    from huggingface_hub import ModelCard, ModelCardData

    from tailored_harness.submit.recipe import body

    data = ModelCardData(model_name=who.model_name, base_model=who.base_model,
                         license=None if who.license == UNKNOWN_LICENSE else who.license,
                         library_name="peft" if any(r.adapters for r in runs) else "transformers",
                         tags=["tailored-harness", "lm-eval", *(["pruned"] if runs[0].pruning else [])],
                         eval_results=eval_results(runs))
    return ModelCard(f"---\n{data.to_yaml()}\n---\n\n{body(runs, who.model_name, who.base_model, artifacts, included)}")


def dumps(entry: dict[str, Any]) -> str:
    return json.dumps(entry, indent=2) + "\n"
