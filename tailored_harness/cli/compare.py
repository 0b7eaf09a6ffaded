"""``tailored compare``: paired statistics of lm-eval runs scored on the same documents.

    tailored compare RUN_A RUN_B [RUN_C ...] [--level 0.05] [--json]

Each run is an lm-eval ``--output_path`` folder written with ``--log_samples``, or its digest (a JSON
file ``tailored report --digests`` writes); ``NAME=PATH`` names it in the table. The first run is the reference: every later run is compared against it, per task and
metric, as ``later - first``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from tailored_harness.core.errors import TailoredError
from tailored_harness.suite.paired import BOOTSTRAP_METHODS, PairedSpec


def _run(item: str):
    from tailored_harness.suite import digest

    name, sep, path = item.partition("=")
    if not sep:
        name, path = "", item
    if not Path(path).exists():
        raise TailoredError(f"run {item!r}: {path!r} does not exist (give an lm-eval --output_path folder or a run "
                            "digest, optionally as NAME=PATH)")
    return digest.load(path, name or None)


def _compare(args: argparse.Namespace) -> int:
    from tailored_harness.suite.run_samples import compare_runs, format_rows

    if len(args.runs) < 2:
        raise TailoredError(f"give at least two runs to compare (got {len(args.runs)})")
    spec = PairedSpec(level=args.level, resamples=args.resamples, seed=args.seed, method=args.method)
    runs = [_run(item) for item in args.runs]
    names = [run.name for run in runs]
    if len(set(names)) != len(names):
        raise TailoredError(f"runs need distinct names (got {', '.join(names)}); name them NAME=DIR")
    tasks = [t for t in args.tasks.split(",") if t] if args.tasks else None
    reference, report = runs[0], []
    for run in runs[1:]:
        rows, notes = compare_runs(run, reference, spec, tasks)
        report.append({"a": run.name, "b": reference.name, "a_results": str(run.results_file),
                       "b_results": str(reference.results_file), "rows": rows, "notes": notes})
    if args.json:
        json.dump({"spec": {"level": spec.level, "resamples": spec.resamples, "seed": spec.seed, "method": spec.method},
                   "comparisons": report}, sys.stdout, indent=2)
        print()
        return 0
    for i, item in enumerate(report):
        print(("\n" if i else "") + f"{item['a']} against {item['b']}:")
        print(format_rows(item["rows"], item["a"], item["b"], spec))
        for note in item["notes"]:
            print(f"not compared: {note}")
    return 0


def add_parser(sub) -> None:
    """Register ``tailored compare`` on the ``tailored`` command's subparsers."""
    defaults = PairedSpec()
    p = sub.add_parser("compare", help="paired comparison of lm-eval runs on the same documents: differences, "
                       "bootstrap intervals, McNemar's exact test, verdicts")
    p.add_argument("runs", nargs="+", metavar="RUN", help="lm-eval --output_path folders written with --log_samples, "
                   "or run digests (NAME=PATH names one); every run after the first is compared against the first")
    p.add_argument("--tasks", help="comma-separated tasks to compare (default: every task both runs scored)")
    p.add_argument("--level", type=float, default=defaults.level,
                   help="significance level of the verdict; the interval's confidence is 1 - level (default: %(default)s)")
    p.add_argument("--resamples", type=int, default=defaults.resamples, help="bootstrap resamples (default: %(default)s)")
    p.add_argument("--seed", type=int, default=defaults.seed, help="bootstrap seed (default: %(default)s)")
    p.add_argument("--method", default=defaults.method, choices=BOOTSTRAP_METHODS,
                   help="bootstrap interval method (default: %(default)s)")
    p.add_argument("--json", action="store_true", help="print the numbers as JSON instead of the tables")
    p.set_defaults(func=_compare)


def _digest(args: argparse.Namespace) -> int:
    from tailored_harness.suite.digest import write_digest

    if not Path(args.run).is_dir():
        raise TailoredError(f"{args.run!r} is not a folder (give the lm-eval --output_path of a run written with --log_samples)")
    print(write_digest(args.run, args.out))
    return 0


def add_digest_parser(sub) -> None:
    """Register ``tailored digest`` (one run's digest) on the ``tailored`` command's subparsers."""
    p = sub.add_parser("digest", help="write a run's digest: its results and per-document values, small enough to "
                       "commit; tailored compare and tailored report read it in place of the folder")
    p.add_argument("run", help="lm-eval --output_path folder written with --log_samples")
    p.add_argument("--out", required=True, help="the digest's JSON file")
    p.set_defaults(func=_digest)
