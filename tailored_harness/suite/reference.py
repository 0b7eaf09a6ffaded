"""The reference model: a small LLaMA (GQA) that the project trains from scratch on its own world.

No pretrained weights can be downloaded here, and a random model scores at chance, where no later
stage (pruning, adaptation) can be measured. So the project trains one:

1. the world's statements and the three tasks' *train* documents, written in the tasks' own
   prompts (:mod:`tailored_harness.suite.world`, ``prompts/``), make the corpus;
2. a byte-level BPE tokenizer is trained on that corpus;
3. a ``LlamaForCausalLM`` is trained on it from a fixed seed with AdamW and a cosine schedule.

Validation documents never enter the corpus. The result is an ordinary Hugging Face folder, cached
under a fingerprint of :class:`ReferenceSpec` and rebuilt when any field changes. With a fixed seed
and thread count the build is bit-for-bit deterministic on one machine, but not across machines:
another CPU (or thread count) orders float reductions differently, and 1200 steps amplify that into
a different model. So the package ships the default recipe's weights (:data:`SHIPPED_DIR`, 4 MB):
:func:`model_folder` returns them whenever the requested recipe is the shipped one, and every
machine scores the same model. ``tailored reference --retrain`` still trains it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
import os
import random
from pathlib import Path
from typing import Any, Callable, Iterator

from tailored_harness.suite import world as world_mod

logger = logging.getLogger(__name__)

TRAINING_LOG = "training_log.json"
RECIPE_VERSION = 1  # bump when the training code changes what a spec builds
SHIPPED_FILE = "shipped.json"
SHIPPED_WEIGHTS = "model.safetensors"


def _answer_boolq(doc: dict[str, Any]) -> str:
    return ("no", "yes")[doc["label"]]


def _answer_piqa(doc: dict[str, Any]) -> str:
    return (doc["sol1"], doc["sol2"])[doc["label"]]


def _answer_qa(doc: dict[str, Any]) -> str:
    return doc["answer"]


# task -> (prompt template, gold continuation); must agree with tasks/synth_*.yaml.
TASK_FORMATS: dict[str, tuple[str, Callable[[dict[str, Any]], str]]] = {
    "synth_boolq": ("boolq", _answer_boolq),
    "synth_piqa": ("piqa", _answer_piqa),
    "synth_qa": ("qa", _answer_qa),
}
TARGET_DELIMITER = " "  # lm-eval's default between a prompt and its answer


@dataclasses.dataclass(frozen=True)
class ReferenceSpec:
    """The whole recipe of the reference model; its fingerprint names the cache folder.

    The model is a LLaMA with grouped-query attention (``num_attention_heads`` query heads sharing
    ``num_key_value_heads`` KV heads). One step sees ``batch_size`` x ``seq_len`` tokens of packed
    documents. ``statement_repeats`` is how often each world statement appears per pass over the
    task documents: the facts must be seen many times to be learnt.

    ``pretrain_tasks`` are the tasks whose train documents join the corpus (default: all). A task
    left out is held out: the model knows its facts from the statements but meets its prompt for
    the first time when it is evaluated or adapted, as a pretrained LLM meets a benchmark's prompt.
    """

    world: world_mod.WorldSpec = world_mod.WorldSpec()
    vocab_size: int = 1024
    hidden_size: int = 128
    intermediate_size: int = 384
    num_hidden_layers: int = 4
    num_attention_heads: int = 4
    num_key_value_heads: int = 2
    seq_len: int = 256
    batch_size: int = 16
    steps: int = 1200
    learning_rate: float = 3e-3
    warmup_steps: int = 40
    weight_decay: float = 0.1
    statement_repeats: int = 8
    answer_weight: float = 1.0
    seed: int = 0
    pretrain_tasks: tuple[str, ...] = world_mod.TASKS

    def __post_init__(self) -> None:
        positive = ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
                    "num_key_value_heads", "seq_len", "batch_size", "steps", "statement_repeats")
        for name in positive:
            if getattr(self, name) < 1:
                raise ValueError(f"{name}={getattr(self, name)} must be at least 1")
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(f"hidden_size={self.hidden_size} is not a multiple of num_attention_heads={self.num_attention_heads}")
        if self.num_attention_heads % self.num_key_value_heads:
            raise ValueError(f"num_attention_heads={self.num_attention_heads} is not a multiple of "
                             f"num_key_value_heads={self.num_key_value_heads}")
        unknown = [t for t in self.pretrain_tasks if t not in TASK_FORMATS]
        if unknown or len(set(self.pretrain_tasks)) != len(self.pretrain_tasks):
            raise ValueError(f"pretrain_tasks={list(self.pretrain_tasks)}: each must appear once and be one of "
                             f"{', '.join(TASK_FORMATS)}")
        if not self.answer_weight > 0:
            raise ValueError(f"answer_weight={self.answer_weight} must be positive")
        if not 0 < self.learning_rate < 1:
            raise ValueError(f"learning_rate={self.learning_rate} must be in (0, 1)")
        if not 0 <= self.warmup_steps < self.steps:
            raise ValueError(f"warmup_steps={self.warmup_steps} must be in [0, steps={self.steps})")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def _recipe(self) -> dict[str, Any]:
        """What the recipe asks for: the spec, the world's own fingerprint (which covers its
        generation code) and the code version."""
        return {"spec": self.to_dict(), "world": self.world.fingerprint(), "recipe_version": RECIPE_VERSION}

    def fingerprint(self) -> str:
        """Hash of the recipe and the libraries that shape the weights: names a build's cache folder."""
        from tailored_harness.core import artifacts

        return artifacts.fingerprint("reference", RECIPE_VERSION, self._recipe(), ("tokenizers", "torch", "transformers"))

    def recipe_fingerprint(self) -> str:
        """Hash of the recipe without the library versions: it names the shipped weights, which are a
        file and do not change with the libraries (so its formula stays as the weights were shipped with)."""
        return _digest(self._recipe())


