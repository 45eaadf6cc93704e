"""Summarise a sweep: group its runs by the overrides that vary (the seed aside) and report the seed spread.

    python train.py -m experiment=mmnist_direction_divided seed=0,1,2,3,4 hydra.sweep.dir=outputs/seeds/divided
    python scripts/summarize_sweep.py outputs/seeds/divided outputs/seeds/space_only --metric test/acc_top1

Every run folder under the given folders that holds a metrics JSON (``train_metrics.json``, or ``eval/*.json`` /
``*_metrics.json`` for runs scored afterwards) is one run; its overrides come from Hydra's ``.hydra/overrides.yaml``
(or, failing that, the folder name). Runs that differ only in ``seed`` form a group. For each group the script
prints and writes mean, standard deviation (n − 1), min, max and n, and the per-seed values:

* ``<out>/summary.md`` (a Markdown table), ``<out>/summary.csv``;
* ``<out>/summary.png``: one bar per group (the mean) with every seed as a point.

``--out`` defaults to the first folder given. ``--target GROUP>=VALUE`` (or ``<=``) says whether every seed of a group
met it (a column of the table). ``--record NAME`` also writes the spreads as the result record ``results/NAME.json``
(``scripts/records.py``: one row per group, the metric as a seed spread, the target as text), with the machine and
its fp32 matmul peak measured when the record is written (the runs themselves are finished by then). ``--row-label``
names the record's rows from the runs' config, e.g. ``"{data.generate.variant} / {model.net.attention_type}"``
(``scripts/seed_sweep.sh``: ``direction / divided_space_time``); without it a row is named after its group.

    python scripts/summarize_sweep.py outputs/seeds --metric test/acc_top1 --record recognition_seed_sweep \
        --target 'experiment=mmnist_direction_divided>=0.95' \
        --row-label "{data.generate.variant} / {model.net.attention_type}"
"""

from __future__ import annotations

import argparse
import csv
import json
import re
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
    runs: list[Path] = field(default_factory=list)

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
        group.runs.append(run)
    return list(groups.values()), missing


def parse_target(spec: str) -> tuple[str, str, float]:
    """``GROUP>=VALUE`` or ``GROUP<=VALUE`` -> (group, op, value); GROUP is a group name or a record row label.

    Raises:
        ValueError: ``spec`` is not of that form.
    """
    match = re.fullmatch(r"(?P<group>.+?)(?P<op>>=|<=)(?P<value>[-+.\deE]+)", spec)
    try:
        return match["group"], match["op"], float(match["value"])
    except (TypeError, ValueError):
        raise ValueError(f"--target {spec!r} must look like GROUP>=VALUE or GROUP<=VALUE, e.g. "
                         "'experiment=mmnist_direction_divided>=0.95'") from None


def target_text(group: Group, op: str, target: float, metric: str) -> str:
    """Whether every seed of ``group`` met the target: '≥ 95 % on every seed: met', or the seeds that missed it."""
    scale, unit = (100.0, " %") if "acc" in metric else (1.0, "")
    missed = [f"seed {seed}: {value * scale:.1f}{unit}" for seed, value in zip(group.seeds, group.values)
              if not (value >= target if op == ">=" else value <= target)]
    bound = f"{'≥' if op == '>=' else '≤'} {target * scale:g}{unit} on every seed"
    return f"{bound}: met" if not missed else f"{bound}: **missed** ({', '.join(missed)})"


def run_config(run: Path) -> dict:
    """The run's composed config (Hydra's ``.hydra/config.yaml``, or train.py's ``config.yaml``); {} if none."""
    for path in (run / ".hydra" / "config.yaml", run / "config.yaml"):
        if path.is_file():
            return yaml.safe_load(path.read_text()) or {}
    return {}


def _select(config: dict, key: str):
    value = config
    for part in key.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def row_label(group: Group, fmt: str | None) -> str:
    """The group's record row: ``fmt`` with ``{dotted.config.key}`` filled from its first run's config (the group's
    name when ``fmt`` is None or a key is missing, with a warning)."""
    if not fmt:
        return group.name
    config = run_config(group.runs[0]) if group.runs else {}
    missing = []

    def fill(match: re.Match) -> str:
        value = _select(config, match[1])
        if value is None:
            missing.append(match[1])
        return str(value)

    label = re.sub(r"\{([^{}]+)\}", fill, fmt)
    if missing:
        print(f"warning: {group.name}: no {missing} in its run config; its record row is named after the group",
              file=sys.stderr)
        return group.name
    return label


def group_targets(groups: list[Group], targets: list[tuple[str, str, float]], metric: str,
                  labels: dict[str, str] | None = None) -> dict[str, str]:
    """Group name -> its target verdict(s), for the groups a target names (by group name or row label). A target that
    names no group is left out with a warning (a partial sweep of a script that states every group's target)."""
    labels = labels or {}
    texts: dict[str, list[str]] = {}
    for name, op, value in targets:
        matched = [g for g in groups if name in (g.name, labels.get(g.name))]
        if not matched:
            print(f"warning: --target {name}{op}{value:g}: no group {name!r} (groups: {[g.name for g in groups]}); "
                  "left out", file=sys.stderr)
        for group in matched:
            texts.setdefault(group.name, []).append(target_text(group, op, value, metric))
    return {name: "; ".join(parts) for name, parts in texts.items()}


