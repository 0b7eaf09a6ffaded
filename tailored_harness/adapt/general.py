"""TELL's general data: where it comes from, how much of it is taken, and what may never enter it.

A *source* (a strategy in :data:`SOURCES`, named by ``general_data=``) yields ``(prompt, response)``
examples in a seeded order; the loss of training covers the response only. Plain text has an empty
prompt (the loss covers all of it):

* ``file``: a ``.txt`` file (one example per non-empty line, plain text), a ``.jsonl`` file (one
  record per line, see :func:`record_pair`) or a ``.json`` file (a list of such records). The synthetic world's statements, the reference model's
  pretraining text, are such a file: ``$(tailored world)/statements.txt``;
* ``tasks``: ``tasks:A+B``, the training documents of lm-eval tasks other than the adapted one,
  written as those tasks score them (context, gold answer). A task over the adapted task's own
  dataset is skipped: its documents are task data, not general data;
* ``hub``: a Hugging Face dataset id (``yahma/alpaca-cleaned``, LLM-Pruner's recovery data) or a
  local dataset folder, its ``train`` split.

:func:`take` fills the budget (``general_tokens``) with whole examples in the source's order, and
drops every example that holds text of a document the adapted task is evaluated on
(:class:`Evaluated`): general data never carries an evaluated document into training.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import random
from pathlib import Path
from typing import Any, Iterator, Sequence

from tailored_harness.core.errors import TailoredError, first_line

logger = logging.getLogger(__name__)

Pair = tuple[str, str]
#: Shortest string field of an evaluated document that counts as its text when looking for leaks:
#: long enough not to match ordinary phrases ("yes", a name), short enough for a BoolQ question.
MIN_NEEDLE = 24
FILE_SUFFIXES = (".txt", ".jsonl", ".json")


def record_pair(record: dict[str, Any], where: str) -> Pair:
    """``(prompt, response)`` of one general record: ``instruction`` (+ ``input``) and ``output``
    (Alpaca), ``prompt`` and ``response``, or plain ``text`` (empty prompt)."""
    if isinstance(record.get("instruction"), str) and isinstance(record.get("output"), str):
        extra = record.get("input") or ""
        prompt = record["instruction"] + (f"\n{extra}" if extra else "")
        return f"{prompt}\n", record["output"]
    if isinstance(record.get("prompt"), str) and isinstance(record.get("response"), str):
        return record["prompt"], record["response"]
    if isinstance(record.get("text"), str):
        return "", record["text"]
    raise TailoredError(f"general data {where}: a record with fields {sorted(record)} has none of the accepted "
                        f"ones: instruction+output (+input), prompt+response, or text")


@dataclasses.dataclass(frozen=True)
class Context:
    """What a source may need: the adapted task's name and object, and the run's tasks."""

    name: str
    task: Any
    tasks: dict[str, Any]


class FileSource:
    """A ``.txt`` (one plain-text example per line), ``.jsonl`` (one record per line) or ``.json`` (a
    list of records, as Alpaca's own ``alpaca_data.json`` is) file."""

    def __init__(self, value: str) -> None:
        self.path = Path(value).expanduser()
        if self.path.suffix not in FILE_SUFFIXES:
            raise TailoredError(f"general_data={value!r}: a file must end with {', '.join(FILE_SUFFIXES)}")
        if not self.path.is_file():
            raise TailoredError(f"general_data={value!r}: no such file")

    def records(self) -> list[tuple[dict[str, Any], str]]:
        """Every record with where it came from (``file:line`` or ``file[index]``); a ``.txt`` line is ``{"text": line}``."""
        text = self.path.read_text(encoding="utf-8")
        if self.path.suffix == ".json":
            try:
                rows = json.loads(text)
            except ValueError as err:
                raise TailoredError(f"general data {self.path} is not JSON: {err}") from err
            if not isinstance(rows, list):
                raise TailoredError(f"general data {self.path} holds a JSON {type(rows).__name__}; a .json file "
                                    f"must hold a list of records (use .jsonl for one record per line)")
            return [(row if isinstance(row, dict) else {}, f"{self.path}[{i}]") for i, row in enumerate(rows)]
        lines = [(number, line) for number, line in enumerate(text.splitlines(), 1) if line.strip()]
        if self.path.suffix == ".txt":
            return [({"text": line}, f"{self.path}:{number}") for number, line in lines]
        records = []
        for number, line in lines:
            try:
                record = json.loads(line)
            except ValueError as err:
                raise TailoredError(f"general data {self.path}:{number} is not JSON: {err}") from err
            records.append((record if isinstance(record, dict) else {}, f"{self.path}:{number}"))
        return records

    def examples(self, context: Context) -> list[Pair]:
        return [record_pair(record, where) for record, where in self.records()]


class TaskSource:
    """``tasks:A+B``: the training documents of other lm-eval tasks, each written as its task scores it."""

    def __init__(self, value: str) -> None:
        self.names = [name for name in value.removeprefix("tasks:").split("+") if name]
        if not self.names:
            raise TailoredError(f"general_data={value!r} names no task; e.g. tasks:piqa+arc_easy")

    def examples(self, context: Context) -> list[Pair]:
        from tailored_harness.adapt.shots import training_split
        from tailored_harness.taskio.task_format import scored_pair

        pairs: list[Pair] = []
        for name, task in self._tasks(context).items():
            if name == context.name:
                continue
            if _dataset(task) == _dataset(context.task):
                logger.warning("general data: skipping task %s, it reads the dataset of %s (%s), whose documents "
                               "are task data", name, context.name, _dataset(task))
                continue
            _, docs = training_split(task, name)
            pairs += [scored_pair(task, doc) for doc in docs]
        if not pairs:
            raise TailoredError(f"general_data=tasks:{'+'.join(self.names)} leaves no task but {context.name!r} "
                                f"itself; name other tasks")
        return pairs

    def _tasks(self, context: Context) -> dict[str, Any]:
        found = {name: context.tasks[name] for name in self.names if name in context.tasks}
        missing = [name for name in self.names if name not in found]
        if missing:
            from lm_eval.tasks import TaskManager, get_task_dict

            logger.info("loading general-data task(s) %s (not in the run)", ", ".join(missing))
            loaded = get_task_dict(missing, TaskManager())
            for name in missing:
                if not hasattr(loaded.get(name), "training_docs"):
                    raise TailoredError(f"general_data=tasks:{'+'.join(self.names)}: {name!r} is not a single lm-eval "
                                        f"task (a group, or unknown); name its tasks")
                found[name] = loaded[name]
        return {name: found[name] for name in self.names}


def _dataset(task) -> tuple:
    config = task.config
    return (config.dataset_path, config.dataset_name, json.dumps(config.dataset_kwargs, sort_keys=True, default=str))


class HubSource:
    """A Hugging Face dataset (hub id or local dataset folder), its ``train`` split."""

    def __init__(self, value: str) -> None:
        self.name = value

    def records(self) -> list[tuple[dict[str, Any], str]]:
        import datasets

        try:
            rows = datasets.load_dataset(self.name, split="train")
        except Exception as err:  # noqa: BLE001 - datasets raises many types; the user needs one line
            first = first_line(err)
            raise TailoredError(f"general_data={self.name!r} could not be loaded as a dataset ({first}); offline, "
                                f"use a .txt/.jsonl/.json file or tasks:A+B") from err
        return [(dict(row), f"{self.name}[{i}]") for i, row in enumerate(rows)]

    def examples(self, context: Context) -> list[Pair]:
        return [record_pair(record, where) for record, where in self.records()]


#: ``general_data`` kind -> source class.
SOURCES = {"file": FileSource, "tasks": TaskSource, "hub": HubSource}


def source_for(value: str):
    """The source ``general_data=value`` names, built from :data:`SOURCES`."""
    if value.startswith("tasks:"):
        kind = "tasks"
    elif Path(value).suffix in FILE_SUFFIXES or Path(value).expanduser().is_file():
        kind = "file"
    else:
        kind = "hub"
    return SOURCES[kind](value)


class Evaluated:
    """The text of the documents a task is evaluated on, to find in general examples.

    Every string field of at least :data:`MIN_NEEDLE` characters of an evaluated document is a
    needle; an example containing any needle holds that document. Needles are indexed by their
    first :data:`MIN_NEEDLE` characters, so a check costs one set lookup per character of the example.
    """

    def __init__(self, docs: Sequence[dict[str, Any]]) -> None:
        self.index: dict[str, list[str]] = {}
        for doc in docs:
            for value in _strings(doc):
                if len(value) >= MIN_NEEDLE:
                    self.index.setdefault(value[:MIN_NEEDLE], []).append(value)

    def holds(self, text: str) -> bool:
        for start in range(len(text) - MIN_NEEDLE + 1):
            needles = self.index.get(text[start:start + MIN_NEEDLE])
            if needles and any(text.startswith(needle, start) for needle in needles):
                return True
        return False


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _strings(item)


@dataclasses.dataclass(frozen=True)
class Taken:
    """The general examples of one adapter: the pairs, their tokens, and what was passed over."""

    pairs: list[Pair]
    tokens: int
    dropped: int
    available: int


def take(examples: Sequence[Pair], tokenizer, budget: int, seed: int, max_len: int, evaluated: Evaluated) -> Taken:
    """Whole examples, in an order shuffled by ``seed``, until the next would pass ``budget`` tokens.

    Tokens are counted as training encodes them (prompt and response, cut at ``max_len``). An
    example holding an evaluated document's text is dropped (counted in ``dropped``), as is one
    whose response encodes to no token.
    """
    from tailored_harness.taskio.task_format import encode_pair

    order = list(range(len(examples)))
    random.Random(f"general-{seed}").shuffle(order)
    pairs, tokens, dropped = [], 0, 0
    for index in order if budget > 0 else []:
        prompt, response = examples[index]
        if evaluated.holds(prompt + response):
            dropped += 1
            continue
        try:
            size = len(encode_pair(tokenizer, prompt, response, max_len)[0])
        except TailoredError:
            dropped += 1
            continue
        if tokens + size > budget:
            break
        pairs.append((prompt, response))
        tokens += size
    return Taken(pairs, tokens, dropped, len(examples))
