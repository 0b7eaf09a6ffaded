"""``--model tailored``: lm-eval's LM interface, routed per task onto a scoring backend.

The scoring itself is lm-eval's (``HFLM`` today). What this class adds is the plumbing later stages
need: each request's ``Instance.task_name`` is mapped by the backend to a route (the adaptation stage
gives each task its own adapter), requests are scored route by route, and results come back in the
order the evaluator sent them. Everything the plugin reports goes under one key, ``tailored``, of the results
``config``.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Callable, Hashable

from lm_eval.api.model import LM

from tailored_harness import __version__
from tailored_harness.core.errors import TailoredError, install_excepthook
from tailored_harness.lmeval.ranks import launched_world_size
from tailored_harness.lmeval.startup import MODEL_NAME
from tailored_harness.models.modeling_tailored import register as register_tailored_models
from tailored_harness.spec.model import ModelSpec

if TYPE_CHECKING:
    from lm_eval.api.instance import Instance

    from tailored_harness.backends.base import Backend

logger = logging.getLogger(__name__)

register_tailored_models()  # `--model tailored` and `--model hf` load per-layer-width checkpoints without remote code

METADATA_KEY = MODEL_NAME  # what the plugin adds to the results config sits under the model's own name

USE_CACHE_REFUSAL = (
    "--use_cache is not supported: lm-eval keys its response cache by request text only, not by "
    "model, pruning or adapter, so a cache filled by another model would be reused silently. "
    "Drop --use_cache (pruned checkpoints and adapters are cached by content already)."
)


def share_lm_eval_logging() -> None:
    """Show the plugin's log lines (pruning, cache reuse) the way lm-eval shows its own, at its level."""
    ours, theirs = logging.getLogger("tailored_harness"), logging.getLogger("lm_eval")
    if ours.handlers or not theirs.handlers:
        return
    for handler in theirs.handlers:
        ours.addHandler(handler)
    ours.setLevel(theirs.level)
    ours.propagate = False


def route_by_task(
    requests: list["Instance"],
    route: Callable[[str | None], Hashable],
    score: Callable[[Hashable, list["Instance"]], list],
) -> list:
    """Score ``requests`` by route and return the results in the original order.

    ``route(task_name)`` maps each ``Instance.task_name`` to a route key (the adapter that task
    uses, say); ``score(key, requests)`` is called once per distinct key, in order of first
    appearance, with that key's requests in their original relative order, and must return one
    result per request. Tasks sharing a key are scored in one call, so the backend batches them
    exactly as lm-eval's own model would (same padding, bit-identical scores).
    """
    groups: dict[Hashable, list[int]] = {}
    keys: dict[str | None, Hashable] = {}
    for index, request in enumerate(requests):
        task_name = request.task_name
        if task_name not in keys:
            keys[task_name] = route(task_name)
        groups.setdefault(keys[task_name], []).append(index)
    results: list[Any] = [None] * len(requests)
    for key, indices in groups.items():
        answers = score(key, [requests[i] for i in indices])
        if len(answers) != len(indices):
            raise RuntimeError(f"route {key!r}: backend returned {len(answers)} results for {len(indices)} requests")
        for index, answer in zip(indices, answers):
            results[index] = answer
    return results


