"""The package layout: one folder per stage, imports that point one way, names that resolve, and
checkpoints written before the folders existed that still load."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from conftest import REPO_ROOT
from prune_helpers import load_without_plugin

pytestmark = pytest.mark.numeric  # rerun by .ci/run on torch's default kernels (tests/numeric.py)

PACKAGE = "tailored_harness"
#: The stage folders from the bottom up. A module may import from its own folder and from folders of
#: lower rows, never from its row or above: docs/development.md's "Layout" section lists them in this order.
LAYERS = (
    ("core",),
    ("taskio", "models"),
    ("prune",),
    ("adapt",),
    ("select",),
    ("spec",),
    ("backends",),
    ("lmeval",),
    ("suite",),
    ("submit",),
    ("cli",),
)
PRE_LAYOUT = REPO_ROOT / "tests" / "data" / "pre_layout_checkpoint"


def _modules() -> dict[str, Path]:
    root = REPO_ROOT / PACKAGE
    found = {}
    for path in root.rglob("*.py"):
        parts = path.relative_to(root.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The package's modules that ``name`` imports anywhere in its source (in functions, under
    ``TYPE_CHECKING``: every import counts), resolved to module names."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([node.module] if node.module else []))
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names]
        else:
            continue
        for target in targets:
            while target and target not in modules:  # `import a.b.c` names module a.b.c or a package above it
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(name, path, modules) for name, path in modules.items()}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of ``graph`` as a path that returns to its start, or ``None``."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (found := visit(start)):
            return found
    return None


def _folder(module: str) -> str | None:
    """The stage folder of ``module``, or ``None`` for the package root."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and (REPO_ROOT / PACKAGE / parts[1]).is_dir() else None


def test_the_cycle_finder_finds_a_cycle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycle_among_the_package_modules():
    graph = _graph()
    assert len(graph) > 40 and "tailored_harness.spec.model" in graph["tailored_harness.lmeval.model"]
    cycle = _cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_imports_point_down_the_stage_layers():
    rank = {folder: row for row, folders in enumerate(LAYERS) for folder in folders}
    folders = {p.name for p in (REPO_ROOT / PACKAGE).iterdir() if p.is_dir() and (p / "__init__.py").is_file()}
    assert folders == set(rank), f"folders without a layer (or layers without a folder): {folders ^ set(rank)}"
    upward = []
    for module, targets in _graph().items():
        source = _folder(module)
        for target in targets:
            dest = _folder(target)
            if source is None or dest is None or dest == source:
                continue  # the package root (version only) and imports within one folder
            if rank[dest] >= rank[source]:
                upward.append(f"{module} -> {target}")
    assert not upward, "imports that do not point down the layers: " + ", ".join(sorted(upward))


def test_no_top_level_modules_beside_the_stage_folders():
    top = sorted(p.name for p in (REPO_ROOT / PACKAGE).glob("*.py"))
    assert top == ["__init__.py"]


def test_documented_layout_has_one_line_per_folder_in_layer_order():
    text = (REPO_ROOT / "docs" / "development.md").read_text()
    section = text.split("\n## Layout\n", 1)[1].split("\n## ", 1)[0]
    listed = re.findall(rf"^- `{PACKAGE}/(\w+)/`", section, flags=re.M)
    assert listed == [folder for row in LAYERS for folder in row]


def test_backends_and_adapter_strategies_resolve_by_name():
    from tailored_harness.backends import backend_class, strategy_class
    from tailored_harness.spec.backends import ADAPTER_STRATEGIES, BACKENDS, DEFAULT_ADAPTER_STRATEGY

    assert {name: backend_class(name).name for name in BACKENDS} == {name: name for name in BACKENDS}
    assert {name: strategy_class(name).name for name in ADAPTER_STRATEGIES} == {n: n for n in ADAPTER_STRATEGIES}
    assert DEFAULT_ADAPTER_STRATEGY in ADAPTER_STRATEGIES


def test_validating_a_spec_imports_no_backend():
    code = ("import sys\nfrom tailored_harness.spec.model import ModelSpec\n"
            "ModelSpec(pretrained='x', backend='vllm', max_model_len=64, adapter_strategy='native')\n"
            "print(sorted(m for m in sys.modules if m.startswith('tailored_harness.backends')), 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd="/", check=True)
    assert out.stdout.strip() == "[] False"


#: The stored logits were computed on another machine: CPU kernels are chosen by instruction set
#: (oneDNN with or without AMX), and they round differently, by up to a few float32 ulps.
OTHER_MACHINE_ATOL = 1e-5


def _expected():
    stored = torch.load(PRE_LAYOUT / "expected.pt")
    return stored["ids"], stored["logits"]


@pytest.mark.parametrize("remote_code", [False, True])
def test_checkpoint_written_before_the_move_scores_identically_with_the_plugin(remote_code):
    from transformers import AutoModelForCausalLM

    from tailored_harness.models.modeling_tailored import register

    register()
    folder = PRE_LAYOUT / "checkpoint"
    assert '"model_type": "tailored_llama"' in (folder / "config.json").read_text()
    model = AutoModelForCausalLM.from_pretrained(folder, trust_remote_code=remote_code).eval()
    ids, logits = _expected()
    with torch.no_grad():
        assert (model(input_ids=ids).logits - logits).abs().max() <= OTHER_MACHINE_ATOL
    assert type(model).__name__ == "TailoredLlamaForCausalLM"  # with remote code allowed, transformers may take either copy
    if not remote_code:
        assert type(model).__module__ == "tailored_harness.models.modeling_tailored"


def test_checkpoint_written_before_the_move_scores_identically_without_the_plugin(tmp_path):
    out = load_without_plugin(PRE_LAYOUT / "checkpoint", PRE_LAYOUT / "expected.pt", tmp_path, OTHER_MACHINE_ATOL)
    assert out == "loaded TailoredLlamaForCausalLM transformers_modules"
