"""Prompt templates in prompts/."""

from __future__ import annotations

import jinja2
import pytest

from tailored_harness.taskio import templates


def test_shipped_templates():
    assert {"boolq", "piqa"} <= set(templates.available())


def test_boolq_template_renders_document_fields():
    doc = {"passage": "Cats are mammals.", "question": "is a cat a mammal", "label": 1}
    text = templates.boolq(doc)
    assert "Cats are mammals." in text and "is a cat a mammal?" in text
    assert text.endswith("Answer:") and not text.endswith("\n")
    assert text == templates.render("boolq", doc)


def test_missing_field_is_an_error_not_an_empty_string():
    with pytest.raises(jinja2.UndefinedError):
        templates.piqa({"sol1": "a", "sol2": "b"})


def test_unknown_template_names_the_available_ones():
    with pytest.raises(AttributeError, match="boolq"):
        templates.no_such_prompt  # noqa: B018
