"""``tailored export-submission`` and ``tailored verify-submission``: a run as a package others can check.

    tailored export-submission OUT_DIR [OUT_DIR ...] --out PKG [--include-weights] [--model-name ORG/NAME]
    tailored verify-submission PKG      rehash every file; exit 1 naming the first that differs
"""

from __future__ import annotations

import argparse
import sys


def _export(args: argparse.Namespace) -> int:
    from tailored_harness.submit.package import ExportSpec, export

    spec = ExportSpec(model_name=args.model_name, base_model=args.base_model, license=args.license,
                      model_type=args.model_type, include_weights=args.include_weights, overwrite=args.overwrite)
    print(export(args.runs, args.out, spec))
    return 0


def _verify(args: argparse.Namespace) -> int:
    from tailored_harness.core.errors import TailoredError
    from tailored_harness.submit.manifest import verify

    try:
        checked = verify(args.package)
    except TailoredError as err:
        print(f"tailored verify-submission: FAILED: {err}", file=sys.stderr)
        return 1
    print(f"{args.package}: {checked} files match manifest.json")
    return 0


def add_parsers(sub) -> None:
    """Register both commands on the ``tailored`` command's subparsers."""
    from tailored_harness.submit.card import MODEL_TYPES

    p = sub.add_parser("export-submission", help="package lm-eval output folders of one --model tailored model: "
                       "results, samples, a leaderboard request file, a model card and a manifest of sha256s")
    p.add_argument("runs", nargs="+", metavar="OUTPUT_PATH", help="lm_eval --output_path folders (use --log_samples "
                   "to include the samples)")
    p.add_argument("--out", required=True, help="package folder to create (must not exist, or be empty)")
    p.add_argument("--include-weights", action="store_true",
                   help="copy the pruned checkpoint and adapters in (default: the manifest points at the cache)")
    p.add_argument("--model-name", help="ORG/NAME the model is submitted as (default: local/<base>-tailored[-pNN])")
    p.add_argument("--base-model", help="hub id of the base model (default: found from the run when it can be)")
    p.add_argument("--license", help="licence of the model (default: the base model's, when known)")
    p.add_argument("--model-type", choices=MODEL_TYPES,
                   help="leaderboard model type (default: fine-tuned with adapters, else pretrained)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out package")
    p.set_defaults(func=_export)

    p = sub.add_parser("verify-submission", help="recheck a package's files and artifacts against its manifest.json")
    p.add_argument("package", help="a folder written by tailored export-submission")
    p.set_defaults(func=_verify)
