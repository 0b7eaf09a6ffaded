"""``tailored compare``: paired statistics of lm-eval runs scored on the same documents.

    tailored compare RUN_A RUN_B [RUN_C ...] [--level 0.05] [--json]

Each run is an lm-eval ``--output_path`` folder written with ``--log_samples``, or its digest (a JSON
file ``tailored report --digests`` writes); ``NAME=PATH`` names it in the table. The first run is the reference: every later run is compared against it, per task and
metric, as ``later - first``.
"""

from __future__ import annotations

import argparse
import dataclasses
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


def _inputs(args: argparse.Namespace):
    """The command's statistics spec, its runs (distinct names) and its tasks (``None``: all shared)."""
    spec = PairedSpec(level=args.level, resamples=args.resamples, seed=args.seed, method=args.method)
    runs = [_run(item) for item in args.runs]
    names = [run.name for run in runs]
    if len(set(names)) != len(names):
        raise TailoredError(f"runs need distinct names (got {', '.join(names)}); name them NAME=PATH")
    return spec, runs, [t for t in args.tasks.split(",") if t] if args.tasks else None


def _compare(args: argparse.Namespace) -> int:
    from tailored_harness.suite.run_samples import compare_runs, format_rows

    if len(args.runs) < 2:
        raise TailoredError(f"give at least two runs to compare (got {len(args.runs)})")
    spec, runs, tasks = _inputs(args)
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
    p = sub.add_parser("compare", help="paired comparison of lm-eval runs on the same documents: differences, "
                       "bootstrap intervals, McNemar's exact test, verdicts")
    p.add_argument("runs", nargs="+", metavar="RUN", help="lm-eval --output_path folders written with --log_samples, "
                   "or run digests (NAME=PATH names one); every run after the first is compared against the first")
    _statistics_arguments(p)
    p.set_defaults(func=_compare)


def _contrast(args: argparse.Namespace) -> int:
    from tailored_harness.suite.contrast import contrast_runs, format_rows

    if len(args.runs) != 4:
        raise TailoredError(f"give four runs, A1 B1 A2 B2 (the effect A1 against B1 minus A2 against B2); got {len(args.runs)}")
    spec, runs, tasks = _inputs(args)
    names = [run.name for run in runs]
    rows, notes = contrast_runs((runs[0], runs[1]), (runs[2], runs[3]), spec, tasks, args.scale)
    sign = "-" if args.scale == "difference" else "/"
    first, second = f"{names[0]} {sign} {names[1]}", f"{names[2]} {sign} {names[3]}"
    if args.json:
        json.dump({"spec": dataclasses.asdict(spec), "scale": args.scale, "first": first, "second": second,
                   "runs": {run.name: str(run.results_file) for run in runs}, "rows": rows, "notes": notes},
                  sys.stdout, indent=2)
        print()
        return 0
    print(f"({first}) against ({second}):")
    print(format_rows(rows, first, second, spec))
    for note in notes:
        print(f"not compared: {note}")
    return 0


def _statistics_arguments(p: argparse.ArgumentParser) -> None:
    defaults = PairedSpec()
    p.add_argument("--tasks", help="comma-separated tasks to compare (default: every task all runs scored)")
    p.add_argument("--level", type=float, default=defaults.level,
                   help="significance level of the verdict; the interval's confidence is 1 - level (default: %(default)s)")
    p.add_argument("--resamples", type=int, default=defaults.resamples, help="bootstrap resamples (default: %(default)s)")
    p.add_argument("--seed", type=int, default=defaults.seed, help="bootstrap seed (default: %(default)s)")
    p.add_argument("--method", default=defaults.method, choices=BOOTSTRAP_METHODS,
                   help="bootstrap interval method (default: %(default)s)")
    p.add_argument("--json", action="store_true", help="print the numbers as JSON instead of the tables")


def add_contrast_parser(sub) -> None:
    """Register ``tailored contrast`` (one paired effect against another) on the subparsers."""
    from tailored_harness.suite.contrast import SCALES

    p = sub.add_parser("contrast", help="one paired effect against another on the same documents (does pruning "
                       "cost one model more than another?): both effects, their difference, its bootstrap interval")
    p.add_argument("runs", nargs="+", metavar="RUN", help="four runs A1 B1 A2 B2 (folders or digests, NAME=PATH "
                   "names one): the effect of A1 against B1 minus that of A2 against B2")
    p.add_argument("--scale", default=SCALES[0], choices=SCALES,
                   help="an effect as A - B or as A / B, the share of B's score A keeps (default: %(default)s)")
    _statistics_arguments(p)
    p.set_defaults(func=_contrast)


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
