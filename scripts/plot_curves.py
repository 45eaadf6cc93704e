"""Plot a metric against training progress for several runs in one PNG.

    # validation top-1 per epoch of five seeds (the CSV logger's metrics.csv of each run)
    python scripts/plot_curves.py outputs/seeds/divided_s*/ --metric val/acc_top1 --x epoch --out curves.png
    # both halves of coherence while a video stage learns: motion, digit and identity (motion_curve.csv)
    python scripts/plot_curves.py outputs/gen/digits/dit --metric flow_direction_accuracy digit_accuracy \
        identity_consistency --out outputs/gen/digits/curves.png
    # stage-2 motion learning curves (motion_curve.csv, written by the MotionCurve callback)
    python scripts/plot_curves.py outputs/gen/dit outputs/gen/dit_space_only --metric flow_direction_accuracy \\
        --x step --out motion_curve.png --target 0.8 --chance 0.125

A run is a folder: the script reads ``<run>/motion_curve.csv`` when the metric is in it, otherwise the newest
``<run>/csv/version_*/metrics.csv``. Each run is one line, labelled ``--labels`` or the folder's name.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def read_curve(run: Path, metric: str, x: str) -> list[tuple[float, float]]:
    """(x, value) points of ``metric`` in a run folder, sorted by x, one point per x (the last logged).

    Raises:
        FileNotFoundError: the run has neither ``motion_curve.csv`` nor a ``csv/version_*/metrics.csv``.
        ValueError: the file has no ``metric`` or ``x`` column, or no logged value.
    """
    files = [run / "motion_curve.csv"] if (run / "motion_curve.csv").is_file() else []
    files += sorted(run.glob("csv/version_*/metrics.csv"), key=lambda p: int(p.parent.name.split("_")[1]))
    for path in files:
        with path.open() as handle:
            rows = list(csv.DictReader(handle))
        if rows and metric in rows[0] and x in rows[0]:
            points = {float(row[x]): float(row[metric]) for row in rows if row[metric] not in ("", None)}
            if not points:
                raise ValueError(f"{path}: no logged value of {metric!r}")
            return sorted(points.items())
    if not files:
        raise FileNotFoundError(f"{run}: no motion_curve.csv or csv/version_*/metrics.csv")
    raise ValueError(f"{run}: no file with columns {metric!r} and {x!r} (looked in {[str(f) for f in files]})")


def plot(runs: list[Path], metric: str | list[str], x: str, out: Path, labels: list[str] | None = None,
         target: float | None = None, chance: float | None = None, title: str | None = None) -> Path:
    """Draw one line per run and metric and write ``out`` (PNG, 100 dpi, a few tens of kB)."""
    metrics = [metric] if isinstance(metric, str) else list(metric)
    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=100)
    for i, run in enumerate(runs):
        for name in metrics:
            points = read_curve(run, name, x)
            label = labels[i] if labels else run.name
            ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", markersize=3,
                    label=f"{label}: {name}" if len(metrics) > 1 else label)
    if target is not None:
        ax.axhline(target, color="green", linestyle="--", linewidth=1, label=f"target {target:g}")
    if chance is not None:
        ax.axhline(chance, color="grey", linestyle=":", linewidth=1, label=f"chance {chance:g}")
    ax.set_xlabel(x)
    ax.set_ylabel(metrics[0] if len(metrics) == 1 else "value")
    ax.set_title(title or ", ".join(metrics))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", type=Path, help="run folders")
    parser.add_argument("--metric", required=True, nargs="+",
                        help="column(s) to plot, e.g. val/acc_top1; several draw one line per run and column")
    parser.add_argument("--x", default="step", help="x column: step or epoch (default: %(default)s)")
    parser.add_argument("--out", required=True, type=Path, help="PNG to write")
    parser.add_argument("--labels", nargs="+", help="one legend label per run")
    parser.add_argument("--target", type=float, help="draw a target line")
    parser.add_argument("--chance", type=float, help="draw a chance line")
    parser.add_argument("--title")
    args = parser.parse_args(argv)
    if args.labels and len(args.labels) != len(args.runs):
        parser.error(f"--labels has {len(args.labels)} entries for {len(args.runs)} runs")
    try:
        path = plot(args.runs, args.metric, args.x, args.out, args.labels, args.target, args.chance, args.title)
    except (FileNotFoundError, ValueError) as error:
        sys.exit(f"plot_curves.py: error: {error}")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
