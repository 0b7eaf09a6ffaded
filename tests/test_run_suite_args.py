"""run_suite.sh refuses bad options in one line, before anything runs."""

from __future__ import annotations

import json

import pytest

from conftest import REPO_ROOT, run_cli

SUITE = ["bash", str(REPO_ROOT / "run_suite.sh")]


@pytest.mark.parametrize("args,needle", [
    (["--suite", "llama"], "--suite 'llama' is not a suite (valid: synthetic, smollm2, gemma3)"),
    (["--quick"], "--quick is a reduced real-suite run; add --suite smollm2 or gemma3"),
    (["--suite", "smollm2", "--data-dir", "/no/such/folder"], "--data-dir '/no/such/folder' is not a folder"),
    (["--frobnicate"], "unknown argument '--frobnicate' (valid: --suite --quick --data-dir"),
    (["--backend", "tpu"], "--backend 'tpu' is not a backend (valid: hf, vllm)"),
    (["--docs", "hellaswag"], "--docs 'hellaswag' must look like TASK=N, e.g. hellaswag=2000"),
    (["--docs", "hellaswag=0"], "--docs 'hellaswag=0': N must be a positive whole number"),
    (["--limit", "3", "--docs", "piqa=2"], "give --limit or --docs, not both"),
])
def test_bad_options_are_refused_in_one_line(args, needle, tmp_path):
    result = run_cli([*SUITE, *args, "--out", str(tmp_path / "s.json"), "--runs", str(tmp_path / "runs")])
    assert result.returncode == 2 and needle in result.stderr, result.stderr
    assert result.stderr.strip().count("\n") == 0 and not (tmp_path / "runs").exists()


def test_help_lists_the_real_suite():
    result = run_cli([*SUITE, "--help"])
    assert result.returncode == 0 and "--suite S" in result.stdout and "smollm2" in result.stdout


