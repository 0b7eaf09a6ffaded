"""``tailored report``: summarise lm-eval result folders, check them against a baseline, and plot them.

    tailored report --run dense=DIR --run p20=DIR --out results/x.json [--baseline F] [--plot results/x.png]
                    [--paired p20=dense] [--html results/x.html] [--digests results/x-digests]
    tailored report --summary results/x.json [--summary results/y.json] --plot results/x.png
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from tailored_harness.core.errors import TailoredError
from tailored_harness.suite.paired import PairedSpec
from tailored_harness.suite.report import CheckSpec


def _collect(runs: list[str], out: str | None) -> tuple[list[dict], dict[str, str], dict[str, dict], dict[str, dict]]:
    from tailored_harness.suite import report

    parsed = _pairs(runs, "--run", "NAME=DIR")
    return report.collect(parsed, Path(out).resolve().parent if out else Path.cwd())


def _load_baseline(path: Path) -> list[dict]:
    try:
        return json.loads(path.read_text())["rows"]
    except FileNotFoundError:
        raise TailoredError(f"no baseline at {path}; create it with --update-baseline") from None
    except (ValueError, KeyError, TypeError) as err:
        raise TailoredError(f"baseline {path} is not a suite summary ({err}); recreate it with --update-baseline") from None


def _paper_figures(items: list[str] | None) -> dict[str, float]:
    usage = "CONFIGURATION=PERCENT, e.g. p20_adapt50=95.68"
    figures = {}
    for name, value in _pairs(items, "--paper", usage):
        try:
            figures[name] = float(value)
        except ValueError:
            raise TailoredError(f"--paper {name + '=' + value!r} must look like {usage}") from None
    return figures


def _pairs(items: list[str] | None, option: str, example: str) -> list[tuple[str, str]]:
    """``NAME=VALUE`` option values as ``(name, value)`` in the order given; one error line for a bad one."""
    pairs = []
    for item in items or []:
        name, sep, value = item.partition("=")
        if not sep or not name or not value:
            raise TailoredError(f"{option} {item!r} must look like {example}")
        pairs.append((name, value))
    return pairs


def _report(args: argparse.Namespace) -> int:
    from tailored_harness.suite import report
    from tailored_harness.suite.paper_table import format_paper_table

    if not args.run:
        return _plot_only(args)
    rows, sources, baselines, configurations = _collect(args.run, args.out)
    compare = dict(_pairs(args.compare, "--compare", "CONFIGURATION=REFERENCE, e.g. p20_adapt50=dense_adapt50"))
    run_paths = dict(_pairs(args.run, "--run", "NAME=DIR"))
    paired = _paired(args.paired, run_paths)
    if args.digests:
        _write_digests(run_paths, Path(args.digests))
    seeds, paper = report.over_seeds(rows), _paper_figures(args.paper)
    recovery = report.recovery(rows, compare=compare)
    if args.out:
        report.write_json_atomic(args.out, {"rows": rows, "over_seeds": seeds, "recovery": recovery, "paper": paper,
                                            "compare": compare, "paired": paired, "label_baselines": baselines,
                                            "sources": sources, "configurations": configurations})
    if args.plot:
        _draw([{"name": Path(args.out or "run").stem, "rows": rows, "paper": paper, "label_baselines": baselines,
                "configurations": configurations}] + [_summary(path) for path in args.summary or []], args.plot)
    if args.html:
        _write_html(args, {"rows": rows, "paired": paired, "label_baselines": baselines, "paper": paper,
                           "configurations": configurations}, run_paths)
    print(report.format_table(rows, baselines))
    if seeds:
        print("\n" + report.format_over_seeds(seeds))
    if recovery:
        print("\n" + report.format_recovery(recovery, paper))
    if paired:
        _print_paired(paired)
    table = format_paper_table(rows)
    if table:
        print("\nAs the papers print it (perplexity, accuracy in %, seeds averaged):\n" + table)
    return _check_baseline(args, rows, sources) if args.baseline else 0


def _print_paired(paired: list[dict]) -> None:
    """The paired comparisons' table, what could not be compared, and the smallest detectable differences."""
    from tailored_harness.suite.run_samples import detectable_by_task, format_pairs

    print("\nPaired on the same documents (a - b; exact McNemar test of the flips for accuracy, "
          "bootstrap interval of the difference):\n" + format_pairs(paired, PairedSpec()))
    for item in paired:
        for note in item["notes"]:
            print(f"not compared ({item['a']} - {item['b']}): {note}")
    print("\nSmallest difference the documents could show at p < 0.05 (over the pairs; none: too few flips):")
    for key, entry in detectable_by_task(paired).items():
        span = "none" if entry["smallest"] is None else f"{entry['smallest']:.4f} to {entry['largest']:.4f}"
        print(f"  {key}: {entry['docs']} documents, {span}")


