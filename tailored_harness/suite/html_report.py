"""The suite as one self-contained HTML page a person reads (``tailored report --html``).

:func:`render` is pure: from a suite summary (what ``tailored report --out`` writes: rows, paired
comparisons, label baselines), intervals for the cells lm-eval gives no stderr for, the flipped
documents of each compared pair (:mod:`tailored_harness.suite.flips`) and the plot's PNG bytes, it
returns the page: the paper-style table (a row per configuration, a column per task, perplexity
first, then accuracy and its mean), every cell with its 95% interval; the paired verdicts; the plot;
and, for each pair, the documents that flipped, readable. No script, no stylesheet or image from
elsewhere: the page opens from a file, offline.
"""

from __future__ import annotations

import base64
import html
from typing import Any

from tailored_harness.suite.paper_table import ACCURACY, PERPLEXITY

Z95 = 1.959963984540054  # the normal quantile of a 95% two-sided interval
STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; max-width: 1400px; }
table { border-collapse: collapse; margin: 1em 0; font-size: 14px; }
th, td { border: 1px solid #ccc; padding: 4px 8px; text-align: right; vertical-align: top; }
th { background: #f0f0f0; } td.name, th.name { text-align: left; }
.ci { color: #666; font-size: 11px; display: block; }
.better { background: #d8f3d8; } .worse { background: #f8d7d7; } .undecided { background: #f4f4f4; }
details { margin: 0.5em 0; } summary { cursor: pointer; font-weight: 600; }
.doc td { text-align: left; max-width: 600px; white-space: pre-wrap; }
.context { max-height: 8em; overflow: auto; display: block; }
.right { color: #186a18; font-weight: 600; } .wrong { color: #a01c1c; }
"""


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _columns(rows: list[dict[str, Any]]) -> tuple[list[str], list[str]]:
    ppl = sorted({r["task"] for r in rows if r["metric"] == PERPLEXITY})
    acc = sorted({r["task"] for r in rows if r["metric"] == ACCURACY})
    return ppl, acc


def _cell(row: dict[str, Any] | None, interval: tuple[float, float] | None, scale: float, digits: int) -> str:
    if row is None:
        return "<td></td>"
    value = row["value"]
    if interval is None and row.get("stderr") is not None:
        interval = (value - Z95 * row["stderr"], value + Z95 * row["stderr"])
    ci = "" if interval is None else f'<span class="ci">[{scale * interval[0]:.{digits}f}, {scale * interval[1]:.{digits}f}]</span>'
    return f"<td>{scale * value:.{digits}f}{ci}</td>"


def table(rows: list[dict[str, Any]], intervals: dict[tuple[str, str, str], tuple[float, float]],
          baselines: dict[str, dict[str, float]]) -> str:
    """The paper-style table: perplexity columns, accuracy columns (%) and their mean, each cell with
    its 95% interval (lm-eval's stderr x 1.96, or ``intervals[(configuration, task, metric)]``)."""
    ppl, acc = _columns(rows)
    by_key = {(r["configuration"], r["task"], r["metric"]): r for r in rows}
    head = "".join(f"<th>{_e(t)} ppl</th>" for t in ppl) + "".join(f"<th>{_e(t)} acc %</th>" for t in acc)
    head += "<th>mean acc %</th>" if len(acc) > 1 else ""
    body = []
    for name in dict.fromkeys(r["configuration"] for r in rows):
        cells = [_cell(by_key.get((name, t, PERPLEXITY)), intervals.get((name, t, PERPLEXITY)), 1.0, 2) for t in ppl]
        cells += [_cell(by_key.get((name, t, ACCURACY)), intervals.get((name, t, ACCURACY)), 100.0, 1) for t in acc]
        if len(acc) > 1:
            values = [by_key[(name, t, ACCURACY)]["value"] for t in acc if (name, t, ACCURACY) in by_key]
            cells.append(f"<td>{100 * sum(values) / len(values):.1f}</td>" if len(values) == len(acc) else "<td></td>")
        body.append(f'<tr><td class="name">{_e(name)}</td>{"".join(cells)}</tr>')
    foot = ""
    if any(t in baselines for t in acc):
        def mark(t: str) -> str:
            majority = baselines[t].get("majority")
            return f"<td>{'&ndash;' if majority is None else f'{100 * majority:.1f}'} / {100 * baselines[t]['chance']:.1f}</td>"

        marks = "".join(mark(t) if t in baselines else "<td></td>" for t in acc)
        foot = f'<tr><td class="name">majority / chance</td>{"<td></td>" * len(ppl)}{marks}{"<td></td>" if len(acc) > 1 else ""}</tr>'
    return (f'<table><tr><th class="name">configuration</th>{head}</tr>{"".join(body)}{foot}</table>')


def paired_table(paired: list[dict[str, Any]]) -> str:
    """Every compared pair, task and metric: both values, the difference with its interval, the flips,
    McNemar's p, the minimum detectable difference and the verdict (coloured)."""
    def num(x: float | None, sign: str = "") -> str:
        return "none" if x is None else f"{x:{sign}.4f}"

    lines = []
    for item in paired:
        for r in item["rows"]:
            low, high = r["interval"]
            flips = "" if r["only_a"] is None else f"{r['only_a']} / {r['only_b']}"
            p = "" if r["p_value"] is None else f"{r['p_value']:.3g}"
            lines.append(f'<tr class="{_e(r["verdict"])}"><td class="name">{_e(item["a"])} &minus; {_e(item["b"])}</td>'
                         f'<td class="name">{_e(r["task"])}</td><td class="name">{_e(r["metric"])}</td><td>{r["n"]}</td>'
                         f'<td>{num(r["a"])}</td><td>{num(r["b"])}</td><td>{num(r["difference"], "+")}</td>'
                         f'<td>[{num(low, "+")}, {num(high, "+")}]</td><td>{flips}</td><td>{p}</td>'
                         f'<td>{num(r["minimum_detectable"])}</td><td class="name">{_e(r["verdict"])}</td></tr>')
    head = ("<tr><th class='name'>a &minus; b</th><th class='name'>task</th><th class='name'>metric</th><th>docs</th>"
            "<th>a</th><th>b</th><th>a &minus; b</th><th>95% paired interval</th><th>flips (only a / only b)</th>"
            "<th>McNemar p</th><th>min. detectable</th><th class='name'>a is</th></tr>")
    return f"<table>{head}{''.join(lines)}</table>"


def detectable_table(paired: list[dict[str, Any]]) -> str:
    """Per task and metric, the documents and the span of the minimum detectable difference over the pairs."""
    from tailored_harness.suite.run_samples import detectable_by_task

    lines = []
    for key, entry in detectable_by_task(paired).items():
        span = "none" if entry["smallest"] is None else f"{entry['smallest']:.4f} &ndash; {entry['largest']:.4f}"
        lines.append(f'<tr><td class="name">{_e(key)}</td><td>{entry["docs"]}</td><td>{span}</td></tr>')
    return ("<table><tr><th class='name'>task, metric</th><th>docs</th><th>min. detectable at p &lt; 0.05, over the "
            f"pairs</th></tr>{''.join(lines)}</table>")


def _document(doc: dict[str, Any], a: str, b: str, right: str) -> str:
    choices = "".join(f"<li>{_e(c)}</li>" for c in doc["choices"])
    answer = {"a": doc["answer_a"], "b": doc["answer_b"]}
    marks = {side: "right" if side == right else "wrong" for side in "ab"}
    return (f'<tr class="doc"><td>{doc["doc_id"]}</td><td><span class="context">{_e(doc["context"])}</span>'
            f'{f"<ol start=0>{choices}</ol>" if choices else ""}</td><td>{_e(doc["gold"])}</td>'
            f'<td class="{marks["a"]}">{_e(answer["a"])}</td><td class="{marks["b"]}">{_e(answer["b"])}</td></tr>')


def flips_section(flips: list[dict[str, Any]]) -> str:
    """Per pair and task, the documents only one run got right, both answers beside the gold one."""
    parts = []
    for item in flips:
        a, b, found = item["a"], item["b"], item["documents"]
        title = (f"{_e(a)} &minus; {_e(b)}, {_e(item['task'])} ({_e(item['metric'])}): {found['count_a']} right only in "
                 f"{_e(a)}, {found['count_b']} right only in {_e(b)}")
        head = f"<tr><th>doc</th><th class='name'>context and choices</th><th>gold</th><th>{_e(a)}</th><th>{_e(b)}</th></tr>"
        rows = [_document(d, a, b, "a") for d in found["only_a"]] + [_document(d, a, b, "b") for d in found["only_b"]]
        shown = len(found["only_a"]) + len(found["only_b"])
        more = "" if shown == found["count_a"] + found["count_b"] else f"<p>{shown} shown of {found['count_a'] + found['count_b']}.</p>"
        parts.append(f"<details><summary>{title}</summary>{more}<table>{head}{''.join(rows)}</table></details>")
    return "".join(parts) or "<p>No flipped documents to show (no pair compared, or the runs are digests without text).</p>"


def render(summary: dict[str, Any], title: str, intervals: dict[tuple[str, str, str], tuple[float, float]] | None = None,
           flips: list[dict[str, Any]] | None = None, plot_png: bytes | None = None) -> str:
    """The whole page (see the module's docstring)."""
    rows, paired = summary.get("rows") or [], summary.get("paired") or []
    plot = ""
    if plot_png:
        plot = f'<h2>Accuracy against parameters kept</h2><img alt="plot" src="data:image/png;base64,{base64.b64encode(plot_png).decode()}" style="max-width:100%">'
    sections = [f"<h1>{_e(title)}</h1>",
                "<h2>Scores</h2><p>Each cell: the score and its 95% interval (lm-eval's stderr &times; 1.96; for "
                "perplexity a bootstrap over documents).</p>", table(rows, intervals or {}, summary.get("label_baselines") or {})]
    if paired:
        sections += ["<h2>Paired comparisons</h2><p>Two configurations on the same documents: the difference a &minus; b, "
                     "its 95% paired bootstrap interval, the documents only one gets right and McNemar's exact p "
                     "(accuracy), the smallest difference these documents could detect, and the verdict at 0.05.</p>",
                     paired_table(paired), detectable_table(paired)]
    sections.append(plot)
    if paired:
        sections += ["<h2>Documents that flipped</h2>", flips_section(flips or [])]
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{_e(title)}</title>'
            f"<style>{STYLE}</style></head><body>{''.join(sections)}</body></html>\n")
