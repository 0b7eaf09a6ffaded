"""Prompt templates in prompts/ and the offline demo task generator."""

from __future__ import annotations

import re

import jinja2
import pytest

from tailored_harness import demo, templates


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


def test_demo_is_deterministic_balanced_and_correct():
    first, second = demo.make_split(7, 100), demo.make_split(7, 100)
    assert first == second
    assert demo.make_split(8, 100) != first
    assert sum(d["label"] for d in first) == 50
    for d in first:
        a, b = map(int, re.findall(r"\d+", d["passage"]))
        assert d["label"] == int(a > b)


def test_demo_dataset_splits_are_disjoint():
    ds = demo.dataset(demo_seed=3, demo_train_size=50, demo_validation_size=40, pretrained="ignored")
    assert len(ds["train"]) == 50 and len(ds["validation"]) == 40
    train = {(d["passage"], d["question"]) for d in ds["train"]}
    overlap = [d for d in ds["validation"] if (d["passage"], d["question"]) in train]
    assert len(overlap) < 5  # tiny vocabulary: a few coincidences are possible, not copies
