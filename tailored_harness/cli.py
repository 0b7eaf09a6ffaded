"""The ``tailored`` command: the plugin's stages outside of ``lm_eval``.

    tailored tiny-model --out DIR            build (or reuse) a tiny random LLaMA with GQA
    tailored report --run dense=DIR --out F  summarise lm-eval result folders as JSON and a table
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

from tailored_harness.errors import TailoredError

logger = logging.getLogger("tailored_harness")


def _tiny_model(args: argparse.Namespace) -> int:
    from tailored_harness import demo, tiny

    spec = tiny.TinySpec(seed=args.seed)
    tokenizer, source = None, "trained-on-demo-corpus"
    if args.tokenizer:
        from transformers import AutoTokenizer

        tokenizer, source = AutoTokenizer.from_pretrained(args.tokenizer), str(Path(args.tokenizer).resolve())
    folder, reused = tiny.build_tiny(args.out, tokenizer, spec, texts=demo.corpus(), tokenizer_source=source)
    print(f"{'reused cached' if reused else 'built'} tiny model: {folder}")
    return 0


def _report(args: argparse.Namespace) -> int:
    from tailored_harness import report

    rows, sources = [], {}
    base = Path(args.out).resolve().parent if args.out else Path.cwd()  # sources are relative to the summary
    for item in args.run:
        name, sep, run_dir = item.partition("=")
        if not sep:
            raise TailoredError(f"--run {item!r} must look like NAME=DIR")
        path = report.latest_results_file(run_dir)
        sources[name] = os.path.relpath(path.resolve(), base)
        rows += report.rows_from_results(json.loads(path.read_text()), name)
    if args.out:
        report.write_json_atomic(args.out, {"rows": rows, "sources": sources})
    print(report.format_table(rows))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tailored", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("tiny-model", help="build a tiny random LLaMA (GQA) folder for tests and the demo")
    p.add_argument("--out", required=True, help="output model folder (reused when it holds the same recipe)")
    p.add_argument("--tokenizer", help="tokenizer folder to use instead of training one on the demo corpus")
    p.add_argument("--seed", type=int, default=0, help="weight initialisation seed")
    p.set_defaults(func=_tiny_model)

    p = sub.add_parser("report", help="summarise lm-eval result folders")
    p.add_argument("--run", action="append", required=True, metavar="NAME=DIR", help="configuration name and lm-eval --output_path")
    p.add_argument("--out", help="write the summary JSON here")
    p.set_defaults(func=_report)
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (TailoredError, FileNotFoundError) as err:
        print(f"tailored {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
