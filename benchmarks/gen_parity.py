"""The generation tasks on both backends, with and without adapters: exact match, and whether
``backend=vllm`` writes the very generations ``backend=hf`` writes.

For each ``shots`` value (default ``0,50``) and each backend (``hf``, then ``vllm``, which finds
the adapters ``hf`` trained in the cache), runs ``lm_eval --model tailored`` in a subprocess on the
``--tasks`` (default ``boolq_gen_tailored,piqa_gen_tailored``) with ``--log_samples``, then prints
one row per task and ``shots``: exact match per backend, and how many of the documents' greedy
generations are identical across the two backends. Float32. Run it where vLLM is installed
(``.venv-vllm``), from a folder where the tasks' datasets resolve (``../shared/data/hub`` offline).

Usage: ``python benchmarks/gen_parity.py --model DIR [--limit 100] [--shots 0,50] [--extra ,prune_ratio=0.2] --out DIR``
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

METRIC = "exact_match,first_word"


def run(model: str, backend: str, shots: int, tasks: str, limit: int, extra: str, out: Path) -> Path:
    """One ``lm_eval`` run; returns its output folder (results and samples)."""
    folder = out / f"{backend}_shots{shots}"
    lm_eval = Path(sys.executable).with_name("lm_eval")
    args = f"pretrained={model},dtype=float32,backend={backend},shots={shots}{extra}"
    command = [str(lm_eval), "--model", "tailored", "--model_args", args, "--tasks", tasks, "--limit", str(limit),
               "--batch_size", "auto" if backend == "vllm" else "8", "--device", "cpu", "--log_samples",
               "--output_path", str(folder)]
    print("+", " ".join(command), flush=True)
    subprocess.run(command, check=True)
    return folder


def read(folder: Path, task: str) -> tuple[float, dict[int, str]]:
    """(exact match, {doc_id: raw generation}) of one task in one run's output folder."""
    (results,) = folder.rglob("results_*.json")
    (samples,) = folder.rglob(f"samples_{task}_*.jsonl")
    rows = [json.loads(line) for line in samples.read_text().splitlines()]
    return json.loads(results.read_text())["results"][task][METRIC], {r["doc_id"]: r["resps"][0][0] for r in rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="model folder or .gguf file")
    parser.add_argument("--tasks", default="boolq_gen_tailored,piqa_gen_tailored")
    parser.add_argument("--limit", type=int, default=100, help="documents per task")
    parser.add_argument("--shots", default="0,50", help="comma-separated shots values (0: no adapters)")
    parser.add_argument("--extra", default="", help="more model_args, starting with a comma")
    parser.add_argument("--out", required=True, type=Path, help="folder for the runs' outputs")
    args = parser.parse_args()
    from tabulate import tabulate

    rows = []
    for shots in (int(s) for s in args.shots.split(",")):
        folders = {b: run(args.model, b, shots, args.tasks, args.limit, args.extra, args.out) for b in ("hf", "vllm")}
        for task in args.tasks.split(","):
            (hf_em, hf_gen), (vllm_em, vllm_gen) = read(folders["hf"], task), read(folders["vllm"], task)
            same = sum(hf_gen[d] == vllm_gen.get(d) for d in hf_gen)
            rows.append([task, shots, f"{hf_em:.4f}", f"{vllm_em:.4f}", f"{same}/{len(hf_gen)}",
                         repr(hf_gen[min(hf_gen)])])
    print(tabulate(rows, headers=["task", "shots", "hf exact match", "vLLM exact match", "identical generations",
                                  "first generation"], tablefmt="github"))


if __name__ == "__main__":
    main()
