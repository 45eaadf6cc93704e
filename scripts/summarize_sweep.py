"""Summarise a sweep: group its runs by the overrides that vary (the seed aside) and report the seed spread.

    python train.py -m experiment=mmnist_direction_divided seed=0,1,2,3,4 hydra.sweep.dir=outputs/seeds/divided
    python scripts/summarize_sweep.py outputs/seeds/divided outputs/seeds/space_only --metric test/acc_top1

Every run folder under the given folders that holds a metrics JSON (``train_metrics.json``, or ``eval/*.json`` /
``*_metrics.json`` for runs scored afterwards) is one run; its overrides come from Hydra's ``.hydra/overrides.yaml``
(or, failing that, the folder name). Runs that differ only in ``seed`` form a group. For each group the script
prints and writes mean, standard deviation (n − 1), min, max and n, and the per-seed values:

* ``<out>/summary.md`` (a Markdown table), ``<out>/summary.csv``;
* ``<out>/summary.png``: one bar per group (the mean) with every seed as a point.

``--out`` defaults to the first folder given.
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import sys
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import yaml  # noqa: E402

METRICS_FILES = ("train_metrics.json", "eval/test_metrics.json", "test_metrics.json", "samples_metrics.json")
IGNORED_OVERRIDES = ("seed", "hydra.", "paths.", "num_threads")


@dataclass
class Group:
    """Runs that share every varying override except the seed."""

    name: str
    seeds: list[str] = field(default_factory=list)
    values: list[float] = field(default_factory=list)

    def stats(self) -> dict[str, float]:
        values = self.values
        return {"n": len(values), "mean": statistics.fmean(values),
                "std": statistics.stdev(values) if len(values) > 1 else 0.0, "min": min(values), "max": max(values)}


def find_runs(folders: list[Path]) -> list[Path]:
    """Run folders (holding a metrics file) under the given folders, sorted."""
    runs = set()
    for folder in folders:
        for name in METRICS_FILES:
            for path in folder.rglob(Path(name).name):
                if path.as_posix().endswith(name):
                    run = path.parent.parent if path.parent.name == "eval" else path.parent
                    runs.add(run)
    return sorted(runs)


def read_metric(run: Path, metric: str) -> float | None:
    """``metric`` from the first metrics file of ``run`` that has it."""
    for name in METRICS_FILES:
        path = run / name
        if path.is_file():
            data = json.loads(path.read_text())
            value = data.get(metric, data.get("metrics", {}).get(metric) if isinstance(data.get("metrics"), dict)
                             else None)
            if value is not None:
                return float(value)
    return None


def overrides(run: Path) -> list[str]:
    """The run's command-line overrides (Hydra's record), or its folder name."""
    for path in (run / ".hydra" / "overrides.yaml", run.parent / ".hydra" / "overrides.yaml"):
        if path.is_file():
            return [str(item) for item in (yaml.safe_load(path.read_text()) or [])]
    return [f"run={run.name}"]


def group_runs(runs: list[Path], metric: str) -> tuple[list[Group], list[Path]]:
    """Group runs by their overrides apart from the seed; also return the runs without ``metric``."""
    records, missing = [], []
    for run in runs:
        value = read_metric(run, metric)
        if value is None:
            missing.append(run)
            continue
        items = overrides(run)
        seed = next((item.split("=", 1)[1] for item in items if item.startswith("seed=")), "?")
        kept = tuple(sorted(item for item in items if not item.startswith(IGNORED_OVERRIDES)))
        records.append((kept, seed, value, run))
    varying = set()
    if records:
        common = set(records[0][0]).intersection(*(set(r[0]) for r in records))
        varying = {item for r in records for item in r[0]} - common
    groups: dict[tuple[str, ...], Group] = {}
    for kept, seed, value, run in records:
        key = tuple(item for item in kept if item in varying)
        name = " ".join(key) if key else (run.parent.name if len(records) > 1 else run.name)
        group = groups.setdefault(key or (name,), Group(name or "all"))
        group.seeds.append(seed)
        group.values.append(value)
    return list(groups.values()), missing


def write_summary(groups: list[Group], metric: str, out: Path) -> dict[str, Path]:
    """Write ``summary.md``, ``summary.csv`` and ``summary.png`` into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    scale = 100.0 if "acc" in metric else 1.0
    unit = "%" if scale == 100.0 else ""
    lines = [f"| group | n | mean | std | min | max | per seed ({metric}) |", "|---|---|---|---|---|---|---|"]
    rows = []
    for group in groups:
        s = group.stats()
        per_seed = ", ".join(f"s{seed}: {value * scale:.1f}{unit}" for seed, value in zip(group.seeds, group.values))
        lines.append(f"| {group.name} | {s['n']} | {s['mean'] * scale:.1f}{unit} | {s['std'] * scale:.1f} | "
                     f"{s['min'] * scale:.1f}{unit} | {s['max'] * scale:.1f}{unit} | {per_seed} |")
        rows.append({"group": group.name, "metric": metric, **s,
                     "seeds": " ".join(group.seeds), "values": " ".join(f"{v:.6f}" for v in group.values)})
    paths = {"md": out / "summary.md", "csv": out / "summary.csv", "png": out / "summary.png"}
    paths["md"].write_text("\n".join(lines) + "\n")
    with paths["csv"].open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    fig, ax = plt.subplots(figsize=(max(4.0, 1.6 * len(groups)), 3.6), dpi=100)
    for i, group in enumerate(groups):
        ax.bar(i, group.stats()["mean"] * scale, color="#9ecae1", width=0.6)
        ax.scatter([i] * len(group.values), [v * scale for v in group.values], color="#08519c", s=14, zorder=3)
    ax.set_xticks(range(len(groups)), [g.name for g in groups], fontsize=8)
    ax.set_ylabel(f"{metric} ({unit or 'value'})")
    ax.set_title(f"{metric}: mean (bar) and seeds (points)")
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(paths["png"])
    plt.close(fig)
    return paths


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folders", nargs="+", type=Path, help="sweep folders (or run folders)")
    parser.add_argument("--metric", default="test/acc_top1", help="metric key (default: %(default)s)")
    parser.add_argument("--out", type=Path, help="where summary.* go (default: the first folder)")
    args = parser.parse_args(argv)
    absent = [str(f) for f in args.folders if not f.is_dir()]
    if absent:
        sys.exit(f"summarize_sweep.py: error: not folders: {absent}")
    groups, missing = group_runs(find_runs(args.folders), args.metric)
    for run in missing:
        print(f"warning: {run} has no {args.metric}; left out", file=sys.stderr)
    if not groups:
        sys.exit(f"summarize_sweep.py: error: no run under {[str(f) for f in args.folders]} has {args.metric}")
    paths = write_summary(groups, args.metric, args.out or args.folders[0])
    print(paths["md"].read_text(), end="")
    print("wrote " + ", ".join(str(p) for p in paths.values()))


if __name__ == "__main__":
    main()
