"""The table as the pruning papers print it: one row per configuration, one column per task.

LLM-Pruner and Tailored-LLaMA report, for each compressed model, the perplexity on WikiText-2 and
PTB and the accuracy on each commonsense task, with the mean accuracy last. :func:`paper_table`
builds that from the suite's rows (seeded configurations averaged first, as in
:func:`tailored_harness.suite.report.family_means`); perplexity columns are the tasks scored with
``word_perplexity``, accuracy columns those scored with ``acc``.
"""

from __future__ import annotations

from typing import Any

from tailored_harness.suite.report import family, family_means

ACCURACY = "acc"
PERPLEXITY = "word_perplexity"


def paper_table(rows: list[dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    """``(headers, lines)``: configuration, the perplexity tasks, the accuracy tasks (in percent) and
    their mean (only for a configuration that scored every accuracy task), in the rows' order of
    configurations. Empty when no row holds either metric."""
    ppl, acc = family_means(rows, PERPLEXITY), family_means(rows, ACCURACY)
    ppl_tasks = sorted({task for task, _ in ppl})
    acc_tasks = sorted({task for task, _ in acc})
    if not ppl_tasks and not acc_tasks:
        return [], []
    headers = ["configuration", *(f"{task} ppl" for task in ppl_tasks), *acc_tasks]
    if len(acc_tasks) > 1:
        headers.append("mean acc")
    lines = []
    for name in dict.fromkeys(family(row["configuration"]) for row in rows):
        if not any((task, name) in ppl for task in ppl_tasks) and not any((task, name) in acc for task in acc_tasks):
            continue
        line = [name] + [_cell(ppl.get((task, name)), 1.0, 1) for task in ppl_tasks]
        line += [_cell(acc.get((task, name)), 100.0, 2) for task in acc_tasks]
        if len(acc_tasks) > 1:
            values = [acc[(task, name)][0] for task in acc_tasks if (task, name) in acc]
            line.append(f"{100.0 * sum(values) / len(values):.2f}" if len(values) == len(acc_tasks) else "")
        lines.append(line)
    return headers, lines


def _cell(found: tuple[float, int] | None, scale: float, digits: int) -> str:
    if found is None:
        return ""
    value, seeds = found
    return f"{scale * value:.{digits}f}" + (f" ({seeds} seeds)" if seeds > 1 else "")


def format_paper_table(rows: list[dict[str, Any]]) -> str:
    """:func:`paper_table` as a GitHub table; empty text when there is nothing to show."""
    from tabulate import tabulate

    headers, lines = paper_table(rows)
    if not lines:
        return ""
    return tabulate(lines, headers=headers, tablefmt="github", disable_numparse=True)
