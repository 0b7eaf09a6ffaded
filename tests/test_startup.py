"""The .pth start-up hook: lazy, keeps built-in models, switchable off, and entry points declared."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import subprocess
import sys
from pathlib import Path

from tailored_harness.core import paths
from tailored_harness.lmeval import startup


def _python(code: str, **env) -> str:
    import os

    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env={**os.environ, **env}, timeout=300, cwd="/"
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_interpreter_start_imports_neither_torch_nor_lm_eval():
    out = _python("import sys; print('torch' in sys.modules, 'lm_eval' in sys.modules, 'tailored_harness.lmeval.startup' in sys.modules)")
    # The third flag proves the hook did run at start-up (the .pth is installed), lazily.
    assert out == "False False True"


def test_tailored_and_every_builtin_model_resolve():
    out = _python(
        "from lm_eval.api.registry import get_model, model_registry\n"
        "from lm_eval.models import MODEL_MAPPING\n"
        "missing = sorted(set(MODEL_MAPPING) - set(model_registry.keys()))\n"
        "print(missing, get_model('tailored').__name__, get_model('hf').__name__, get_model('dummy').__name__)"
    )
    assert out == "[] TailoredLM HFLM DummyLM"


def test_off_switch_leaves_lm_eval_untouched():
    out = _python(
        "import sys\n"
        "from lm_eval.api.registry import get_model, model_registry\n"
        "from lm_eval.tasks.manager import TaskManager\n"
        "print(any(type(f).__name__ == '_LmEvalFinder' for f in sys.meta_path), 'tailored' in model_registry, get_model('hf').__name__,"
        " getattr(TaskManager.__init__, '_tailored_patched', False))",
        **{startup.DISABLE_ENV: "1"},
    )
    assert out == "False False HFLM False"


def test_hook_patches_task_manager_once():
    out = _python(
        "import tailored_harness.lmeval.startup as s\n"
        "from lm_eval.tasks import manager\n"
        "first = manager.TaskManager.__init__\n"
        "s.patch_task_manager(manager)\n"
        "print(first is manager.TaskManager.__init__, first._tailored_patched)"
    )
    assert out == "True True"


def test_entry_points_declared_for_plugin_scanning_lm_eval():
    models = {ep.name: ep for ep in importlib.metadata.entry_points(group="lm_eval.models")}
    assert models["tailored"].load().__name__ == "TailoredLM"
    tasks = {ep.name: ep for ep in importlib.metadata.entry_points(group="lm_eval.tasks")}
    # upstream PR #4015's shape: the value is a package name, resolved to its folder without a call
    assert tasks["tailored"].value == "tailored_harness.tasks"
    locations = importlib.util.find_spec(tasks["tailored"].value).submodule_search_locations
    task_dir = Path(list(locations)[0])
    assert task_dir == paths.tasks_dir()
    assert {p.name for p in task_dir.glob("*.yaml")} >= {"boolq_tailored.yaml", "piqa_tailored.yaml"}


def test_tasks_and_prompts_ship_inside_the_package():
    # Installed from a wheel, the data folders live inside the package, not in a checkout.
    assert paths.tasks_dir().parent == paths.package_dir()
    assert paths.prompts_dir().parent == paths.package_dir()
    assert (paths.prompts_dir() / "boolq.jinja").is_file()


def test_patched_modules_keep_their_source():
    out = _python(
        "import lm_eval.api.registry as r, lm_eval.tasks.manager as m\n"
        "print('def get_model' in r.__loader__.get_source(r.__name__),"
        " 'class TaskManager' in m.__loader__.get_source(m.__name__))"
    )
    assert out == "True True"
