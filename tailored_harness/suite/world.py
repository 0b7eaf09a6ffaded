"""A small generated world and the three offline tasks asked about it.

Nothing can be downloaded here, so the suite's tasks come from a world that project code generates
from a seed: invented people, each with a home town, a job, a pet and a favourite colour, and six
yes/no traits (can swim, is married, ...). Every fact appears in the reference model's pretraining text as plain statements
(:func:`statements`). The tasks ask about those facts in new combinations, so answering needs the
fact itself; the passage only ever states the person's *other* attributes, never the one asked.

Three tasks, with field names that match the real benchmarks so the same prompt templates apply:

* ``synth_boolq``: ``passage``, ``question``, ``label`` (1 = yes) about a trait, like BoolQ;
* ``synth_piqa``: ``goal``, ``sol1``, ``sol2``, ``label`` (index of the right solution), like PIQA;
* ``synth_qa``: ``passage``, ``question``, ``answer``, scored by exact match after greedy generation.

Every document also records the ``person`` and ``attribute`` it asks about; no prompt shows them.

Generation is pure: the same :class:`WorldSpec` always gives the same documents. :func:`materialize`
writes them once, atomically, to a cache folder named by the spec's fingerprint.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import random
from pathlib import Path
from typing import Any, Callable

logger = logging.getLogger(__name__)

TASKS = ("synth_boolq", "synth_piqa", "synth_qa")
SPLITS = ("train", "validation")
SYLLABLES = ("ba", "co", "da", "fe", "gi", "ho", "ju", "ka", "lo", "mi", "nu", "pa", "ri", "so", "tu", "ve", "wy", "za")


@dataclasses.dataclass(frozen=True)
class Attribute:
    """One kind of fact, with every way the world's texts and tasks phrase it.

    Templates use ``{p}`` for the person and ``{v}`` for the value.
    """

    name: str
    values: tuple[str, ...]
    statements: tuple[str, ...]
    ask: str
    goals: tuple[tuple[str, str], ...]  # (goal, solution) pairs for the two-choice task


ATTRIBUTES: tuple[Attribute, ...] = (
    Attribute(
        "home",
        ("varn", "kesh", "olmo", "tirra", "belk", "suna", "drom", "ilva", "pesk", "quorn"),
        ("{p} lives in {v}.", "the home of {p} is in {v}.", "{p} has a house in {v}."),
        "where does {p} live?",
        (("visit {p} at home", "travel to {v}"), ("send a letter to {p}", "post it to {v}"),
         ("meet the neighbours of {p}", "walk around {v}")),
    ),
    Attribute(
        "job",
        ("baker", "farmer", "miner", "potter", "sailor", "tailor", "weaver", "smith", "hunter", "fisher"),
        ("{p} works as a {v}.", "{p} is a {v} by trade.", "by trade, {p} is a {v}."),
        "what is {p}'s job?",
        (("introduce {p} by trade", "say that {p} is a {v}"), ("hire {p}", "hire {p} as a {v}"),
         ("describe the work of {p}", "describe the work of a {v}")),
    ),
    Attribute(
        "pet",
        ("cat", "dog", "goat", "owl", "hen", "fox", "frog", "crow", "hare", "mule"),
        ("{p} keeps a {v} as a pet.", "the pet of {p} is a {v}.", "{p} owns a pet {v}."),
        "what pet does {p} keep?",
        (("bring a treat for {p}'s pet", "bring a treat for a {v}"), ("look after the pet of {p}", "feed the {v}"),
         ("draw the pet of {p}", "draw a {v}")),
    ),
    Attribute(
        "colour",
        ("red", "blue", "green", "yellow", "black", "white", "grey", "pink", "purple", "orange"),
        ("{p}'s favourite colour is {v}.", "{p} likes {v} best of all colours.", "the colour {p} likes best is {v}."),
        "what is {p}'s favourite colour?",
        (("buy {p} a scarf", "buy a {v} scarf"), ("paint a gift for {p}", "paint it {v}"),
         ("pick flowers for {p}", "pick {v} flowers")),
    ),
)
ATTRIBUTE_NAMES = tuple(a.name for a in ATTRIBUTES)


@dataclasses.dataclass(frozen=True)
class Trait:
    """A yes/no fact about a person, stated either way in the pretraining text (``{p}``: person)."""

    name: str
    if_true: tuple[str, ...]
    if_false: tuple[str, ...]
    question: str


TRAITS: tuple[Trait, ...] = (
    Trait("swim", ("{p} can swim.", "{p} swims well."), ("{p} cannot swim.", "{p} never learned to swim."), "can {p} swim"),
    Trait("ride", ("{p} can ride a horse.", "{p} rides horses well."),
          ("{p} cannot ride a horse.", "{p} has never ridden a horse."), "can {p} ride a horse"),
    Trait("sing", ("{p} can sing.", "{p} sings well."), ("{p} cannot sing.", "{p} never sings."), "can {p} sing"),
    Trait("read", ("{p} can read.", "{p} reads well."), ("{p} cannot read.", "{p} never learned to read."), "can {p} read"),
    Trait("married", ("{p} is married.", "{p} has a spouse."), ("{p} is not married.", "{p} has no spouse."), "is {p} married"),
    Trait("tall", ("{p} is tall.", "{p} is a tall person."), ("{p} is short.", "{p} is a short person."), "is {p} tall"),
)
YES, NO = "yes", "no"


@dataclasses.dataclass(frozen=True)
class WorldSpec:
    """Everything that determines the world and its task documents.

    ``people`` sets how many facts there are to learn (``people`` x 10); ``context_facts`` is how
    many statements about other attributes a passage carries.
    """

    seed: int = 0
    people: int = 60
    train_size: int = 4000
    validation_size: int = 500
    context_facts: int = 2

    def __post_init__(self) -> None:
        if self.people < 2 or self.people > len(SYLLABLES) ** 3:
            raise ValueError(f"people={self.people} must be between 2 and {len(SYLLABLES) ** 3}")
        for name in ("train_size", "validation_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}={getattr(self, name)} must be at least 1")
        if not 0 <= self.context_facts < len(ATTRIBUTES):
            raise ValueError(f"context_facts={self.context_facts} must be between 0 and {len(ATTRIBUTES) - 1}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def fingerprint(self) -> str:
        canonical = json.dumps({"world": self.to_dict(), "format": FORMAT_VERSION}, sort_keys=True)
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]


FORMAT_VERSION = 2  # bump when generation changes, so cached worlds are rebuilt


@dataclasses.dataclass(frozen=True)
class World:
    """People and their facts: ``facts[person][attribute or trait] -> value`` (``yes``/``no`` for traits)."""

    spec: WorldSpec
    people: tuple[str, ...]
    facts: dict[str, dict[str, str]]


def make_world(spec: WorldSpec) -> World:
    """Invent ``spec.people`` distinct names and draw each person's facts uniformly."""
    rng = random.Random(f"world-{spec.seed}")
    names: list[str] = []
    seen: set[str] = set()
    while len(names) < spec.people:
        name = "".join(rng.choice(SYLLABLES) for _ in range(rng.choice((2, 3))))
        if name not in seen:
            seen.add(name)
            names.append(name)
    facts = {
        name: {**{a.name: rng.choice(a.values) for a in ATTRIBUTES}, **{t.name: rng.choice((YES, NO)) for t in TRAITS}}
        for name in names
    }
    return World(spec, tuple(names), facts)