def _check_baseline(args: argparse.Namespace, rows: list[dict], sources: dict) -> int:
    """``--update-baseline`` writes ``--baseline``; otherwise the regression check against it (exit 1 on a fall)."""
    from tailored_harness.suite import report

    baseline_path = Path(args.baseline)
    if args.update_baseline:
        report.write_json_atomic(baseline_path, {"rows": rows, "sources": sources})
        print(f"\nbaseline updated: {baseline_path} ({len(rows)} metrics)")
        return 0
    baseline = _load_baseline(baseline_path)
    comparisons = report.check(rows, baseline, report.CheckSpec(z=args.z, floor=args.floor))
    missing, new = report.not_compared(rows, baseline)
    for label, keys in (("in the baseline but not in this run", missing), ("not in the baseline", new)):
        if keys:
            print(f"\nnot compared ({label}): {', '.join(keys)}")
    failed = [c for c in comparisons if c.regressed]
    if failed:
        print(f"\nREGRESSION: {len(failed)} of {len(comparisons)} metrics fell below {baseline_path} "
              f"by more than their allowance (max(floor={args.floor}, {args.z} x stderr of the difference)):")
        print(report.format_regressions(comparisons))
        return 1
    print(f"\nregression check passed: {len(comparisons)} metrics within their allowance of {baseline_path}")
    return 0


def _paired(items: list[str] | None, run_dirs: dict[str, str]) -> list[dict]:
    """The ``--paired A=B`` comparisons of the runs, document by document (empty without any)."""
    from tailored_harness.suite import digest
    from tailored_harness.suite.run_samples import compare_pairs

    pairs = _pairs(items, "--paired", "CONFIGURATION=REFERENCE, e.g. p20_adapt50_s0=p20_param_first")
    return compare_pairs(pairs, run_dirs, PairedSpec(), load=digest.load) if pairs else []


def _write_html(args: argparse.Namespace, summary: dict, run_paths: dict[str, str]) -> None:
    """``--html``: the page of :mod:`tailored_harness.suite.html_report`, with bootstrap intervals for
    the cells lm-eval gives no stderr for, the flipped documents of each ``--paired`` pair and the plot
    (``--plot``'s, or drawn for the page alone when matplotlib is installed)."""
    import tempfile

    from tailored_harness.core.paths import write_text_atomic
    from tailored_harness.suite import html_report
    from tailored_harness.suite.flips import flipped_documents
    from tailored_harness.suite.interval_cells import missing_intervals

    flips = []
    for item in summary["paired"]:
        for row in item["rows"]:
            if row["only_a"] is not None and (row["only_a"] or row["only_b"]):
                found = flipped_documents(run_paths[item["a"]], run_paths[item["b"]], row["task"], row["metric"])
                if found is not None:
                    flips.append({"a": item["a"], "b": item["b"], "task": row["task"], "metric": row["metric"],
                                  "documents": found})
    png = Path(args.plot).read_bytes() if args.plot else None
    if png is None:
        with tempfile.TemporaryDirectory() as folder:
            try:
                from tailored_harness.suite import plot

                plot.draw(plot.plot_data([{"name": "run", **summary}]), Path(folder) / "plot.png")
                png = (Path(folder) / "plot.png").read_bytes()
            except (ImportError, TailoredError) as err:
                print(f"note: the page has no plot ({err})")
    page = html_report.render(summary, args.title or f"tailored-harness: {Path(args.out or args.html).stem}",
                              missing_intervals(summary["rows"], run_paths), flips, png)
    write_text_atomic(args.html, page)
    print(f"page written: {args.html}")


