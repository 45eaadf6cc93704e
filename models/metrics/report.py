"""Write an evaluation's results where people look for them: JSON for scripts, Markdown for notes, a PNG of curves."""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from data.files import atomic_path, write_text_atomic


@dataclass
class EvaluationResult:
    """The outcome of evaluating one video set.

    Attributes:
        metrics: metric key → value, averaged over clips (set-level metrics: one value for the set).
        directions: metric key → ``"higher"`` or ``"lower"`` (which is better).
        notes: metric key → what the value is: its formula's source and any substituted component.
        per_frame: metric key → the clip-mean curve over frames (or frame pairs), for the figure.
        per_clip: metric key → the value of every clip, in the order of the video set (per-clip metrics only), for
            confidence intervals over clips.
        ci95: metric key → ``[low, high]``, the 95 % percentile-bootstrap interval of the mean over clips
            (:func:`models.metrics.stats.mean_ci`, seed 0), for every per-clip metric of two or more clips.
        skipped: metric key → why it was not computed (e.g. no weights were given).
        protocol: what fixes the numbers: sources, clip count, frames, frame size, fps, extractor protocols.
    """

    metrics: dict[str, float] = field(default_factory=dict)
    directions: dict[str, str] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)
    per_frame: dict[str, list[float]] = field(default_factory=dict)
    per_clip: dict[str, list[float]] = field(default_factory=dict)
    ci95: dict[str, list[float]] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    protocol: dict[str, Any] = field(default_factory=dict)

    def add(self, key: str, value: float, direction: str, note: str, per_clip=None) -> None:
        """Record one metric value with its direction (``higher``/``lower``/``none``), what it is and, for a per-clip
        metric, the values of the clips (a sequence or 1-D tensor) it averages."""
        self.metrics[key] = float(value)
        self.directions[key] = direction
        self.notes[key] = note
        if per_clip is not None:
            self.per_clip[key] = [float(v) for v in per_clip]
            if len(self.per_clip[key]) >= 2 and all(math.isfinite(v) for v in self.per_clip[key]):
                from models.metrics.stats import mean_ci

                interval = mean_ci(self.per_clip[key])
                self.ci95[key] = [interval.low, interval.high]


def _format(value: float) -> str:
    if math.isnan(value):
        return "nan"
    return f"{value:.4f}" if abs(value) < 1000 else f"{value:.1f}"


def markdown_table(result: EvaluationResult) -> str:
    """A Markdown report: the metric table (value, which direction is better, what it is), skips and protocol."""
    arrow = {"higher": "↑ higher", "lower": "↓ lower", "none": "–"}
    lines = ["| metric | value | 95 % CI over clips | better | what it is |", "|---|---|---|---|---|"]
    for key, value in result.metrics.items():
        ci = result.ci95.get(key)
        interval = f"[{_format(ci[0])}, {_format(ci[1])}]" if ci else "–"
        lines.append(f"| `{key}` | {_format(value)} | {interval} | {arrow.get(result.directions.get(key, 'none'), '–')} "
                     f"| {result.notes.get(key, '')} |")
    if result.skipped:
        lines += ["", "Skipped:", ""] + [f"- `{key}`: {reason}" for key, reason in result.skipped.items()]
    lines += ["", "Protocol:", ""] + [f"- {key}: {value}" for key, value in result.protocol.items()]
    return "\n".join(lines) + "\n"


def plot_per_frame(result: EvaluationResult, path: Path) -> None:
    """One panel per per-frame metric: its clip-mean value against the frame (pair) index."""
    import matplotlib

    matplotlib.use("Agg")  # no display on servers
    import matplotlib.pyplot as plt

    curves = {key: curve for key, curve in result.per_frame.items() if curve}
    if not curves:
        return
    columns = min(3, len(curves))
    rows = math.ceil(len(curves) / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(4.2 * columns, 3.0 * rows), squeeze=False)
    for ax, (key, curve) in zip(axes.flat, curves.items()):
        ax.plot(range(1, len(curve) + 1), curve, marker="o", markersize=3)
        better = result.directions.get(key, "none")
        ax.set_title(f"{key} ({better} is better)" if better != "none" else key, fontsize=9)
        ax.set_xlabel("frame (pair) index")
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(curves):]:
        ax.axis("off")
    fig.suptitle(f"{result.protocol.get('videos', '')}: mean over {result.protocol.get('num_clips', '?')} clips",
                 fontsize=9)
    fig.tight_layout()
    with atomic_path(path, suffix=".tmp.png") as tmp:  # matplotlib picks the format from the name
        fig.savefig(tmp, dpi=110)
    plt.close(fig)


def write_report(result: EvaluationResult, out: str | os.PathLike) -> dict[str, Path]:
    """Write ``out`` (JSON), and beside it ``<stem>.md`` (Markdown table) and ``<stem>_per_frame.png``.

    Returns:
        The paths written, keyed ``json``, ``markdown`` and ``figure`` (the figure only when there are curves).
    """
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    paths = {"json": out, "markdown": out.with_suffix(".md")}
    write_text_atomic(out, json.dumps(asdict(result), indent=2, sort_keys=False, default=str) + "\n")
    write_text_atomic(paths["markdown"], markdown_table(result))
    if any(result.per_frame.values()):
        paths["figure"] = out.with_name(f"{out.stem}_per_frame.png")
        plot_per_frame(result, paths["figure"])
    return paths