def _attribute(name: str) -> Attribute:
    return next(a for a in ATTRIBUTES if a.name == name)


def statements(world: World) -> list[str]:
    """Every fact in every phrasing: the knowledge the reference model pretrains on."""
    out = []
    for person in world.people:
        facts = world.facts[person]
        out += [template.format(p=person, v=facts[a.name]) for a in ATTRIBUTES for template in a.statements]
        out += [template.format(p=person) for t in TRAITS for template in (t.if_true if facts[t.name] == YES else t.if_false)]
    return out


def _passage(world: World, rng: random.Random, person: str, asked: str) -> str:
    """Statements about ``person``'s other attributes: context that never gives the answer away."""
    others = rng.sample([a for a in ATTRIBUTES if a.name != asked], world.spec.context_facts)
    return " ".join(rng.choice(a.statements).format(p=person, v=world.facts[person][a.name]) for a in others)


def _distractor(rng: random.Random, attribute: Attribute, truth: str) -> str:
    return rng.choice([v for v in attribute.values if v != truth])


def boolq_doc(world: World, rng: random.Random, person: str, trait: Trait, label: int) -> dict[str, Any]:
    """A yes/no question about one of ``person``'s traits; the passage states other facts only."""
    return {
        "passage": _passage(world, rng, person, trait.name),
        "question": trait.question.format(p=person),
        "label": label,
    }


def piqa_doc(world: World, rng: random.Random, person: str, attribute: Attribute, label: int) -> dict[str, Any]:
    truth = world.facts[person][attribute.name]
    goal, solution = rng.choice(attribute.goals)
    wrong = solution.format(p=person, v=_distractor(rng, attribute, truth))
    right = solution.format(p=person, v=truth)
    sol1, sol2 = (right, wrong) if label == 0 else (wrong, right)
    return {"goal": goal.format(p=person), "sol1": sol1, "sol2": sol2, "label": label}


def qa_doc(world: World, rng: random.Random, person: str, attribute: Attribute, label: int) -> dict[str, Any]:
    del label  # generation has no gold choice; kept for a uniform signature
    return {
        "passage": _passage(world, rng, person, attribute.name),
        "question": attribute.ask.format(p=person),
        "answer": world.facts[person][attribute.name],
    }


MAKERS: dict[str, Callable[..., dict[str, Any]]] = {"synth_boolq": boolq_doc, "synth_piqa": piqa_doc, "synth_qa": qa_doc}


