"""Options declared once (core/options.py): ModelSpec, the CLI and the docs' options table all follow them."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import pytest

from tailored_harness.core import options
from tailored_harness.core.errors import TailoredError
from tailored_harness.core.options import Boolean, Choice, Integer, Number, Text, check_fields, option

REPO_ROOT = Path(__file__).resolve().parents[1]


@dataclasses.dataclass(frozen=True)
class DemoSpec:
    """A stage spec with one option, as a new stage would declare it."""

    depth: int = option(3, "demo_depth", Integer(1), "how deep the demo goes", cli="--depth")
    mode: str = option("fast", "demo_mode", Choice(("fast", "slow"), "demo mode"), "fast or slow", given_only=True)
    internal: float = 0.5  # not an option: no key, no flag, no row

    def __post_init__(self) -> None:
        check_fields(self)


def test_one_declaration_makes_the_model_spec_field_the_flag_and_the_row():
    made = dataclasses.make_dataclass("Made", options.model_fields([DemoSpec]), frozen=True)
    assert [f.name for f in dataclasses.fields(made)] == ["demo_depth", "demo_mode"]
    assert made().demo_depth == 3 and made().demo_mode is None  # given_only: None until given
    assert options.from_args(DemoSpec, dataclasses.asdict(made())) == DemoSpec()
    assert options.from_args(DemoSpec, {"demo_depth": 5, "demo_mode": "slow"}) == DemoSpec(depth=5, mode="slow")
    assert options.given(DemoSpec, {"demo_mode": "slow"}) == ["demo_mode"]

    parser = argparse.ArgumentParser()
    options.add_cli_options(parser, DemoSpec)
    args = parser.parse_args(["--depth", "7"])
    assert (args.demo_depth, args.demo_mode) == (7, None)
    assert options.from_args(DemoSpec, vars(args)) == DemoSpec(depth=7)

    table = options.markdown_table([DemoSpec])
    assert "| `demo_depth` | `3` | how deep the demo goes |" in table
    assert "| `demo_mode` | `fast` | fast or slow |" in table and "internal" not in table
    with pytest.raises(TailoredError, match=r"^demo_mode='medium' is not a demo mode; valid: fast, slow$"):
        DemoSpec(mode="medium")


def test_a_key_declared_twice_is_refused():
    with pytest.raises(TypeError, match="demo_depth"):
        options.model_fields([DemoSpec, DemoSpec])


def test_model_spec_is_exactly_the_declared_options():
    from tailored_harness.spec.model import SECTIONS, ModelSpec

    declared = [key for section in SECTIONS for key in options.keys_of(section)]
    assert list(ModelSpec.keys()) == declared and len(set(declared)) == len(declared)
    for section in SECTIONS:
        for d in options.declared(section):
            assert d.option.help.strip(), d.option.key
    defaults = ModelSpec(pretrained="m").to_dict()
    for section in SECTIONS[1:]:  # every stage's defaults are its own spec's
        assert options.from_args(section, defaults) == section()


def test_every_choice_an_option_takes_is_named_in_its_help():
    """A help that lists an option's values stays true as a registry grows (a new criterion, selector,
    backend): every valid value appears in it, backquoted."""
    from tailored_harness.spec.model import SECTIONS

    checked = 0
    for section in SECTIONS:
        for d in options.declared(section):
            if isinstance(d.option.check, Choice):
                values = d.option.check.values
                for value in values() if callable(values) else values:
                    assert f"`{value}`" in d.option.help, (d.option.key, value)
                checked += 1
    assert checked >= 10


def test_the_commands_take_every_stage_option():
    from tailored_harness.adapt.quant import QuantSpec
    from tailored_harness.adapt.spec import AdaptMode, AdaptSpec, RecoverySpec, TellSpec
    from tailored_harness.cli.main import build_parser
    from tailored_harness.prune.spec import PruneSpec

    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    dests = {name: {a.dest for a in sub.choices[name]._actions} for name in ("prune", "adapt")}
    assert set(options.keys_of(PruneSpec)) <= dests["prune"]
    for section in (AdaptSpec, AdaptMode, TellSpec, RecoverySpec, QuantSpec):
        assert set(options.keys_of(section)) <= dests["adapt"], section.__name__


def test_the_docs_table_is_the_declared_one():
    from tailored_harness.cli.options import replaced

    page = (REPO_ROOT / "docs" / "options.md").read_text()
    assert replaced(page, "docs/options.md") == page, "run: tailored options --write docs/options.md"


def test_the_check_command_fails_on_a_stale_table(tmp_path, capsys):
    from tailored_harness.cli.main import main
    from tailored_harness.cli.options import BEGIN, END

    stale = tmp_path / "options.md"
    stale.write_text(f"intro\n{BEGIN}\n| old | table |\n{END}\nrest\n")
    assert main(["options", "--check", str(stale)]) == 1
    assert main(["options", "--write", str(stale)]) == 0
    assert main(["options", "--check", str(stale)]) == 0
    text = stale.read_text()
    assert text.startswith("intro\n") and text.endswith("rest\n") and "| `prune_ratio` |" in text
    assert main(["options", "--check", str(tmp_path / "missing.md")]) == 2


@pytest.mark.parametrize("check,value,message", [
    (Integer(1), 0, "k=0 must be a positive integer"),
    (Integer(0, note=" (0: off)"), -1, "k=-1 must be a non-negative integer (0: off)"),
    (Integer(2), True, "k=True must be an integer of at least 2"),
    (Integer(1, 3), 4, "k=4 must be an integer from 1 to 3"),
    (Number(0, 1, high_open=True), 1.0, "k=1.0 must be a number in [0, 1)"),
    (Number(0, 1, low_open=True), 0, "k=0 must be a number in (0, 1]"),
    (Number(0, low_open=True), float("nan"), "k=nan must be a positive number"),
    (Boolean(), "yes", "k='yes' must be True or False"),
    (Text("be a .yaml file", lambda v: v.endswith(".yaml")), "p.json", "k='p.json' must be a .yaml file"),
    (Choice(lambda: ("a", "b"), "letter"), "c", "k='c' is not a letter; valid: a, b"),
])
def test_checks_name_the_key_the_value_and_what_is_valid(check, value, message):
    with pytest.raises(TailoredError) as err:
        check("k", value)
    assert str(err.value) == message


@pytest.mark.parametrize("check,value", [(Integer(1), 1), (Integer(1, 3), 3), (Number(0, 1, high_open=True), 0),
                                         (Number(0, 1, low_open=True), 1), (Boolean(), False), (Choice(("a",), "x"), "a")])
def test_checks_accept_their_bounds(check, value):
    check("k", value)
