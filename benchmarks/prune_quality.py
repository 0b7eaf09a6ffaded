"""How well each pruning criterion keeps a real model, measured by perplexity (WikiText-2 and PTB).

LLM-Pruner's own check of a criterion is the perplexity of the pruned model without any recovery:
on LLaMA-7B at 20% it reports WikiText-2 12.6 dense, 19.1 with element-wise Taylor, 27.5 random
and 582 with ``l2``. This script makes the same measurement for every criterion and for the
variants that could explain a gap (calibration size and source, which part of the layer is pruned;
``--grid grouping``: ranking units across layers, a group's members combined by their largest),
on one model loaded once: each configuration prunes a copy of it in memory with the package's own
stages (``calibration_batch``, ``score_units``, ``select``, ``apply``, ``finalize``) and scores it with
lm-eval's ``HFLM`` on the stock ``wikitext`` task and ``ptb_tailored``: lm-eval's word perplexity,
the number LLM-Pruner's table reports as PPL is token-level at 128 tokens, so compare ratios to
dense, not values.

Rows go to ``--out`` after each configuration and are skipped when present (resumable). Calibration
text is written to ``--work``: ``wiki.txt`` (the Wikipedia passages of BoolQ's *training* slice, the
text nearest LLM-Pruner's BookCorpus that holds no evaluated WikiText page) and ``alpaca.txt``
(instruction data).

Usage (offline, nothing else running)::

    M=$(tailored real-model smollm2)
    TAILORED_PTB_DIR=../shared/data/text python benchmarks/prune_quality.py --model $M \\
        --data-dir ../shared/data/hub --grid criteria --out results/prune_quality.json
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import os
import time
from pathlib import Path

import resumable

LAYERS = "4-27"
TASKS = ("wikitext", "ptb_tailored")
SEEDS = (0, 1, 2)
PARTS = {"both": None, "mlp": ("mlp",), "attention": ("attention",)}


def cfg(name: str, importance: str, ratio: float, calibration: str = "wiki", samples: int = 10, seq_len: int = 64,
        seed: int = 0, part: str = "both", ranking: str = "layer", reduction: str = "sum") -> dict:
    return {"name": name, "importance": importance, "ratio": ratio, "calibration": calibration, "samples": samples,
            "seq_len": seq_len, "seed": seed, "part": part, "ranking": ranking, "reduction": reduction}


def grid(name: str, ratios: list[float]) -> list[dict]:
    """The named set of configurations (``criteria``: the acceptance table; ``variants`` and
    ``grouping``: item 4's; their reference rows are the criteria and variants grids', same ``--out``)."""
    out = [cfg("dense", "none", 0.0)]
    for r in ratios:
        if name == "criteria":
            out.append(cfg(f"taylor_{r}", "param_first", r))
            out.append(cfg(f"l2_{r}", "l2", r))
            out += [cfg(f"random_{r}_s{s}", "random", r, seed=s) for s in SEEDS]
        elif name == "variants":  # most telling first; its reference rows are the criteria grid's (same --out)
            out.append(cfg(f"taylor_{r}", "param_first", r))
            out += [cfg(f"random_{r}_s{s}", "random", r, seed=s) for s in SEEDS]
            for part in ("mlp", "attention"):  # where does Taylor lose: the MLP's channels or the KV groups?
                out.append(cfg(f"taylor_{r}_{part}", "param_first", r, part=part))
                out += [cfg(f"random_{r}_{part}_s{s}", "random", r, seed=s, part=part) for s in SEEDS[:2]]
            out += [cfg(f"{c}_{r}", c, r) for c in ("param_second", "vectorize")]
            out.append(cfg(f"taylor_{r}_n128x128", "param_first", r, samples=128, seq_len=128))
            out += [cfg(f"{c}_{r}", c, r) for c in ("param_mix", "l1")]
            out += [cfg(f"taylor_{r}_alpaca", "param_first", r, calibration="alpaca"),
                    cfg(f"taylor_{r}_s1", "param_first", r, seed=1), cfg(f"taylor_{r}_s2", "param_first", r, seed=2)]
        elif name == "grouping":  # three calibration draws each, as the per-layer Taylor rows have
            out += [cfg(f"taylor_{r}_global_s{s}", "param_first", r, seed=s, ranking="global") for s in SEEDS]
            out += [cfg(f"random_{r}_global_s{s}", "random", r, seed=s, ranking="global") for s in SEEDS[:2]]
            out += [cfg(f"taylor_{r}_max_s{s}", "param_first", r, seed=s, reduction="max") for s in SEEDS]
            out.append(cfg(f"taylor_{r}_global_max", "param_first", r, ranking="global", reduction="max"))
        else:
            raise SystemExit(f"--grid {name!r}: valid: criteria, variants, grouping")
    return out


def write_calibration(work: Path, shared: Path) -> dict[str, Path]:
    """The calibration files (one document a line): BoolQ training passages and Alpaca examples."""
    work.mkdir(parents=True, exist_ok=True)
    wiki, alpaca = work / "wiki.txt", work / "alpaca.txt"
    if not wiki.is_file():
        rows = [json.loads(line) for line in (shared / "data/hub/aps/super_glue/boolq/train.jsonl").open()]
        passages = dict.fromkeys(" ".join(r["passage"].split()) for r in rows)
        wiki.write_text("\n".join(passages) + "\n")
    if not alpaca.is_file():
        rows = json.loads((shared / "data/general/alpaca_small.json").read_text())
        alpaca.write_text("\n".join(" ".join(" ".join([r["instruction"], r["input"], r["output"]]).split())
                                    for r in rows) + "\n")
    return {"wiki": wiki, "alpaca": alpaca}


def prune_copy(dense, tokenizer, config: dict, files: dict[str, Path]):
    """A pruned copy of ``dense`` (the package's stages), its parameter count and calibration loss input."""
    from tailored_harness.prune import calibration
    from tailored_harness.prune.importance import score_units
    from tailored_harness.prune.plan import apply, finalize, select
    from tailored_harness.prune.spec import PruneSpec, selected_layers
    from tailored_harness.prune.units import parameter_counts

    model = copy.deepcopy(dense)
    if config["importance"] == "none":
        return model, parameter_counts(model)["total"]
    spec = PruneSpec(ratio=config["ratio"], layers=LAYERS, importance=config["importance"],
                     calibration=str(files[config["calibration"]]), samples=config["samples"],
                     seq_len=config["seq_len"], seed=config["seed"], ranking=config.get("ranking", "layer"),
                     group_reduction=config.get("reduction", "sum"))
    batch = calibration.calibration_batch(spec, tokenizer)
    kinds = tuple(k for k in spec.kinds if PARTS[config["part"]] is None or k in PARTS[config["part"]])
    scores = score_units(model, spec.importance, selected_layers(spec.layers, len(model.model.layers)),
                         input_ids=None if batch is None else batch.input_ids,
                         labels=None if batch is None else batch.labels, seed=spec.seed, progress=False, kinds=kinds,
                         reduction=spec.group_reduction)
    apply(model, select(scores, spec))
    model = finalize(model)
    return model, parameter_counts(model)["total"]


def perplexity(model, tokenizer, limits: dict[str, int | None], max_length: int, batch_size: int) -> dict:
    """lm-eval's word and byte perplexity of ``model`` on each task, ``limits[task]`` documents."""
    import lm_eval
    from lm_eval.models.huggingface import HFLM

    lm = HFLM(pretrained=model, tokenizer=tokenizer, max_length=max_length, batch_size=batch_size, device="cpu")
    out = {}
    for task, limit in limits.items():
        res = lm_eval.simple_evaluate(model=lm, tasks=[task], limit=limit, verbosity="WARNING")
        values = res["results"][task]
        out[task] = {"word_perplexity": values["word_perplexity,none"],
                     "byte_perplexity": values["byte_perplexity,none"], "docs": res["n-samples"][task]["effective"]}
    return out


def run_one(dense, tokenizer, config: dict, files, limits, max_length: int, batch_size: int) -> dict:
    started = time.monotonic()
    model, params = prune_copy(dense, tokenizer, config, files)
    pruned_s = time.monotonic() - started
    scores = perplexity(model, tokenizer, limits, max_length, batch_size)
    return {**config, "parameters": params, "prune_s": round(pruned_s, 1),
            "seconds": round(time.monotonic() - started, 1), "tasks": scores}


def report(rows: dict) -> str:
    from tabulate import tabulate

    dense = rows.get("dense")
    body = []
    for row in rows.values():
        cells = [row["name"], row["importance"], row["ratio"], f"{row['samples']}x{row['seq_len']} {row['calibration']}",
                 row["part"], f"{row.get('ranking', 'layer')}/{row.get('reduction', 'sum')}", row["parameters"]]
        for task in TASKS:
            ppl = row["tasks"].get(task, {}).get("word_perplexity")
            base = dense["tasks"].get(task, {}).get("word_perplexity") if dense else None
            cells += [f"{ppl:.1f}" if ppl else "", f"{ppl / base:.2f}" if ppl and base else ""]
        cells.append(row["seconds"])
        body.append(cells)
    head = ["configuration", "criterion", "ratio", "calibration", "pruned", "ranking/members", "parameters"]
    for task in TASKS:
        head += [f"{task} word ppl", "x dense"]
    return tabulate(body + [], head + ["s"], tablefmt="github")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--data-dir", required=True, help="the shared data's hub folder (wikitext offline)")
    parser.add_argument("--grid", default="criteria", help="criteria, variants or grouping")
    parser.add_argument("--ratios", default="0.2,0.5")
    parser.add_argument("--wikitext-limit", type=int, default=None, help="WikiText-2 test pages (default: all 62)")
    parser.add_argument("--ptb-limit", type=int, default=None, help="PTB documents of 200 sentences (default: all 19)")
    parser.add_argument("--max-length", type=int, default=1024)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--work", default="results/runs/prune_quality", help="calibration files")
    parser.add_argument("--out", default="results/prune_quality.json")
    parser.add_argument("--report-only", action="store_true")
    args = parser.parse_args()
    out = Path(args.out).resolve()
    if not args.report_only:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        logging.getLogger("lm_eval").setLevel(logging.WARNING)
        data_dir = Path(args.data_dir).resolve()
        files = write_calibration(Path(args.work).resolve(), data_dir.parent.parent)
        os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.chdir(data_dir)
        tokenizer = AutoTokenizer.from_pretrained(args.model)
        dense = AutoModelForCausalLM.from_pretrained(args.model, dtype=torch.float32).eval()
        limits = {"wikitext": args.wikitext_limit, "ptb_tailored": args.ptb_limit}
        plan = grid(args.grid, [float(r) for r in args.ratios.split(",")])
        meta = {"model": args.model, "limits": limits, "max_length": args.max_length, "layers": LAYERS}
        saved = resumable.load(out)
        if saved.get("limits") not in (None, limits) or saved.get("max_length") not in (None, args.max_length):
            raise SystemExit(f"{out} was measured with limits {saved.get('limits')}, max_length "
                             f"{saved.get('max_length')}: use another --out")
        saved = resumable.run_missing(out, plan, lambda c: c["name"],
                                      lambda c: run_one(dense, tokenizer, c, files, limits, args.max_length,
                                                        args.batch_size), meta)
    else:
        saved = resumable.load(out)
    print(report(saved["rows"]))


if __name__ == "__main__":
    main()
