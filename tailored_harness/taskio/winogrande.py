"""WinoGrande in the plugin's prompts: a partial evaluation, one context per option.

lm-eval scores WinoGrande by filling the blank (``_``) with each option and comparing the
log-likelihood of the *rest* of the sentence, which is the same for both: the choices live in the
contexts and the continuation is shared. The plugin's tasks keep that scoring and change only what
each context says: ``doc_to_choice`` renders a prompt template (``prompts/winogrande*.jinja``) once
per option, with the document's fields plus ``filled``, the sentence up to the blank with that
option in it; ``doc_to_text`` is the gold option's index and ``doc_to_target`` the rest of the
sentence. Attribute ``X`` of this module is the ``doc_to_choice`` of template ``prompts/X.jinja``.
"""

from __future__ import annotations

from typing import Any, Callable

from tailored_harness.taskio import templates

BLANK = "_"


def gold(doc: dict[str, Any]) -> int:
    """Index of the right option (the dataset's ``answer`` is ``"1"`` or ``"2"``)."""
    return int(doc["answer"]) - 1


def rest(doc: dict[str, Any]) -> str:
    """The sentence after the blank, the continuation scored for every option."""
    sentence = doc["sentence"]
    return sentence[sentence.index(BLANK) + 1:].strip()


def filled(doc: dict[str, Any], option: str) -> str:
    """The sentence up to the blank with ``option`` in it."""
    sentence = doc["sentence"]
    return sentence[:sentence.index(BLANK)] + option


def option_contexts(name: str) -> Callable[[dict[str, Any]], list[str]]:
    """The ``doc_to_choice`` of template ``name``: one rendered context per option."""
    templates.template_path(name)

    def doc_to_choice(doc: dict[str, Any]) -> list[str]:
        return [templates.render(name, {**doc, "filled": filled(doc, option)})
                for option in (doc["option1"], doc["option2"])]

    doc_to_choice.__name__ = doc_to_choice.__qualname__ = name
    doc_to_choice.__module__ = __name__
    return doc_to_choice


def __getattr__(name: str) -> Callable[[dict[str, Any]], list[str]]:
    if name.startswith("_"):
        raise AttributeError(name)
    try:
        return option_contexts(name)
    except KeyError as err:
        raise AttributeError(str(err)) from None