def test_full_real_suite_has_the_general_recovery_rows_with_the_given_data(tmp_path):
    """The configurations the full smollm2 suite runs, read off stand-ins for ``lm_eval`` and
    ``tailored`` first on PATH: LLM-Pruner's general recovery at 0.2 and 0.5, on the data given
    (made absolute, since lm_eval runs from --data-dir), beside the per-task adapters."""
    import os
    import subprocess

    bin_dir, calls = tmp_path / "bin", tmp_path / "calls.txt"
    bin_dir.mkdir()
    for name in ("lm_eval", "tailored"):  # `tailored digest RUN --out F` writes F, as the real one does
        (bin_dir / name).write_text(f'#!/bin/sh\necho "{name} $*" >> {calls}\n[ "$1" != digest ] || echo {{}} > "$4"\n'
                                    f'echo {tmp_path}/model\n')
        (bin_dir / name).chmod(0o755)
    (tmp_path / "alpaca.json").write_text("[]")
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}  # run_cli would put the venv first
    result = subprocess.run([*SUITE, "--suite", "smollm2", "--recovery-data", "alpaca.json", "--out",
                             str(tmp_path / "s.json"), "--runs", str(tmp_path / "runs")], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    runs = [line for line in calls.read_text().splitlines() if line.startswith("lm_eval")]
    general = [line for line in runs if "adapt_scope=general" in line]
    assert len(general) == 2 and len(runs) == 1 + 3 + 2 * 7  # dense, dense adapted x 3; per ratio 7 rows
    for ratio, line in zip(("0.2", "0.5"), general):
        assert f"prune_ratio={ratio},prune_layers=4-27,importance=param_first,adapt_scope=general," \
               f"recovery_data={tmp_path}/alpaca.json " in line
    assert "--run p20_general=" in calls.read_text() and "--run p50_general=" in calls.read_text()
    assert all("--tasks boolq,piqa,winogrande,hellaswag,wikitext " in line and " --samples " in line for line in runs)
    order = [line.split("--output_path ")[1].split("/")[-1] for line in runs]  # the claims' rows first
    assert order[:7] == ["dense", "p20_param_first", "p20_adapt50_s0", "p20_general", "p50_param_first",
                         "p50_adapt50_s0", "p50_general"] and order[-3:] == [f"dense_adapt50_s{s}" for s in range(3)]
    report = next(line for line in calls.read_text().splitlines() if line.startswith("tailored report"))
    assert report.index("--run dense=") < report.index("--run dense_adapt50_s0=") < report.index("--run p20_param_first=")
    assert json.loads((tmp_path / "runs" / "documents.json").read_text()) == {"hellaswag": list(range(2000))}
    digests = sorted(p.name for p in (tmp_path / "s-digests").iterdir())
    assert len(digests) == 2 * len(runs) and "p20_general.json" in digests and "p20_general.args" in digests
    report = next(line for line in calls.read_text().splitlines() if line.startswith("tailored report"))
    for p in ("p20", "p50"):  # every claim of the table is tested document by document
        claims = [f"{p}_param_first=dense", f"{p}_param_first={p}_l2", f"{p}_param_first={p}_random"]
        claims += [f"{p}_adapt50_s{s}={p}_{ref}" for s in range(3) for ref in ("param_first", "general")]
        claims += [f"{p}_adapt50_s0=dense"]  # what the pruned and adapted model keeps of dense
        assert all(f"--paired {claim} " in report + " " for claim in claims), report
    claims = [f"dense_adapt50_s{s}=dense" for s in range(3)]  # what the adapters do without pruning
    assert all(f"--paired {claim} " in report + " " for claim in claims), report


def test_resume_reuses_the_configurations_whose_digest_has_the_same_arguments(tmp_path):
    """Stand-ins as above, on the quick suite: a second run with --resume scores nothing and reports
    from the digests, also when the real model now resolves to another cache folder (a cache key that
    changed with the code); a configuration whose arguments changed (another --limit) is scored again."""
    import os
    import subprocess

    bin_dir, calls = tmp_path / "bin", tmp_path / "calls.txt"
    bin_dir.mkdir()
    for name in ("lm_eval", "tailored"):
        (bin_dir / name).write_text(f'#!/bin/sh\necho "{name} $*" >> {calls}\n[ "$1" != digest ] || echo {{}} > "$4"\n'
                                    f'echo ${{STANDIN_MODEL:-{tmp_path}/model}}\n')
        (bin_dir / name).chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    args = [*SUITE, "--suite", "smollm2", "--quick", "--out", str(tmp_path / "q.json"), "--runs", str(tmp_path / "runs")]

    def scored(*extra: str) -> list[str]:
        calls.write_text("")
        result = subprocess.run([*args, *extra], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr
        return [line for line in calls.read_text().splitlines() if line.startswith("lm_eval")]

    assert len(scored()) == 5
    assert scored("--resume") == []
    assert (tmp_path / "q-digests" / "dense.args").read_text().startswith("model=smollm2 ")
    env["STANDIN_MODEL"] = str(tmp_path / "another-cache-key")  # the same real model under a new cache key
    assert scored("--resume") == []
    del env["STANDIN_MODEL"]
    report = next(line for line in calls.read_text().splitlines() if line.startswith("tailored report"))
    assert f"--run dense={tmp_path}/q-digests/dense.json" in report and f"--html {tmp_path}/q.html" in report
    assert len(scored("--resume", "--limit", "50")) == 5  # other arguments: nothing reused
    assert scored("--resume", "--limit", "50", "--paired", "p50_param_first=p20_param_first") == []
    assert "--paired p50_param_first=p20_param_first" in calls.read_text()
    assert len(scored()) == 5  # without --resume every configuration is scored


def test_gemma3_suite_prunes_query_heads_of_layers_4_15_of_the_gemma_real_model(tmp_path):
    """The same real suite on Gemma 3 270M: its model from ``tailored real-model gemma3-270m``, every
    pruned row on layers 4-15 with query-head units (one KV head per layer cannot go), its own outputs."""
    import os
    import subprocess

    bin_dir, calls = tmp_path / "bin", tmp_path / "calls.txt"
    bin_dir.mkdir()
    for name in ("lm_eval", "tailored"):
        (bin_dir / name).write_text(f'#!/bin/sh\necho "{name} $*" >> {calls}\n[ "$1" != digest ] || echo {{}} > "$4"\n'
                                    f'echo {tmp_path}/model\n')
        (bin_dir / name).chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    result = subprocess.run([*SUITE, "--suite", "gemma3", "--quick", "--no-check", "--out", str(tmp_path / "g.json"),
                             "--runs", str(tmp_path / "runs")], cwd=tmp_path, env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    lines = calls.read_text().splitlines()
    assert "tailored real-model gemma3-270m" in lines
    runs = [line for line in lines if line.startswith("lm_eval")]
    pruned = [line for line in runs if "prune_ratio=" in line]
    assert len(runs) == 5 and len(pruned) == 4
    assert all("prune_layers=4-15,attention_unit=query_head," in line for line in pruned)
    assert all("--tasks boolq,piqa " in line and "--limit 100 " in line for line in runs)
