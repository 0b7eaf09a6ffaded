"""Interpreter start-up hook that registers the plugin with lm-eval 0.4.13.

lm-eval 0.4.13 does not scan entry points, so ``tailored_harness_hook.pth`` (shipped in the wheel,
executed by ``site`` at every interpreter start) calls :func:`install`. The hook must stay cheap and
side-effect free until lm-eval is actually used:

* it imports neither torch nor lm_eval; it only puts a finder on ``sys.meta_path``;
* when ``lm_eval.api.registry`` is imported, it first registers lm-eval's own built-in models
  (``get_model`` only does that while the registry is empty, so registering ``tailored`` alone
  would hide ``hf``, ``dummy`` and the rest) and then ``tailored`` as a lazy placeholder, and
  chains the ``sys.excepthook`` that prints a :class:`~tailored_harness.core.errors.TailoredError`
  as one line (the only process-wide change the plugin makes, and only in processes that load lm-eval);
* when ``lm_eval.tasks.manager`` is imported, it wraps ``TaskManager.__init__`` so that the plugin's
  task folder is indexed after lm-eval's built-in tasks and before any ``--include_path``: later
  paths override earlier ones in lm-eval's index, so a user's own task of the same name still wins;
* when ``lm_eval.evaluator`` is imported, it wraps ``evaluate`` so that the model can reach the
  run's task objects from inside its first scoring call (:mod:`tailored_harness.lmeval.run_context`),
  and, when it returns logged samples, lets a model with ``annotate_samples`` add its per-document
  record to them (``--model tailored``'s prompt selection);
* ``TAILORED_HARNESS_DISABLE_HOOK=1`` turns all of it off.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import os
import sys

DISABLE_ENV = "TAILORED_HARNESS_DISABLE_HOOK"
MODEL_NAME = "tailored"
MODEL_TARGET = "tailored_harness.lmeval.model:TailoredLM"

_REGISTRY_MODULE = "lm_eval.api.registry"
_MANAGER_MODULE = "lm_eval.tasks.manager"
_EVALUATOR_MODULE = "lm_eval.evaluator"
_CONFIG_MODULE = "lm_eval.config.evaluate_config"


def hook_disabled() -> bool:
    """True when the user switched the start-up hook off through ``TAILORED_HARNESS_DISABLE_HOOK``."""
    return os.environ.get(DISABLE_ENV, "").strip().lower() not in ("", "0", "false", "no")


def register_model(registry_module) -> None:
    """Register lm-eval's built-in models, then ``tailored``, in ``registry_module.model_registry``;
    and print the plugin's errors as one line in this (lm-eval) process."""
    import importlib

    importlib.import_module("lm_eval.models")  # fills the registry with lazy built-in placeholders

    from tailored_harness.core.errors import install_excepthook

    install_excepthook()

    registry = registry_module.model_registry
    if MODEL_NAME not in registry:
        registry.register(MODEL_NAME, target=MODEL_TARGET)


def patch_task_manager(manager_module) -> None:
    """Make every ``TaskManager`` index the plugin's tasks between the built-ins and ``include_path``."""
    from tailored_harness.core.paths import tasks_dir

    cls = manager_module.TaskManager
    if getattr(cls.__init__, "_tailored_patched", False):
        return
    original = cls.__init__

    def __init__(self, verbosity=None, include_path=None, include_defaults=True, metadata=None):
        user_paths = include_path
        if include_defaults:
            if include_path is None:
                extra = []
            elif isinstance(include_path, (list, tuple)):
                extra = list(include_path)
            else:
                extra = [include_path]
            include_path = [str(tasks_dir()), *extra]
        original(self, verbosity, include_path, include_defaults, metadata)
        self.include_path = user_paths  # report what the user asked for, not our addition

    __init__._tailored_patched = True
    __init__.__wrapped__ = original
    __init__.__doc__ = original.__doc__
    cls.__init__ = __init__


def patch_evaluator(evaluator_module) -> None:
    """Wrap ``evaluate`` so the run's task objects are reachable from the model (see ``run_context``) and
    the model can annotate the logged samples it returns."""
    import functools

    original = evaluator_module.evaluate
    if getattr(original, "_tailored_patched", False):
        return

    @functools.wraps(original)
    def evaluate(lm, task_dict, *args, **kwargs):
        from tailored_harness.lmeval.run_context import tasks_scope

        with tasks_scope(task_dict):
            results = original(lm, task_dict, *args, **kwargs)
        annotate = getattr(lm, "annotate_samples", None)  # the plugin's model adds its per-document record
        if annotate is not None and isinstance(results, dict) and results.get("samples"):
            annotate(results["samples"])
        return results

    evaluate._tailored_patched = True
    evaluator_module.evaluate = evaluate


def patch_task_check(config_module) -> None:
    """Under ``--model tailored``, lm-eval's refusal of an unknown ``--tasks`` name (a ``ValueError`` with a
    traceback) becomes the plugin's one-line error, naming the value and where the valid names are."""
    cls = config_module.EvaluatorConfig
    original = cls.process_tasks
    if getattr(original, "_tailored_patched", False):
        return

    def process_tasks(self, *args, **kwargs):
        from tailored_harness.core.errors import TailoredError

        try:
            return original(self, *args, **kwargs)
        except TailoredError:
            raise
        except ValueError as err:
            if self.model != MODEL_NAME:
                raise
            given = self.tasks if isinstance(self.tasks, str) else ",".join(map(str, self.tasks))
            raise TailoredError(f"--tasks {given}: {err}; `lm_eval ls tasks` lists the valid names "
                                f"(with the plugin's *_tailored and synth_* tasks)") from err

    process_tasks._tailored_patched = True
    process_tasks.__wrapped__ = original
    cls.process_tasks = process_tasks


_POST_IMPORT = {_REGISTRY_MODULE: register_model, _MANAGER_MODULE: patch_task_manager, _EVALUATOR_MODULE: patch_evaluator,
                _CONFIG_MODULE: patch_task_check}


class _PostImportLoader(importlib.abc.Loader):
    """Runs the real loader, then the plugin's registration step for that module."""

    def __init__(self, loader, action):
        self._loader = loader
        self._action = action

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        self._loader.exec_module(module)
        self._action(module)

    def __getattr__(self, name):
        # get_source, get_code, get_filename, is_package, ...: tracebacks and inspect need them.
        return getattr(self._loader, name)


class _LmEvalFinder(importlib.abc.MetaPathFinder):
    """Watches for the two lm-eval modules the plugin needs to extend; ignores everything else."""

    def find_spec(self, fullname, path, target=None):
        action = _POST_IMPORT.get(fullname)
        if action is None:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None:
            return None
        spec.loader = _PostImportLoader(spec.loader, action)
        return spec


def install() -> None:
    """Put the finder on ``sys.meta_path`` (idempotent; a no-op when the hook is disabled)."""
    if hook_disabled():
        return
    if any(isinstance(finder, _LmEvalFinder) for finder in sys.meta_path):
        return
    for name, action in _POST_IMPORT.items():
        module = sys.modules.get(name)
        if module is not None:  # lm-eval imported before us (e.g. install() called late)
            action(module)
    sys.meta_path.insert(0, _LmEvalFinder())