def _draw(world: World, task: str, rng: random.Random, label: int) -> dict[str, Any]:
    """One random document of ``task`` with gold ``label`` (ignored by generation tasks)."""
    if task == "synth_boolq":  # a trait, and a person whose answer is the wanted label
        attribute = rng.choice(TRAITS)
        wanted = (NO, YES)[label]
        person = rng.choice([p for p in world.people if world.facts[p][attribute.name] == wanted] or [None])
        if person is None:
            raise ValueError(f"nobody in this world has {attribute.name}={wanted}; add people")
    else:
        attribute = rng.choice(ATTRIBUTES)
        person = rng.choice(world.people)
    # person and attribute say what is asked (for analysis); the prompts never show them.
    return dict(MAKERS[task](world, rng, person, attribute, label), person=person, attribute=attribute.name)


def make_splits(world: World, task: str) -> dict[str, list[dict[str, Any]]]:
    """``train`` and ``validation`` documents for ``task``.

    No document appears twice anywhere (so none is shared by the two splits), and gold labels
    alternate, so the classes are balanced exactly.
    """
    if task not in MAKERS:
        raise ValueError(f"unknown synthetic task {task!r}; valid: {', '.join(TASKS)}")
    rng = random.Random(f"{task}-{world.spec.seed}")
    seen: set[str] = set()
    splits: dict[str, list[dict[str, Any]]] = {}
    for split, size in (("train", world.spec.train_size), ("validation", world.spec.validation_size)):
        docs: list[dict[str, Any]] = []
        attempts = 0
        while len(docs) < size:
            attempts += 1
            if attempts > 100 * size:
                raise ValueError(f"{task}: cannot draw {size} distinct {split} documents from this world; add people")
            doc = _draw(world, task, rng, len(docs) % 2)
            key = json.dumps(doc, sort_keys=True)
            if key not in seen:
                seen.add(key)
                docs.append(dict(doc, idx=len(docs)))
        splits[split] = docs
    return splits


def world_dir(spec: WorldSpec, root: str | os.PathLike | None = None) -> Path:
    from tailored_harness.core.paths import cache_dir

    return Path(root) if root else cache_dir() / "worlds" / spec.fingerprint()


MANIFEST = "world.json"


def is_complete(folder: Path, spec: WorldSpec) -> bool:
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError):
        return False
    files = [folder / f"{task}.{split}.jsonl" for task in TASKS for split in SPLITS] + [folder / "statements.txt"]
    return manifest.get("fingerprint") == spec.fingerprint() and all(f.is_file() for f in files)


def materialize(spec: WorldSpec = WorldSpec(), root: str | os.PathLike | None = None) -> tuple[Path, bool]:
    """Write the world's statements and task splits once; return ``(folder, reused)``.

    The folder is written under a temporary name and renamed, so an interrupted run leaves nothing
    that looks finished. A folder whose manifest does not match ``spec`` is rebuilt.
    """
    from tailored_harness.core.cache import building

    folder = world_dir(spec, root)
    with building(folder, lambda: is_complete(folder, spec), "synthetic world") as done:
        if done:
            return folder, True
        _write(spec, folder)
    return folder, False


def _write(spec: WorldSpec, folder: Path) -> None:
    from tailored_harness.core.paths import atomic_dir

    world = make_world(spec)
    if folder.exists():
        logger.warning("rebuilding incomplete or stale world folder %s", folder)
    with atomic_dir(folder) as tmp:
        (tmp / "statements.txt").write_text("\n".join(statements(world)) + "\n")
        for task in TASKS:
            for split, docs in make_splits(world, task).items():
                with open(tmp / f"{task}.{split}.jsonl", "w") as handle:
                    handle.writelines(json.dumps(doc, sort_keys=True) + "\n" for doc in docs)
        manifest = {"fingerprint": spec.fingerprint(), "spec": spec.to_dict(), "facts": world.facts}
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True))


def load_split(folder: Path, task: str, split: str) -> list[dict[str, Any]]:
    with open(folder / f"{task}.{split}.jsonl") as handle:
        return [json.loads(line) for line in handle]


def _dataset(task: str, world_seed: int, **_metadata: Any):
    """Shared body of the lm-eval ``custom_dataset`` hooks below.

    lm-eval also passes the task metadata and the run's ``model_args`` as keyword arguments; they do
    not change the world and are ignored.
    """
    import datasets

    folder, reused = materialize(WorldSpec(seed=world_seed))
    logger.info("%s synthetic world at %s", "reusing" if reused else "generated", folder)
    return datasets.DatasetDict({split: datasets.Dataset.from_list(load_split(folder, task, split)) for split in SPLITS})


def boolq_dataset(world_seed: int = 0, **metadata: Any):
    return _dataset("synth_boolq", world_seed, **metadata)


def piqa_dataset(world_seed: int = 0, **metadata: Any):
    return _dataset("synth_piqa", world_seed, **metadata)


def qa_dataset(world_seed: int = 0, **metadata: Any):
    return _dataset("synth_qa", world_seed, **metadata)