def _digest(payload: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def task_examples(folder: Path, tasks: tuple[str, ...] = tuple(TASK_FORMATS)) -> list[tuple[str, str]]:
    """Every train document of ``tasks`` as ``(prompt, delimiter + gold answer)``, as lm-eval scores it."""
    from tailored_harness.taskio import templates

    examples = []
    for task in tasks:
        template, answer = TASK_FORMATS[task]
        for doc in world_mod.load_split(folder, task, "train"):
            examples.append((templates.render(template, doc), TARGET_DELIMITER + answer(doc)))
    return examples


def corpus(folder: Path, spec: ReferenceSpec) -> list[tuple[str, str]]:
    """One pass of training text as ``(text, answer)`` pairs: statements repeated (no answer part)
    plus the task documents (unshuffled)."""
    statements = (folder / "statements.txt").read_text().splitlines()
    return [(s, "") for s in statements] * spec.statement_repeats + task_examples(folder, spec.pretrain_tasks)


def encode(tokenizer, pairs: list[tuple[str, str]], answer_weight: float) -> list[tuple[list[int], list[float]]]:
    """Token ids and loss weights per text: ``<s>`` text answer ``\n`` ``</s>``.

    The answer's tokens (and the newline that ends it, so generation learns to stop) weigh
    ``answer_weight``; every other token weighs 1. The answer is one token in sixty of a task
    document, and it carries the signal the tasks measure.
    """
    full = tokenizer([text + answer + "\n" for text, answer in pairs])["input_ids"]
    prompts = tokenizer([text for text, _ in pairs])["input_ids"]
    out = []
    for ids, prompt, (_, answer) in zip(full, prompts, pairs):
        cut = len(prompt) if answer else len(ids)
        weights = [1.0] * cut + [answer_weight] * (len(ids) - cut) + [1.0]
        out.append((ids + [tokenizer.eos_token_id], weights))
    return out


def batches(docs: list[tuple[list[int], list[float]]], spec: ReferenceSpec,
            rng: random.Random) -> Iterator[tuple[list[list[int]], list[list[float]]]]:
    """Endless ``(ids, weights)`` batches of ``batch_size`` x ``seq_len``, documents packed in a new order each pass."""
    while True:
        order = list(range(len(docs)))
        rng.shuffle(order)
        ids = [tok for i in order for tok in docs[i][0]]
        weights = [w for i in order for w in docs[i][1]]
        starts = list(range(0, len(ids) - spec.seq_len + 1, spec.seq_len))
        rng.shuffle(starts)
        for i in range(0, len(starts) - spec.batch_size + 1, spec.batch_size):
            chunk = starts[i : i + spec.batch_size]
            yield [ids[s : s + spec.seq_len] for s in chunk], [weights[s : s + spec.seq_len] for s in chunk]


def weighted_loss(model, ids, weights):
    """Next-token cross-entropy averaged with per-token weights. ``ids``, ``weights``: (batch, seq_len)."""
    import torch

    logits = model(input_ids=ids).logits[:, :-1]  # (batch, seq_len - 1, vocab)
    losses = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), ids[:, 1:].reshape(-1), reduction="none")
    w = weights[:, 1:].reshape(-1)
    return (losses * w).sum() / w.sum()


