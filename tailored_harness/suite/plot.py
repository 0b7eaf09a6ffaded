"""Accuracy against parameters kept: the picture of what pruning costs, from suite summaries.

Pure core: :func:`plot_data` turns summaries (``tailored report --out``) into panels of series of
points; :func:`draw` renders them with matplotlib (the ``plot`` extra) into one PNG. One panel per
task (accuracy against the share of the dense model's parameters kept, with lm-eval's standard errors
as bars and the task's majority-class accuracy as a dashed line), and one panel of the mean
percentage of dense accuracy over tasks, where the paper's recovery figures (``--paper``) are marked.

A series is one way of building a model across prune ratios: dense, then pruned at each ratio, either
without adapters or with adapters of a given shot count, per importance criterion and calibration.
Seeded configurations (``NAME_sN``) count once, as the mean over their seeds.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

from tailored_harness.core.errors import TailoredError
from tailored_harness.suite.report import configuration_info, family, recovery

logger = logging.getLogger(__name__)

MEAN_PANEL = "mean over tasks"
PREFERRED_METRIC = "acc"


@dataclasses.dataclass
class Point:
    x: float  # parameters kept, % of the dense model
    y: float
    yerr: float | None
    configuration: str
    seeds: int


@dataclasses.dataclass
class Series:
    label: str
    adapted: bool
    points: list[Point] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class Panel:
    title: str
    ylabel: str
    series: list[Series] = dataclasses.field(default_factory=list)
    reference_lines: dict[str, float] = dataclasses.field(default_factory=dict)
    marks: list[tuple[float, float, str]] = dataclasses.field(default_factory=list)  # (x, y, label)


def load_summary(path: str | os.PathLike) -> dict[str, Any]:
    """A summary JSON with its ``configurations``; summaries written before they were recorded get them
    from their ``sources`` (the lm-eval results files, relative to the summary)."""
    path = Path(path)
    try:
        summary = json.loads(path.read_text())
    except FileNotFoundError:
        raise TailoredError(f"summary {path} not found; write one with tailored report --run NAME=DIR --out {path}") from None
    except ValueError as err:
        raise TailoredError(f"summary {path} is not JSON ({err})") from None
    if not isinstance(summary, dict) or "rows" not in summary:
        raise TailoredError(f"{path} is not a suite summary (no rows); write one with tailored report --out")
    if "configurations" not in summary:
        try:
            summary["configurations"] = {name: configuration_info(json.loads((path.parent / source).read_text()))
                                         for name, source in summary.get("sources", {}).items()}
        except (OSError, ValueError) as err:
            raise TailoredError(f"summary {path} records no configurations and its sources are unreadable ({err}); "
                                f"rewrite it with tailored report --run ... --out {path}") from None
    summary.setdefault("name", path.stem)
    return summary


def _kept(info: dict[str, Any]) -> float:
    dense, params = info.get("parameters_dense"), info.get("parameters")
    if dense and params:
        return 100.0 * params / dense
    return 100.0 * (1.0 - info.get("prune_ratio", 0.0))


def _series_key(info: dict[str, Any]) -> tuple:
    # summaries written before attention_unit existed pruned whole KV groups
    return info["shots"], info.get("importance"), info.get("calibration"), info.get("attention_unit") or "kv_group"


def _label(key: tuple, ambiguous: set[tuple]) -> str:
    shots, importance, calibration, unit = key
    label = f"pruned + adapted ({shots} shots)" if shots else "pruned only"
    label += f", {importance}" if importance else ""
    label += f", {unit} units" if unit != "kv_group" else ""
    # a calibration file is named by its file name: the folder is the machine's cache
    return label + (f", calibration={Path(str(calibration)).name}" if (shots, importance, unit) in ambiguous else "")


def _grouped(summary: dict[str, Any], values: dict[str, tuple[float, float | None, int]]) -> list[Series]:
    """Series of one panel from ``{family: (y, yerr, seeds)}``; dense families start every series
    of their shot count."""
    infos = {family(name): info for name, info in summary["configurations"].items()}
    dense = {infos[f]["shots"]: f for f in values if f in infos and not infos[f]["prune_ratio"]}
    keys = {_series_key(infos[f]) for f in values if f in infos and infos[f]["prune_ratio"]}
    pairs = [(k[0], k[1], k[3]) for k in keys]  # series that only the calibration tells apart
    ambiguous = {p for p in pairs if pairs.count(p) > 1}
    out = []
    for key in sorted(keys, key=lambda k: (k[0], str(k[1]), str(k[2]), k[3])):
        series = Series(_label(key, ambiguous), adapted=bool(key[0]))
        members = [f for f in values if f in infos and infos[f]["prune_ratio"] and _series_key(infos[f]) == key]
        if key[0] in dense:
            members.insert(0, dense[key[0]])
        for name in members:
            y, yerr, seeds = values[name]
            series.points.append(Point(_kept(infos[name]), y, yerr, name, seeds))
        series.points.sort(key=lambda p: -p.x)
        out.append(series)
    for shots, name in sorted(dense.items()):
        if not any(s.points and s.points[0].configuration == name for s in out):
            y, yerr, seeds = values[name]
            out.append(Series("dense" + (f" + adapted ({shots} shots)" if shots else ""), bool(shots),
                              [Point(_kept(infos[name]), y, yerr, name, seeds)]))
    return out


def _task_values(rows: list[dict[str, Any]], task: str, metric: str) -> dict[str, tuple[float, float | None, int]]:
    groups: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        if row["task"] == task and row["metric"] == metric:
            groups.setdefault(family(row["configuration"]), []).append(row)
    out = {}
    for name, found in groups.items():
        errors = [r["stderr"] for r in found if isinstance(r.get("stderr"), (int, float))]
        out[name] = (sum(r["value"] for r in found) / len(found), sum(errors) / len(errors) if errors else None, len(found))
    return out


def plot_data(summaries: list[dict[str, Any]]) -> list[Panel]:
    """Panels of the summaries (see :func:`load_summary`): one per task, then the mean panel."""
    panels: dict[str, Panel] = {}
    several = len(summaries) > 1
    for summary in summaries:
        prefix = f"{summary['name']}: " if several else ""
        tasks = dict.fromkeys(row["task"] for row in summary["rows"])
        for task in tasks:
            metrics = {row["metric"] for row in summary["rows"] if row["task"] == task}
            metric = PREFERRED_METRIC if PREFERRED_METRIC in metrics else sorted(metrics)[0]
            panel = panels.setdefault(task, Panel(task, f"accuracy ({metric})" if metric.startswith("acc") else metric))
            for series in _grouped(summary, _task_values(summary["rows"], task, metric)):
                series.label = prefix + series.label
                panel.series.append(series)
            majority = (summary.get("label_baselines") or {}).get(task, {}).get("majority")
            if majority is not None:
                panel.reference_lines[f"{prefix}majority class"] = majority
        kept = {r["configuration"]: (r["mean_pct_of_dense"], None, r["seeds"]) for r in recovery(summary["rows"])
                if r["mean_pct_of_dense"] is not None}
        dense_families = [f for f, info in summary["configurations"].items() if not info["prune_ratio"] and not info["shots"]]
        kept.update({family(f): (100.0, None, 1) for f in dense_families})
        mean = panels.setdefault(MEAN_PANEL, Panel(MEAN_PANEL, "mean accuracy, % of dense"))
        for series in _grouped(summary, kept):
            series.label = prefix + series.label
            mean.series.append(series)
        infos = {family(n): i for n, i in summary["configurations"].items()}
        for name, pct in (summary.get("paper") or {}).items():
            if name in infos:
                mean.marks.append((_kept(infos[name]), float(pct), f"{prefix}published figure (--paper)"))
    if not panels:
        raise TailoredError("the summaries hold no rows to plot")
    return [panels[k] for k in panels if k != MEAN_PANEL] + ([panels[MEAN_PANEL]] if MEAN_PANEL in panels else [])


def _colors(panels: list[Panel]) -> dict[str, Any]:
    """One colour per series label, the same in every panel."""
    from matplotlib import colormaps

    labels = list(dict.fromkeys(s.label for p in panels for s in p.series))
    palette = colormaps["tab10"].colors
    return {label: palette[i % len(palette)] for i, label in enumerate(labels)}


def _draw_panel(axes, panel: Panel, colors: dict[str, Any]) -> None:
    for series in panel.series:
        xs, ys = [p.x for p in series.points], [p.y for p in series.points]
        errors = [p.yerr or 0.0 for p in series.points]
        axes.errorbar(xs, ys, yerr=errors if any(errors) else None, label=series.label, color=colors[series.label],
                      linestyle="-" if series.adapted else "--", marker="o", markersize=5, capsize=3, linewidth=1.6)
    for label, value in panel.reference_lines.items():
        axes.axhline(value, color="grey", linestyle=":", linewidth=1.2, label=label)
    for x, y, label in panel.marks:
        axes.plot([x], [y], linestyle="none", marker="X", markersize=10, color="black", label=label)
    axes.set_title(panel.title)
    axes.set_xlabel("parameters kept (% of dense)")
    axes.set_ylabel(panel.ylabel)
    axes.invert_xaxis()  # dense on the left, more compression to the right
    axes.grid(True, alpha=0.3)


def draw(panels: list[Panel], path: str | os.PathLike, title: str | None = None) -> Path:
    """Render ``panels`` side by side into a PNG at ``path`` (written to a temporary file, then renamed);
    one legend under the panels, so no text overlaps the data."""
    try:
        import matplotlib
    except ImportError:
        raise TailoredError("--plot needs matplotlib: pip install 'tailored-harness[plot]'") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    if path.suffix.lower() != ".png":
        raise TailoredError(f"--plot {path} must name a .png file")
    colors = _colors(panels)
    figure, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 4.6), squeeze=False, layout="constrained")
    for ax, panel in zip(axes[0], panels):
        _draw_panel(ax, panel, colors)
    handles: dict[str, Any] = {}
    for ax in axes[0]:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(label, handle)
    figure.legend(list(handles.values()), list(handles), loc="outside lower center", ncols=min(3, len(handles)),
                  frameon=False)
    if title:
        figure.suptitle(title)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".png", dir=path.parent)
    os.close(fd)
    try:
        figure.savefig(tmp, dpi=150)
        os.replace(tmp, path)
    finally:
        plt.close(figure)
        if os.path.exists(tmp):
            os.unlink(tmp)
    logger.info("wrote %s (%d panels)", path, len(panels))
    return path