def record_rows(groups: list[Group], metric: str, targets: dict[str, str] | None = None,
                labels: dict[str, str] | None = None) -> dict[str, dict]:
    """The summary as result-record rows: ``{row: {metric with '/' as '_': seed spread, "target": {"text": ...}}}``."""
    from scripts.records import seed_entry

    rows = {}
    for group in groups:
        label = (labels or {}).get(group.name, group.name)
        if label in rows:
            raise ValueError(f"two groups have the record row {label!r}: give --row-label more config keys")
        rows[label] = {metric.replace("/", "_"): seed_entry(group.values)}
        if targets and group.name in targets:
            rows[label]["target"] = {"text": targets[group.name]}
    return rows


def write_summary(groups: list[Group], metric: str, out: Path, targets: dict[str, str] | None = None
                  ) -> dict[str, Path]:
    """Write ``summary.md``, ``summary.csv`` and ``summary.png`` into ``out`` (``targets``: group -> verdict text,
    an extra column)."""
    out.mkdir(parents=True, exist_ok=True)
    scale = 100.0 if "acc" in metric else 1.0
    unit = "%" if scale == 100.0 else ""
    extra = " target |" if targets else ""
    lines = [f"| group | n | mean | std | min | max | per seed ({metric}) |{extra}",
             "|---|---|---|---|---|---|---|" + ("---|" if targets else "")]
    rows = []
    for group in groups:
        s = group.stats()
        per_seed = ", ".join(f"s{seed}: {value * scale:.1f}{unit}" for seed, value in zip(group.seeds, group.values))
        lines.append(f"| {group.name} | {s['n']} | {s['mean'] * scale:.1f}{unit} | {s['std'] * scale:.1f} | "
                     f"{s['min'] * scale:.1f}{unit} | {s['max'] * scale:.1f}{unit} | {per_seed} |"
                     + (f" {targets.get(group.name, '–')} |" if targets else ""))
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
    parser.add_argument("--target", action="append", default=[], metavar="GROUP>=VALUE",
                        help="say whether every seed of GROUP (a group name or record row) reached VALUE, or stayed "
                             "at or below it with <= (repeatable)")
    parser.add_argument("--record", default="none", metavar="NAME",
                        help="also write the seed spreads to results/NAME.json (default: none, no record)")
    parser.add_argument("--results-dir", default=None, help="where the record goes (default: results/)")
    parser.add_argument("--row-label", default=None, metavar="FORMAT",
                        help="record row names from the run config, e.g. "
                             "'{data.generate.variant} / {model.net.attention_type}' (default: the group name)")
    parser.add_argument("--title", default=None, help="the record's one-line title")
    parser.add_argument("--command", default=None, help="the command that reproduces the sweep, for the record "
                                                        "(default: this command)")
    parser.add_argument("--note", action="append", default=[], help="a sentence for the record (repeatable)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads of the runs, for the record (default: the runs' num_threads)")
    args = parser.parse_args(argv)
    absent = [str(f) for f in args.folders if not f.is_dir()]
    if absent:
        sys.exit(f"summarize_sweep.py: error: not folders: {absent}")
    try:
        targets = [parse_target(spec) for spec in args.target]
    except ValueError as error:
        parser.error(str(error))
    groups, missing = group_runs(find_runs(args.folders), args.metric)
    for run in missing:
        print(f"warning: {run} has no {args.metric}; left out", file=sys.stderr)
    if not groups:
        sys.exit(f"summarize_sweep.py: error: no run under {[str(f) for f in args.folders]} has {args.metric}")
    labels = {group.name: row_label(group, args.row_label) for group in groups}
    verdicts = group_targets(groups, targets, args.metric, labels)
    paths = write_summary(groups, args.metric, args.out or args.folders[0], verdicts)
    print(paths["md"].read_text(), end="")
    print("wrote " + ", ".join(str(p) for p in paths.values()))
    if args.record != "none":
        try:
            print(f"record: {write_sweep_record(args, groups, verdicts, labels, argv)}")
        except ValueError as error:
            sys.exit(f"summarize_sweep.py: error: {error}")


def write_sweep_record(args: argparse.Namespace, groups: list[Group], verdicts: dict[str, str],
                       labels: dict[str, str], argv: list[str] | None) -> Path:
    """``results/<args.record>.json``: the seed spread of every group. The machine's fp32 matmul peak is measured
    now, when the record is written, not while the runs trained (they have finished)."""
    from scripts.records import machine, write_record

    seeds = sorted({int(seed) for group in groups for seed in group.seeds if seed.lstrip("-").isdigit()})
    threads = args.threads
    if threads is None:
        found = {run_config(run).get("num_threads") for group in groups for run in group.runs}
        threads = next(iter(found)) if len(found) == 1 and isinstance(next(iter(found)), int) else None
    argv_text = " ".join(argv if argv is not None else sys.argv[1:])
    return write_record(args.record, title=args.title or f"seed spread of {args.metric}, {len(groups)} groups",
                        command=args.command or f"python scripts/summarize_sweep.py {argv_text}",
                        rows=record_rows(groups, args.metric, verdicts, labels), seeds=seeds, notes=args.note,
                        machine_info=machine(threads=threads),
                        **({"results_dir": args.results_dir} if args.results_dir else {}))


if __name__ == "__main__":
    main()
