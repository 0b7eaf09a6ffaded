"""``tailored tables``: the tables of a results page, made from the committed suite summaries.

    tailored tables --write results/README.md   set every marked table to its summary's current table
    tailored tables --check results/README.md   exit 1 when one differs (a test runs this check)
"""

from __future__ import annotations

import argparse
from pathlib import Path


def _run(args: argparse.Namespace) -> int:
    from tailored_harness.cli.pages import write_or_check
    from tailored_harness.suite.results_page import refreshed

    page = args.write or args.check
    return write_or_check(page, lambda text: refreshed(text, Path(page)), "tables", bool(args.write), "tailored tables")


def add_parser(sub) -> None:
    p = sub.add_parser("tables", help="the tables of a results page, made from the committed suite summaries")
    mode = p.add_mutually_exclusive_group(required=True)
    mode.add_argument("--write", metavar="PAGE", help="set every marked table of PAGE to its summary's current table")
    mode.add_argument("--check", metavar="PAGE", help="exit 1 when a marked table of PAGE is not current")
    p.set_defaults(func=_run)
