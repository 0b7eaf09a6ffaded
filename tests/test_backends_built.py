"""The run's artifacts as one frozen record (backends/built.py): what each stage adds, and what they do
to lm-eval's requests, in one order, shared by every backend."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from tailored_harness.backends.built import Built


def test_a_built_record_is_frozen_down_to_its_mappings():
    built = Built().but(adapters={"boolq": "adapter"}, unadapted={"wikitext": "perplexity"})
    with pytest.raises(TypeError):
        built.adapters["piqa"] = "another"  # a stage cannot change what an earlier one built
    with pytest.raises(AttributeError):
        built.pruning = {}
    assert dict(built.adapters) == {"boolq": "adapter"} and Built().adapters == {}


def test_with_every_stage_off_requests_are_not_touched(monkeypatch):
    from tailored_harness.adapt import anchors
    from tailored_harness.select import best, per_input

    for module, name in ((best, "rewrite"), (anchors, "apply"), (per_input, "apply")):
        monkeypatch.setattr(module, name, lambda *a, name=name: pytest.fail(f"{name} was called"))
    requests = [SimpleNamespace(arguments=("context", " yes"))]
    Built(pruning={"checkpoint": "x"}).but(adapters={"boolq": "adapter"}).rewrite(requests)
    assert requests[0].arguments == ("context", " yes")


def test_rewrites_run_in_the_order_the_stages_built_them(monkeypatch):
    """The chosen template replaces the context first, TELL's anchor goes before it, the per-input picks
    before that: each step reads what the step before wrote."""
    from tailored_harness.adapt import anchors
    from tailored_harness.select import best, per_input

    def prepend(label):
        def step(requests, table):
            for request in requests:
                request.arguments = (f"{label}|{request.arguments[0]}", *request.arguments[1:])
        return step

    monkeypatch.setattr(best, "rewrite", lambda requests, variants: prepend("template")(requests, variants))
    monkeypatch.setattr(anchors, "apply", prepend("anchor"))
    monkeypatch.setattr(per_input, "apply", prepend("picks"))
    built = Built().but(prompt_choices={"boolq": SimpleNamespace(variant="t3")}, anchors={"boolq": ("A", None)},
                        selections={"boolq": "picked"})
    requests = [SimpleNamespace(arguments=("context", " yes"))]
    built.rewrite(requests)
    assert requests[0].arguments == ("picks|anchor|template|context", " yes")