class TailoredLM(LM):
    """lm-eval model ``tailored``: see the module docstring. Construct it with ``model_args`` keys."""

    def __init__(self, **model_args: Any) -> None:
        super().__init__()
        from tailored_harness.backends import backend_class

        share_lm_eval_logging()
        install_excepthook()  # a bad model_args value ends as one line, also when the start-up hook is off

        self.spec = ModelSpec.from_model_args(model_args)
        self.backend: Backend = backend_class(self.spec.backend)(self.spec)
        self._prepared = False
        self._ranks = None  # the launcher's group, when the wrapped model does not shard by itself
        if launched_world_size() > 1 and self._inner.world_size == 1:
            from tailored_harness.lmeval.ranks import Ranks

            self._ranks = Ranks()
            logger.info("data parallel: rank %d of %d", self._ranks.rank, self._ranks.world_size)

    def _prepare(self) -> None:
        """Once, before the first request: let the backend prune (or adapt) with the run's tasks at hand."""
        if self._prepared:
            return
        from tailored_harness.lmeval.run_context import current_tasks

        tasks = current_tasks()
        adapt = self.spec.adapt_spec()
        if adapt is not None and tasks and self.spec.recovery_spec() is None:  # before anything is pruned, trained or written to the cache
            from tailored_harness.adapt.shots import check_tasks

            check_tasks(tasks, adapt.shots)
        self.backend.prepare(tasks)
        self._prepared = True

    # ------------------------------------------------------------------ scoring, routed per task
    def _routed(self, method: str, requests: list["Instance"], **kwargs: Any) -> list:
        self._prepare()
        self.backend.built.rewrite(requests)  # the chosen template, TELL's anchor, the per-input picks

        def score(key, routed_requests):
            with self.backend.activate(key) as lm:
                return getattr(lm, method)(routed_requests, **kwargs)

        return route_by_task(requests, self.backend.route, score)

    def loglikelihood(self, requests, disable_tqdm: bool = False):
        return self._routed("loglikelihood", requests, disable_tqdm=disable_tqdm)

    def loglikelihood_rolling(self, requests, disable_tqdm: bool = False):
        return self._routed("loglikelihood_rolling", requests, disable_tqdm=disable_tqdm)

    def generate_until(self, requests, disable_tqdm: bool = False):
        return self._routed("generate_until", requests, disable_tqdm=disable_tqdm)

    def annotate_samples(self, samples: dict[str, list[dict[str, Any]]]) -> None:
        """Add the plugin's per-document record (``tailored.prompt_selection``) to lm-eval's logged samples;
        the start-up hook calls it when ``evaluate`` returns them (``--log_samples``)."""
        self.backend.built.annotate(samples)

    # ------------------------------------------------------------------ lm-eval plumbing
    def set_cache_hook(self, cache_hook) -> None:
        if getattr(cache_hook, "dbdict", None) is not None:
            raise TailoredError(USE_CACHE_REFUSAL)
        super().set_cache_hook(cache_hook)

    @property
    def _inner(self) -> LM:
        return self.backend.default_lm

    @property
    def tokenizer(self):
        return self._inner.tokenizer

    @property
    def tokenizer_name(self) -> str:
        return self._inner.tokenizer_name

    def chat_template(self, chat_template: bool | str = False) -> str | None:
        return self._inner.chat_template(chat_template)

    def apply_chat_template(self, chat_history, add_generation_prompt: bool = True) -> str:
        return self._inner.apply_chat_template(chat_history, add_generation_prompt=add_generation_prompt)

    @property
    def eot_token_id(self):
        return self._inner.eot_token_id

    @property
    def max_length(self):
        return self._inner.max_length

    @property
    def device(self):
        return self._inner.device

    @property
    def _group(self):
        """Whoever shards this run: the launcher's group (:mod:`.ranks`) or the wrapped model."""
        return self._ranks or self._inner

    @property
    def rank(self) -> int:
        return self._group.rank

    @property
    def world_size(self) -> int:
        return self._group.world_size

    def all_gather(self, tensor):
        return self._group.all_gather(tensor)

    def gather_object(self, obj, dst=0):
        return self._group.gather_object(obj, dst=dst)

    def barrier(self) -> None:
        self._group.barrier()

    @property
    def batch_sizes(self) -> dict:
        return getattr(self._inner, "batch_sizes", {})

    def get_model_info(self) -> dict[str, Any]:
        """lm-eval's model info for the wrapped model, plus the plugin's own under ``tailored``."""
        base = self._inner.get_model_info() if hasattr(self._inner, "get_model_info") else {}
        base[METADATA_KEY] = {
            "version": __version__,
            "spec": self.spec.to_dict(),
            "spec_fingerprint": self.spec.fingerprint(),
            **self.backend.info(),
        }
        return base
