"""``backend=hf``: Hugging Face transformers scoring through lm-eval's own ``HFLM``, with pruning
and per-task adapters built (or found in the cache) on the model in memory before the first request.

Weights are read when a stage needs them (:mod:`.deferred`): with pruning on, the dense model is
loaded only when its pruned checkpoint is not cached yet, so a repeated run reads the checkpoint
alone. As vLLM's workshop (``scoring=False``) nothing is loaded that no training needs.
"""

from __future__ import annotations

import contextlib
import logging
from typing import TYPE_CHECKING, Any, Iterator

from tailored_harness.backends.base import Backend, check_model_source, resolve_device, resolve_pretrained
from tailored_harness.backends.built import Built
from tailored_harness.core.errors import TailoredError, first_line

if TYPE_CHECKING:
    from lm_eval.api.model import LM

    from tailored_harness.spec.model import ModelSpec

logger = logging.getLogger(__name__)


class HFBackend(Backend):
    """Hugging Face transformers scoring through lm-eval's own ``HFLM``."""

    name = "hf"

    def __init__(self, spec: "ModelSpec", scoring: bool = True) -> None:
        """``scoring=False``: the backend only prunes and trains for another (vLLM) that scores, so
        no weights are read unless pruning or training needs them."""
        self.spec = spec
        self.scoring = scoring
        self.device = resolve_device(spec.device)
        self.pruning: dict[str, Any] | None = None
        self.adapter_names: dict[str, str] = {}  # task -> PEFT adapter name of the adapters in memory
        self.peft_model = None
        #: QLoRA's 4-bit base (a resolved :class:`~tailored_harness.adapt.quant.QuantSpec`), or ``None``
        self.quant = _quant(spec, self.device)
        #: under QLoRA on vLLM: the dequantized base folder the adapters are merged into (:meth:`served_folder`)
        self.dequantized: str | None = None
        #: the folder or hub id loaded: ``pretrained``, or the folder a GGUF file was converted into
        self.pretrained = resolve_pretrained(spec)
        tokenizer = check_model_source(spec.tokenizer, "tokenizer") if spec.tokenizer else None
        # with pruning on, the dense weights are wanted only if the pruned checkpoint is not cached
        defer = not scoring or spec.prune_spec() is not None
        # the dense weights are pruned in full precision; what is scored (and adapted) is quantized
        self.lm = self._load(self.pretrained, tokenizer, defer=defer, quantized=spec.prune_spec() is None)

    def _load(self, pretrained: str, tokenizer: str | None, revision: str | None = None, defer: bool = False,
              quantized: bool = False) -> "LM":
        """lm-eval's ``HFLM`` on ``pretrained`` (a :class:`~.deferred.DeferredHFLM`: with ``defer``, its
        weights are read by :meth:`weights`, when first needed); ``quantized``: in 4 bits under QLoRA."""
        from tailored_harness.backends.deferred import DeferredHFLM

        spec = self.spec
        with self._loading(pretrained):
            return DeferredHFLM(
                defer=defer,
                pretrained=pretrained,
                tokenizer=tokenizer,
                revision=revision or spec.revision,
                dtype=spec.dtype,
                device=self.device,
                batch_size=spec.batch_size,
                max_batch_size=spec.max_batch_size,
                max_length=spec.max_length,
                trust_remote_code=spec.trust_remote_code,
                quantization=self.quant.bnb_config() if quantized and self.quant else None,
            )

    @staticmethod
    @contextlib.contextmanager
    def _loading(pretrained: str) -> Iterator[None]:
        """Loading errors as one line naming ``pretrained``."""
        from huggingface_hub.errors import HFValidationError

        try:
            yield
        except (OSError, HFValidationError) as err:
            message = first_line(err)
            raise TailoredError(f"could not load pretrained={pretrained!r}: {message}") from err
        except RuntimeError as err:
            message = first_line(err)
            if "mismatch" in str(err):  # transformers refuses weights of other shapes than config.json says
                raise TailoredError(f"could not load pretrained={pretrained!r}: its weights do not fit its "
                                    f"config.json (transformers: {message}); use the config the weights were "
                                    f"saved with") from err
            raise TailoredError(f"could not load pretrained={pretrained!r}: {type(err).__name__}: {message}") from err

    def weights(self):
        """The model of ``self.lm``, its weights read now if they were not yet."""
        with self._loading(self.lm.pretrained):
            return self.lm.materialize()

    def precision(self) -> str | None:
        """How training computes on ``self.lm``'s model (:func:`tailored_harness.adapt.train.precision`),
        told without reading its weights when they are not loaded; ``None`` when only they could tell."""
        from tailored_harness.adapt import train

        if self.lm.materialized:
            return train.precision(self.lm.model)
        return train.expected_precision(self.lm.device.type, self.spec.dtype, getattr(self.lm.config, "dtype", None),
                                        self.quant)

    def prepare(self, tasks: dict[str, Any] | None) -> None:
        """Build the run's artifacts (:meth:`build`) and hold every adapter in one PEFT model to score with."""
        self.built = self.build(tasks, serve=True)

    def build(self, tasks: dict[str, Any] | None, serve: bool) -> Built:
        """The pipeline, before the first request: prune, then choose templates and adapt, then select
        each document's prompts, each stage from the cache when it can. ``serve``: load the adapters
        into the model in memory to score with (vLLM's workshop only does so when prompts are selected,
        which needs the adapted model; otherwise vLLM serves the saved folders)."""
        if self.scoring or self.spec.adapt_spec() is not None:
            self.prune_and_load(tasks)  # the checkpoint is scored here, or adapters train on it
        else:
            self.prune_only(tasks)  # vLLM scores the saved checkpoint: nothing of it is read here
        built = Built(pruning=self.pruning)
        if self.spec.adapt_spec() is None:
            return built
        model, built = self.train_adapters(tasks, built)
        selecting = self.spec.select_spec().select != "none"
        if built.adapters and (serve or selecting):
            from tailored_harness.adapt import pipeline

            model = self.weights() if model is None else model
            self.peft_model, self.adapter_names = pipeline.load_adapters(model, built.adapters)
            self.lm._model = self.peft_model
        if selecting and built.adapters:
            built = built.but(selections=self.select_prompts(tasks, built))
        return built

    def prune_and_load(self, tasks: dict[str, Any] | None) -> None:
        """The dense model is pruned in place (loaded first, unless the pruned checkpoint is cached),
        saved to the cache and dropped; the saved folder is then loaded like any checkpoint, so what is
        scored is exactly what was saved (as a workshop, its weights are read only if training needs them)."""
        if self.prune_only(tasks):
            tokenizer = self.spec.tokenizer or self.pretrained
            self.lm = self._load(self.pruning["checkpoint"], check_model_source(tokenizer, "tokenizer"),
                                 revision=self.spec.revision, defer=not self.scoring, quantized=True)

    def prune_only(self, tasks: dict[str, Any] | None) -> bool:
        """Prune (or find in the cache, without reading the dense weights) and drop the model in memory;
        ``self.pruning`` describes the saved checkpoint. Returns False, and does nothing, when the spec
        asks for no pruning."""
        prune = self.spec.prune_spec()
        if prune is None:
            return False
        import gc

        from tailored_harness.prune import checkpoint, pipeline

        base = checkpoint.base_identity(self.pretrained, self.spec.revision)
        folder, reused, report = pipeline.prune_loaded(self.weights, self.lm.tokenizer, prune, base, tasks)
        if reused:
            logger.info("reusing cached pruned checkpoint %s", folder)
        logger.info("%s", checkpoint.describe(report))
        self.lm = None
        gc.collect()
        params = report["parameters"]
        self.pruning = {"checkpoint": str(folder), "fingerprint": report["fingerprint"], "reused": reused,
                        "model_type": report["model_type"], "parameters_before": params["before"]["total"],
                        "parameters_after": params["after"]["total"]}
        return True

    def train_adapters(self, tasks: dict[str, Any] | None, built: Built) -> tuple[Any, Built]:
        """Choose each task's template (``prompt=best``), then find or train one adapter per task on the
        model being scored (pruned, if asked). Returns the model, free of LoRA layers again (``None``
        when every adapter was cached and its weights were never read), and ``built`` with the
        adapters, the template choices, TELL's anchors and the tasks scored without an adapter."""
        from tailored_harness.adapt import pipeline

        identity = pipeline.model_identity(self.scored_folder, self.spec.revision)
        model, adapt, prompt, tokenizer = None, self.spec.adapt_spec(), self.spec.prompt_spec(), self.lm.tokenizer
        choices: dict[str, Any] = {}
        if prompt.choice == "best" and tasks:
            from tailored_harness.select import best

            model, choices = best.choose_templates(self.weights(), tokenizer, tasks, adapt, prompt, identity,
                                                   self.score_with)
            tasks = {**tasks, **{name: choice.variant for name, choice in choices.items()}}
        method = self.method(tasks)
        unadapted = pipeline.unadapted(tasks, method)
        adapters, plans = pipeline.find_adapters(tokenizer, tasks, adapt, identity, self.precision(), method)
        if adapters is None:  # something to train: the weights are needed
            model = self.weights() if model is None else model
            model, adapters = pipeline.adapt_tasks(model, tokenizer, pipeline.trainable(tasks, False, method), adapt,
                                                   identity, method=method, plans=plans)
        anchors = {name: (adapter.report["anchor"], tasks[name]) for name, adapter in adapters.items()
                   if adapter.report.get("anchor")}
        return model, built.but(adapters=adapters, prompt_choices=choices, anchors=anchors, unadapted=unadapted)

    def method(self, tasks: dict[str, Any] | None):
        """The adaptation method ``model_args`` ask for (:mod:`tailored_harness.adapt.methods`)."""
        from tailored_harness.adapt.recovery import adaptation_method

        return adaptation_method(self.spec.adapt_method, self.spec.tell_spec(), tasks, self.spec.recovery_spec())

    def select_prompts(self, tasks: dict[str, Any] | None, built: Built) -> dict[str, Any]:
        """``prompt_select``: pick pool entries for every document the run scores, per adapted task, on
        the model with that task's adapter active (see :mod:`tailored_harness.select.per_input`);
        ``{task: TaskSelection}``."""
        from tailored_harness.adapt import pipeline
        from tailored_harness.select import per_input

        spec = self.spec.select_spec()
        identity = pipeline.model_identity(self.scored_folder, self.spec.revision)
        selections = {}
        for name, task in sorted((tasks or {}).items()):
            if name not in built.adapters:
                continue
            docs = per_input.scored_documents(task)
            if not docs:
                raise TailoredError(f"prompt_select={spec.select} picks prompts for the documents a run scores; task "
                                    f"{name!r} has no requests yet (run it through lm_eval or simple_evaluate)")
            scored = built.prompt_choices[name].variant if name in built.prompt_choices else task
            with self.activate(self.adapter_names[name]) as lm:
                bench = per_input.Workbench(lm, self.peft_model, lm.tokenizer, scored, name, identity,
                                            built.adapters[name].report["fingerprint"])
                selections[name] = per_input.select_for_task(bench, docs, spec, self.spec.adapt_spec())
        return selections

    def score_with(self, model, task, docs) -> list[float]:
        """``task``'s metric for each of ``docs``, scored by lm-eval's ``HFLM`` on ``model`` (the model in
        memory with a fold's adapter): how ``prompt=best`` compares templates."""
        from tailored_harness.taskio.scoring import score_documents

        previous, self.lm._model = self.lm._model, model
        try:
            return score_documents(self.lm, task, docs)
        finally:
            self.lm._model = previous

    @property
    def scored_folder(self) -> str:
        """The folder (or hub id) whose weights are scored: the pruned checkpoint, or ``pretrained``."""
        return self.pruning["checkpoint"] if self.pruning else self.pretrained

    def served_folder(self) -> str:
        """The folder an engine without 4-bit LoRA scores: :attr:`scored_folder`, or under QLoRA its
        dequantized twin (:func:`tailored_harness.adapt.merge.dequantized_base`), which computes what
        the 4-bit base the adapters trained on computes."""
        if self.quant is None:
            return self.scored_folder
        from tailored_harness.adapt import merge, pipeline

        identity = pipeline.model_identity(self.scored_folder, self.spec.revision)
        revision = self.spec.revision if self.scored_folder == self.pretrained else None
        folder, reused = merge.dequantized_base(self.scored_folder, self.quant, identity,
                                                self.spec.tokenizer or self.pretrained, self.spec.dtype,
                                                self.spec.trust_remote_code, revision)
        logger.info("%s dequantized %s base: %s", "reusing" if reused else "wrote", self.quant.label(), folder)
        self.dequantized = str(folder)
        return self.dequantized

    def quant_info(self) -> dict[str, Any]:
        """``{"adapt_quant": ...}``: the 4-bit base adapters trained on and what was scored; nothing without QLoRA."""
        if self.quant is None:
            return {}
        if self.dequantized:  # an engine without 4-bit LoRA scored the dequantized twin
            return {"adapt_quant": {**self.quant.to_dict(), "scored_on": "dequantized", "dequantized": self.dequantized}}
        return {"adapt_quant": {**self.quant.to_dict(), "scored_on": "4-bit"}}

    def route(self, task_name: str | None) -> str:
        return self.adapter_names.get(task_name, self.BASE_ROUTE)

    def lm_for_route(self, key: str) -> "LM":
        if key != self.BASE_ROUTE and key not in self.adapter_names.values():
            raise KeyError(f"unknown route {key!r}")
        return self.lm

    @contextlib.contextmanager
    def activate(self, key: str) -> Iterator["LM"]:
        lm = self.lm_for_route(key)
        if self.peft_model is None:
            yield lm
        elif key == self.BASE_ROUTE:
            with self.peft_model.disable_adapter():
                yield lm
        else:
            self.peft_model.set_adapter(key)
            yield lm

    def info(self) -> dict[str, Any]:
        return {"backend": self.name, "device": self.device, "pretrained": self.pretrained, **self.built_info(),
                **self.quant_info()}


def _quant(spec: "ModelSpec", device: str):
    """The resolved 4-bit spec under ``adapt_quant`` with adapters to train, else ``None``; refuses in
    one line, before any weights load, when bitsandbytes cannot run it."""
    quant = spec.quant_spec()
    if not quant.active or spec.adapt_spec() is None:
        return None
    from tailored_harness.adapt.quant import require_bitsandbytes

    require_bitsandbytes(quant.scheme)
    return quant.resolved("cuda" if str(device).startswith("cuda") else "cpu")