def learning_rate(step: int, spec: ReferenceSpec) -> float:
    """Linear warmup, then cosine decay to a tenth of the peak."""
    if step < spec.warmup_steps:
        return spec.learning_rate * (step + 1) / spec.warmup_steps
    progress = (step - spec.warmup_steps) / max(1, spec.steps - spec.warmup_steps)
    return spec.learning_rate * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


def build_model(spec: ReferenceSpec, tokenizer):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=spec.hidden_size,
        intermediate_size=spec.intermediate_size,
        num_hidden_layers=spec.num_hidden_layers,
        num_attention_heads=spec.num_attention_heads,
        num_key_value_heads=spec.num_key_value_heads,
        max_position_embeddings=max(2048, spec.seq_len),
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=None,
        tie_word_embeddings=False,
    )
    torch.manual_seed(spec.seed)
    return LlamaForCausalLM(config).to(torch.float32)


def train(model, docs: list[tuple[list[int], list[float]]], spec: ReferenceSpec, progress: bool = True) -> list[float]:
    """Train ``model`` in place for ``spec.steps`` steps; returns the loss of every step."""
    import torch
    from tqdm.auto import tqdm

    torch.manual_seed(spec.seed)
    rng = random.Random(spec.seed)
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.ndim < 2]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": spec.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=spec.learning_rate, betas=(0.9, 0.95),
    )
    model.train()
    losses = []
    bar = tqdm(total=spec.steps, desc="training reference model", unit="step", disable=not progress)
    for step, (ids, weights) in zip(range(spec.steps), batches(docs, spec, rng)):
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(step, spec)
        loss = weighted_loss(model, torch.tensor(ids), torch.tensor(weights))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(loss.item())
        bar.set_postfix(loss=f"{losses[-1]:.3f}", refresh=False)
        bar.update()
    bar.close()
    model.eval()
    return losses


def reference_dir(spec: ReferenceSpec, root: str | os.PathLike | None = None) -> Path:
    from tailored_harness.core.paths import cache_dir

    return Path(root) if root else cache_dir() / "reference" / spec.fingerprint()


def build(spec: ReferenceSpec = ReferenceSpec(), out: str | os.PathLike | None = None,
          progress: bool = True) -> tuple[Path, bool]:
    """Build (or reuse) the reference model folder; returns ``(folder, reused)``.

    The recipe written beside the weights records the spec and its fingerprint; a folder whose
    recipe differs, or that an interrupted run left incomplete, is rebuilt.
    """
    from tailored_harness.suite import tiny

    from tailored_harness.core.cache import building

    folder = reference_dir(spec, out)
    recipe = {"reference_spec": spec.to_dict(), "fingerprint": spec.fingerprint()}
    with building(folder, lambda: tiny.is_complete(folder, recipe), "reference model") as done:
        if not done:
            _train_and_save(spec, folder, recipe, progress)
    return folder, done


