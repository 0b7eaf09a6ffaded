"""The suite's page (tailored report --html): self-contained, escaped, and drawn by a real browser."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tailored_harness.cli.main import main
from tailored_harness.suite import html_report
from test_run_samples import STAMP

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHOICES = [" yes", " no"]


def _write_choice_run(folder: Path, picks: dict[int, int], gold: dict[int, int]) -> Path:
    """An lm-eval folder of one two-choice task as lm-eval 0.4.13 logs it: arguments as
    ``{"gen_args_N": {"arg_0": context, "arg_1": choice}}``, the target as text, per-choice
    ``[loglikelihood, is_greedy]``; the run picks ``picks[doc]``."""
    model = folder / "model"
    model.mkdir(parents=True)
    acc = {i: float(picks[i] == gold[i]) for i in picks}
    results = {"results": {"yesno": {"acc,none": sum(acc.values()) / len(acc), "acc_stderr,none": 0.05}},
               "configs": {"yesno": {"metric_list": [{"metric": "acc"}]}}, "higher_is_better": {"yesno": {"acc": True}}}
    (model / f"results_{STAMP}.json").write_text(json.dumps(results))
    lines = []
    for i in picks:
        context = f"Question {i}: is <b>this</b> & <script>alert({i})</script> true?"
        arguments = {f"gen_args_{c}": {"arg_0": context, "arg_1": choice} for c, choice in enumerate(CHOICES)}
        scores = [["-1.0", "False"] if c == picks[i] else ["-2.0", "False"] for c in range(2)]
        lines.append(json.dumps({"doc_id": i, "doc": {"q": i}, "target": str(gold[i]), "arguments": arguments,
                                 "filtered_resps": scores, "filter": "none", "metrics": ["acc"], "acc": acc[i],
                                 "doc_hash": f"h{i}"}))
    (model / f"samples_yesno_{STAMP}.jsonl").write_text("\n".join(lines) + "\n")
    return folder


@pytest.fixture()
def page(tmp_path) -> Path:
    gold = {i: i % 2 for i in range(80)}
    dense = _write_choice_run(tmp_path / "dense", {i: gold[i] if i % 5 else 1 - gold[i] for i in range(80)}, gold)
    pruned = _write_choice_run(tmp_path / "p50", {i: gold[i] if i % 5 and i % 3 else 1 - gold[i] for i in range(80)}, gold)
    out = tmp_path / "page.html"
    assert main(["report", "--run", f"dense={dense}", "--run", f"p50={pruned}", "--paired", "p50=dense",
                 "--html", str(out), "--title", "Suite <test>"]) == 0
    return out


def test_page_holds_the_table_the_verdicts_and_the_flipped_documents_escaped(page):
    text = page.read_text()
    assert "<title>Suite &lt;test&gt;</title>" in text
    assert "<script>" not in text and "&lt;script&gt;alert(3)&lt;/script&gt;" in text  # document text is escaped
    assert 'src="http' not in text and "href=" not in text and "<link" not in text  # nothing from elsewhere
    assert '<tr class="worse"><td class="name">p50 &minus; dense</td>' in text  # 0 right only in p50, 22 only in dense
    assert "0 right only in p50, 21 right only in dense" in text
    assert text.count('<tr class="doc">') == 10  # ten shown of the 21
    assert "10 shown of 21" in text and "data:image/png;base64," in text
    assert '<tr><td class="name">yesno acc,none</td><td>80</td><td>0.1375 &ndash; 0.1375</td></tr>' in text


def test_render_uses_stderr_and_given_intervals_and_marks_baselines():
    rows = [{"configuration": "dense", "task": "wiki", "metric": "word_perplexity", "value": 30.0, "stderr": None},
            {"configuration": "dense", "task": "boolq", "metric": "acc", "value": 0.5, "stderr": 0.01},
            {"configuration": "dense", "task": "piqa", "metric": "acc", "value": 0.7, "stderr": 0.02}]
    text = html_report.render({"rows": rows, "label_baselines": {"boolq": {"majority": 0.62, "chance": 0.5}}}, "t",
                              {("dense", "wiki", "word_perplexity"): (28.5, 31.25)})
    assert "<td>30.00<span class=\"ci\">[28.50, 31.25]</span></td>" in text
    assert f"[{100 * (0.5 - 1.959963984540054 * 0.01):.1f}, {100 * (0.5 + 1.959963984540054 * 0.01):.1f}]" in text
    assert "<td>60.0</td>" in text and "<td>62.0 / 50.0</td>" in text  # mean of 50 and 70; boolq's majority


@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (apt-get install chromium; .ci/run installs it)")
def test_headless_chromium_draws_the_page_with_its_verdict_colours(page, tmp_path):
    import matplotlib.image

    png = tmp_path / "page.png"
    command = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               f"--user-data-dir={tmp_path / 'profile'}", "--hide-scrollbars", "--window-size=1400,1200",
               f"--screenshot={png}", page.as_uri()]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert png.exists(), result.stderr[-2000:]
    pixels = (matplotlib.image.imread(png)[..., :3] * 255).round().astype(int)
    assert pixels.shape[:2] == (1200, 1400) and pixels.std() > 10  # something is drawn
    worse = (abs(pixels - [0xF8, 0xD7, 0xD7]).sum(axis=-1) <= 3).sum()  # the "worse" verdict row's background
    assert worse > 2000, f"{worse} pixels of the 'worse' row's colour"