def _write_digests(run_paths: dict[str, str], folder: Path) -> None:
    """``folder/NAME.json``: the digest of each run given as a folder (a digest given is kept as it is)."""
    from tailored_harness.suite.digest import write_digest

    for name, path in run_paths.items():
        target = folder / f"{name}.json"
        if Path(path).is_dir() and Path(path).resolve() != target.resolve():
            write_digest(path, target)
    print(f"run digests written: {folder}")


def _summary(path: str) -> dict:
    from tailored_harness.suite.plot import load_summary

    return load_summary(path)


def _draw(summaries: list[dict], path: str) -> None:
    from tailored_harness.suite import plot

    plot.draw(plot.plot_data(summaries), path)
    print(f"plot written: {path}")


def _plot_only(args: argparse.Namespace) -> int:
    if not args.summary or not args.plot:
        raise TailoredError("give --run NAME=DIR (to summarise runs) or --summary FILE with --plot FILE.png (to draw summaries)")
    _draw([_summary(path) for path in args.summary], args.plot)
    return 0


def add_parser(sub) -> None:
    """Register ``tailored report`` on the ``tailored`` command's subparsers."""
    p = sub.add_parser("report", help="summarise lm-eval result folders")
    p.add_argument("--run", action="append", metavar="NAME=DIR", help="configuration name and lm-eval --output_path "
                   "or run digest (repeatable; without --run, --plot draws the --summary files)")
    p.add_argument("--out", help="write the summary JSON here")
    p.add_argument("--baseline", help="summary JSON to check against (exit 1 when a metric dropped)")
    p.add_argument("--update-baseline", action="store_true", help="write this run as the new --baseline instead")
    p.add_argument("--paper", action="append", metavar="NAME=PCT",
                   help="a published mean %% of dense to show next to configuration NAME (repeatable)")
    p.add_argument("--compare", action="append", metavar="NAME=REFERENCE",
                   help="also show NAME's mean %% of configuration REFERENCE, e.g. p20_adapt50=dense_adapt50 (repeatable)")
    p.add_argument("--paired", action="append", metavar="NAME=REFERENCE",
                   help="compare configuration NAME with REFERENCE document by document (both --run folders written "
                   "with --log_samples): the difference, its 95%% paired bootstrap interval, McNemar's exact test "
                   "and a verdict, per task and metric (repeatable)")
    p.add_argument("--digests", metavar="DIR", help="write each --run folder's digest to DIR/NAME.json: its results, "
                   "label baselines and per-document values, small enough to commit; --run NAME=DIR/NAME.json reads "
                   "one back in place of the folder")
    p.add_argument("--html", metavar="FILE.html", help="write the run set as one self-contained page: the table with "
                   "95%% intervals, the --paired verdicts, the plot and the documents each pair flipped")
    p.add_argument("--title", help="the page's title (default: from --out)")
    p.add_argument("--summary", action="append", metavar="FILE",
                   help="a suite summary JSON (tailored report --out) to plot, alone or beside the --run set (repeatable)")
    p.add_argument("--plot", metavar="FILE.png", help="draw accuracy against parameters kept per task and "
                   "configuration (needs the plot extra: pip install 'tailored-harness[plot]')")
    defaults = CheckSpec()
    p.add_argument("--z", type=float, default=defaults.z, help="allowance in standard errors of the difference")
    p.add_argument("--floor", type=float, default=defaults.floor, help="smallest allowance (absolute)")
    p.set_defaults(func=_report)
