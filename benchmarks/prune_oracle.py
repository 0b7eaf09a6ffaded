"""Does each importance criterion rank units by the damage their removal really does?

Every criterion estimates how much the loss rises when a unit (a KV group, an MLP channel) is
removed. This script measures that rise directly, one unit at a time, on the dense model: the unit's
output is zeroed (its ``o_proj`` columns, or its ``down_proj`` column, which is what pruning it does
to the layer's output), the loss on held-out text is computed, the weights restored. It then
compares each criterion's scores, from the package's own ``score_units``, with those measured rises:

* attention: in how many of the pruned layers the criterion's least important KV group is the one
  whose removal hurts least (chance: 1 in the number of groups), and the rise its choice costs over
  the best choice, summed over layers;
* MLP: Spearman's rank correlation between a criterion's channel scores and the measured rises, on
  ``--channels`` channels drawn per layer, averaged over layers (0: no better than random).

Held-out text: Wikipedia passages of BoolQ's training slice, a seeded draw other than the
calibration's (``--work``/wiki.txt, written by ``prune_quality.py``).

Usage (offline, nothing else running)::

    python benchmarks/prune_oracle.py --model $(tailored real-model smollm2) --work results/runs/prune_quality
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

CRITERIA = ("param_first", "vectorize", "param_second", "param_mix", "l1", "l2")


def held_out(tokenizer, wiki: Path, samples: int, length: int, seed: int):
    from tailored_harness.prune import calibration
    from tailored_harness.prune.spec import PruneSpec

    spec = PruneSpec(ratio=0.2, calibration=str(wiki), samples=samples, seq_len=length, seed=seed)
    return calibration.calibration_batch(spec, tokenizer).input_ids


def loss_of(model, ids) -> float:
    import torch

    with torch.no_grad():
        return float(model(input_ids=ids, labels=ids).loss)


def rises(model, ids, layers: list[int], channels: int, seed: int, mlp_every: int) -> dict:
    """Measured loss rise per KV group of every layer in ``layers``, and per sampled MLP channel of
    every ``mlp_every``-th of them."""
    import torch
    from tqdm.auto import tqdm

    from tailored_harness.prune.units import Geometry

    base = loss_of(model, ids)
    geometry = Geometry.of(model.config)
    generator = torch.Generator().manual_seed(seed)
    out = {}
    for i in tqdm(layers, desc="measuring removals", unit="layer"):
        layer = model.model.layers[i]
        o_proj, down = layer.self_attn.o_proj.weight, layer.mlp.down_proj.weight
        width = geometry.width("query")  # o_proj columns of one KV group's query heads
        attention = []
        for group in range(o_proj.shape[1] // width):
            cols = slice(group * width, (group + 1) * width)
            saved = o_proj.data[:, cols].clone()
            o_proj.data[:, cols] = 0
            attention.append(loss_of(model, ids) - base)
            o_proj.data[:, cols] = saved
        picked = torch.randperm(down.shape[1], generator=generator)[:channels].tolist()
        if (i - layers[0]) % mlp_every:
            picked = []
        mlp = []
        for c in picked:
            saved = down.data[:, c].clone()
            down.data[:, c] = 0
            mlp.append(loss_of(model, ids) - base)
            down.data[:, c] = saved
        out[i] = {"attention": attention, "channels": picked, "mlp": mlp}
    return {"base_loss": base, "layers": out}


def agreement(scores: dict, measured: dict) -> dict:
    """How a criterion's scores match the measured rises (see the module docstring)."""
    from scipy.stats import spearmanr

    hits, regret, rhos = 0, 0.0, []
    for i, m in measured["layers"].items():
        s = scores[int(i)]
        att = s["attention"].tolist()
        chosen = min(range(len(att)), key=lambda g: att[g])
        best = min(range(len(att)), key=lambda g: m["attention"][g])
        hits += chosen == best
        regret += m["attention"][chosen] - m["attention"][best]
        if m["channels"]:
            rhos.append(float(spearmanr(s["mlp"][m["channels"]].tolist(), m["mlp"]).statistic))
    n = len(measured["layers"])
    return {"attention_best_group": f"{hits}/{n}", "attention_regret": round(regret, 4),
            "mlp_spearman_mean": round(statistics.mean(rhos), 3), "mlp_spearman_min": round(min(rhos), 3),
            "mlp_spearman_max": round(max(rhos), 3)}


def main() -> None:
    import torch
    from tabulate import tabulate
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from tailored_harness.prune import calibration
    from tailored_harness.prune.importance import score_units
    from tailored_harness.prune.spec import PruneSpec

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--work", default="results/runs/prune_quality", help="folder holding wiki.txt")
    parser.add_argument("--layers", default="4-27")
    parser.add_argument("--channels", type=int, default=24, help="MLP channels measured per measured layer")
    parser.add_argument("--mlp-every", type=int, default=3, help="measure MLP channels in every k-th layer")
    parser.add_argument("--held-out", default="4x128", help="held-out text, samples x tokens")
    parser.add_argument("--calibrations", default="10x64,64x128", help="calibration sizes compared, N x L")
    parser.add_argument("--out", default="results/prune_oracle.json")
    args = parser.parse_args()
    torch.manual_seed(0)
    wiki = Path(args.work) / "wiki.txt"
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    model = AutoModelForCausalLM.from_pretrained(args.model, dtype=torch.float32).eval()
    first, last = (int(x) for x in args.layers.split("-"))
    layers = list(range(first, last + 1))
    n, length = (int(x) for x in args.held_out.split("x"))
    out_path = Path(args.out)
    saved = json.loads(out_path.read_text()) if out_path.is_file() else {}
    if "measured" not in saved:
        saved["measured"] = rises(model, held_out(tokenizer, wiki, n, length, seed=1234), layers, args.channels, 0,
                                   args.mlp_every)
        out_path.write_text(json.dumps(saved, indent=1))
    measured = saved["measured"]
    rows = saved.setdefault("rows", {})
    for calib in args.calibrations.split(","):
        samples, seq_len = (int(x) for x in calib.split("x"))
        spec = PruneSpec(ratio=0.2, layers=args.layers, calibration=str(wiki), samples=samples, seq_len=seq_len)
        batch = calibration.calibration_batch(spec, tokenizer)
        for name in CRITERIA:
            key = f"{name}|{calib}"
            if key in rows or (calib != args.calibrations.split(",")[0] and name in ("l1", "l2")):
                continue
            scores = score_units(model, name, layers, input_ids=batch.input_ids, labels=batch.labels, progress=False)
            rows[key] = {"criterion": name, "calibration": calib, **agreement(scores, measured)}
            out_path.write_text(json.dumps(saved, indent=1))
    groups = [m["attention"] for m in measured["layers"].values()]
    random_hits = sum(1 / len(g) for g in groups)
    random_regret = sum(statistics.mean(g) - min(g) for g in groups)
    worst_regret = sum(max(g) - min(g) for g in groups)
    print(f"base loss {measured['base_loss']:.4f} on {args.held_out} held-out tokens. Random choice of the group "
          f"to drop: {random_hits:.1f}/{len(layers)} layers best, expected regret {random_regret:.4f} (the worst "
          f"choice everywhere: {worst_regret:.4f}); MLP Spearman of random scores: 0")
    print(tabulate([list(r.values()) for r in rows.values()], list(next(iter(rows.values())).keys()), tablefmt="github"))


if __name__ == "__main__":
    main()