def _train_and_save(spec: ReferenceSpec, folder: Path, recipe: dict, progress: bool) -> None:
    from tailored_harness.suite import tiny

    world_folder, world_reused = world_mod.materialize(spec.world)
    logger.info("%s synthetic world at %s", "reusing cached" if world_reused else "generated", world_folder)
    pairs = corpus(world_folder, spec)
    tokenizer = tiny.train_tokenizer((text + answer for text, answer in pairs), vocab_size=spec.vocab_size)
    model = build_model(spec, tokenizer)
    losses = train(model, encode(tokenizer, pairs, spec.answer_weight), spec, progress=progress)
    log = {"losses": [round(x, 5) for x in losses], "corpus_texts": len(pairs)}
    tiny.save_atomic(model, tokenizer, folder, recipe, extra_json={TRAINING_LOG: log})


def shipped_dir() -> Path:
    """Where the package keeps the default recipe's trained weights (beside this module)."""
    return Path(__file__).resolve().parent / "reference_model"


def shipped(spec: ReferenceSpec) -> Path | None:
    """The shipped reference model, when it was trained from ``spec``'s recipe; else ``None``.

    Its weights are checked against the sha256 recorded when they were shipped, so an altered file
    is an error rather than a silently different model.
    """
    from tailored_harness.core.errors import TailoredError
    from tailored_harness.core.paths import read_json

    folder = shipped_dir()
    info = read_json(folder / SHIPPED_FILE)
    if not isinstance(info, dict) or info.get("recipe_fingerprint") != spec.recipe_fingerprint():
        return None
    digest = hashlib.sha256((folder / SHIPPED_WEIGHTS).read_bytes()).hexdigest()
    if digest != info.get("sha256"):
        raise TailoredError(f"the shipped reference model {folder / SHIPPED_WEIGHTS} has sha256 {digest}, not the "
                            f"{info.get('sha256')} it was shipped with; reinstall the package or run "
                            f"tailored reference --retrain")
    return folder


def ship(folder: Path, spec: ReferenceSpec, target: str | os.PathLike) -> Path:
    """Copy a trained reference model into ``target`` (the package's ``reference_model`` folder, for a
    maintainer), with ``shipped.json``: the recipe fingerprint, the weights' sha256 and the build's versions."""
    import shutil

    import tokenizers
    import torch
    import transformers

    from tailored_harness.core.paths import atomic_dir

    weights = (folder / SHIPPED_WEIGHTS).read_bytes()
    info = {"recipe_fingerprint": spec.recipe_fingerprint(), "fingerprint": spec.fingerprint(),
            "sha256": hashlib.sha256(weights).hexdigest(), "built_with": {
                "torch": torch.__version__, "transformers": transformers.__version__, "tokenizers": tokenizers.__version__,
                "threads": torch.get_num_threads()}}
    with atomic_dir(target) as tmp:
        for item in folder.iterdir():
            if item.is_file():
                shutil.copyfile(item, tmp / item.name)
        (tmp / SHIPPED_FILE).write_text(json.dumps(info, indent=1, sort_keys=True) + "\n")
    return Path(target)


def model_folder(spec: ReferenceSpec = ReferenceSpec(), retrain: bool = False, out: str | os.PathLike | None = None,
                 progress: bool = True) -> tuple[Path, str]:
    """The reference model for ``spec``: ``(folder, how)``, ``how`` one of ``shipped``, ``cached``, ``trained``.

    The shipped weights serve the recipe they were trained from unless ``retrain`` (or ``out``) asks
    for a build; a build is cached under its fingerprint.
    """
    if not retrain and out is None:
        folder = shipped(spec)
        if folder is not None:
            return folder, "shipped"
    folder, reused = build(spec, out=out, progress=progress)
    return folder, "cached" if reused else "trained"
