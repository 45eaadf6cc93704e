"""Print the Markdown table of generated-sample metrics (motion and temporal consistency) of several runs.

    python scripts/generation_table.py outputs/gen/*/samples_metrics.json

A run folder is the generation job's ``outputs/gen/<row>/``: ``samples_metrics.json`` (from
``scripts/evaluate_videos.py``), the stage-2 config in ``dit/config.yaml`` (or ``config.yaml`` beside the metrics),
and, for frame-conditioned rows, ``continuation_metrics.json``: SSIM and MSE of the generated frames against the
real continuation, and the flow direction accuracy of the generated frames alone. Accuracies carry their 95 %
bootstrap interval over clips when the metrics file records one (``ci95``). Rows come in the order given. When the
runs' folder holds the generation job's stage-1 checks (``autoencoder/originals_metrics.json`` and
``autoencoder/reconstructions_metrics.json``), the real test clips and their stage-1 reconstructions come first,
scored the same way.

``--target ROW:KEY>=VALUE`` (or ``<=``; KEY a metric's bare name such as ``flow_direction_accuracy``) adds a column
that says whether the row met it. ``--record NAME`` also writes the table as the result record
``results/NAME.json`` (``scripts/records.py``: every metric of each row with its 95 % interval, the continuation's
``ssim`` and ``mse``, the targets as text, and the machine with its fp32 matmul peak, measured when the record is
written); ``scripts/generation_rows.sh`` passes ``--record generation_rows``. The default writes no record.

    python scripts/generation_table.py outputs/gen/*/samples_metrics.json \
        --target 'divided:flow_direction_accuracy>=0.8' --record generation_rows
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import yaml

from scripts.results_table import parse_target, verdict

TEMPORAL = ("temporal_flickering", "warp_error_dis", "motion_smoothness_flowinterp")
HEADER = ("run", "layout", "temporal_pos_embed", "noise_prior", "num_cond_frames", "flow_direction_accuracy ↑",
          "classifier_accuracy ↑", "flow_direction_accuracy, generated frames ↑", "continuation SSIM ↑",
          "continuation MSE ↓", *TEMPORAL)


def _config(run: Path) -> dict:
    for path in (run / "dit" / "config.yaml", run / "config.yaml"):
        if path.is_file():
            return yaml.safe_load(path.read_text())
    raise FileNotFoundError(f"{run}: no dit/config.yaml or config.yaml beside the metrics")


def _percent(result: dict, prefix: str) -> str:
    """The first metric whose key starts with ``prefix``, as a percentage, with its 95 % interval when recorded."""
    key = next((k for k in result.get("metrics", {}) if k.startswith(prefix)), None)
    if key is None:
        return "–"
    ci = result.get("ci95", {}).get(key)
    interval = f" [{100 * ci[0]:.1f}, {100 * ci[1]:.1f}]" if ci else ""
    return f"{result['metrics'][key]:.1%}{interval}"


def row(metrics_path: Path) -> list[str]:
    """One table row: the run's switches (from its config) and its scores."""
    run = metrics_path.parent
    result = json.loads(metrics_path.read_text())
    report = result["metrics"]
    model = _config(run)["model"]
    continuation = run / "continuation_metrics.json"
    paired_result = json.loads(continuation.read_text()) if continuation.is_file() else {"metrics": {}}
    paired = paired_result["metrics"]
    return [run.name, model["net"]["layout"], str(model["net"].get("temporal_pos_embed", "–")), model["noise_prior"],
            str(model.get("num_cond_frames", 0)), _percent(result, "flow_direction_accuracy"),
            _percent(result, "classifier_accuracy"), _percent(paired_result, "flow_direction_accuracy"),
            f"{paired['ssim']:.3f}" if "ssim" in paired else "–", f"{paired['mse']:.1f}" if "mse" in paired else "–",
            *(f"{report[key]:.4f}" if key in report else "–" for key in TEMPORAL)]


def _bare(report: dict) -> dict[str, float]:
    """The report's metrics by bare name (``classifier_accuracy[timesformer:x]`` -> ``classifier_accuracy``)."""
    return {key.partition("[")[0]: value for key, value in report.get("metrics", {}).items()}


def label(metrics_path: Path) -> str:
    """The record's label of a run: its name and switches, e.g. ```divided` (divided, sincos, iid, 4000 steps)``."""
    run = metrics_path.parent
    config = _config(run)
    model = config["model"]
    parts = [model["net"]["layout"], str(model["net"].get("temporal_pos_embed", "–")), model["noise_prior"]]
    if model.get("num_cond_frames"):
        parts.append(f"{model['num_cond_frames']} frames given")
    steps = (config.get("trainer") or {}).get("max_steps")
    if isinstance(steps, int) and steps > 0:
        parts.append(f"{steps} steps")
    return f"`{run.name}` ({', '.join(parts)})"


def stage_one_rows(paths: list[Path]) -> dict[str, Path]:
    """The generation job's stage-1 checks beside the runs (``<runs>/autoencoder/{originals,reconstructions}_metrics
    .json``): row name -> report, real clips first. Several autoencoder folders: each row names its folder."""
    folders = sorted({path.parent.parent / "autoencoder" for path in paths})
    rows = {}
    for folder in folders:
        suffix = f" ({folder})" if len(folders) > 1 else ""
        for name, file in (("real test clips", "originals_metrics.json"),
                           ("stage-1 reconstructions of them", "reconstructions_metrics.json")):
            if (folder / file).is_file():
                rows[name + suffix] = folder / file
    return rows


def stage_one_row(name: str, path: Path) -> list[str]:
    """A printed row of a stage-1 check: no switches, its accuracies and temporal scores (its SSIM/MSE compare
    reconstructions with their originals, not a continuation: left out)."""
    result = json.loads(path.read_text())
    report = result.get("metrics", {})
    return [name, "–", "–", "–", "–", _percent(result, "flow_direction_accuracy"),
            _percent(result, "classifier_accuracy"), "–", "–", "–",
            *(f"{report[key]:.4f}" if key in report else "–" for key in TEMPORAL)]


def record_rows(paths: list[Path], targets: list[tuple[str, str, str, float]] = ()) -> dict[str, dict]:
    """The table as result-record rows: the stage-1 checks, then one row per run (keyed by its folder name, with its
    switches as ``label``): every metric of ``samples_metrics.json`` (bare names, 95 % intervals), the continuation's
    ``ssim`` and ``mse`` and ``flow_direction_accuracy_generated_frames``, and its ``target`` verdicts."""
    from scripts.records import metric_entry, rows_from_metrics_json

    rows: dict[str, dict] = {}
    for name, path in stage_one_rows(paths).items():
        rows[name] = {key: entry for key, entry in rows_from_metrics_json(path).items()
                      if key not in ("ssim", "mse", "psnr", "mae", "tof_farneback")}
    for path in paths:
        run = path.parent
        row = {"label": {"text": label(path)}, **rows_from_metrics_json(path)}
        continuation = run / "continuation_metrics.json"
        if continuation.is_file():
            paired = rows_from_metrics_json(continuation)
            row.update({key: paired[key] for key in ("ssim", "mse") if key in paired})
            if "flow_direction_accuracy" in paired:
                row["flow_direction_accuracy_generated_frames"] = paired["flow_direction_accuracy"]
        model = _config(run)["model"]
        row["num_cond_frames"] = metric_entry(model.get("num_cond_frames", 0))
        mine = _verdicts(path, targets)
        if mine:
            row["target"] = {"text": mine}
        if run.name in rows:
            raise ValueError(f"two runs are named {run.name!r}: {path}")
        rows[run.name] = row
    return rows


def _verdicts(path: Path, targets: list[tuple[str, str, str, float]]) -> str:
    """The row's target verdicts, '; '-joined ('' without targets)."""
    metrics = _bare(json.loads(path.read_text()))
    return "; ".join(verdict(metrics, key, op, value) for run, key, op, value in targets if run == path.parent.name)


def table(paths: list[Path], targets: list[tuple[str, str, str, float]] = ()) -> str:
    """The Markdown table: the stage-1 checks (when present), then one row per run, a target column with targets."""
    header = [*HEADER, *(["target"] if targets else [])]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name, path in stage_one_rows(paths).items():
        lines.append("| " + " | ".join(stage_one_row(name, path) + (["–"] if targets else [])) + " |")
    for path in paths:
        cells = row(path) + ([_verdicts(path, targets) or "–"] if targets else [])
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("paths", nargs="+", type=Path, metavar="RUN/samples_metrics.json")
    parser.add_argument("--target", action="append", default=[], metavar="ROW:KEY>=VALUE",
                        help="say whether row ROW (its folder name) reached KEY >= VALUE, or KEY <= VALUE with <= "
                             "(repeatable)")
    parser.add_argument("--record", default="none", metavar="NAME",
                        help="also write the table to results/NAME.json (default: none, no record)")
    parser.add_argument("--results-dir", default=None, help="where the record goes (default: results/)")
    parser.add_argument("--command", default=None, help="the command that made the rows, for the record "
                                                        "(default: this command)")
    parser.add_argument("--title", default=None, help="the record's one-line title")
    parser.add_argument("--note", action="append", default=[], help="a sentence for the record (repeatable)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads of the runs, for the record (default: their configs' num_threads)")
    args = parser.parse_args(argv)
    missing = [str(p) for p in args.paths if not p.is_file()]
    if missing:
        parser.error(f"metrics files not found: {missing}")
    try:
        targets = [parse_target(spec) for spec in args.target]
    except ValueError as error:
        parser.error(str(error))
    print(table(args.paths, targets))
    if args.record != "none":
        from scripts.records import machine, write_record

        # The machine's fp32 matmul peak is measured now, when the record is written (the runs have finished).
        argv_text = " ".join(argv if argv is not None else sys.argv[1:])
        path = write_record(args.record, title=args.title or f"generated samples of {len(args.paths)} stage-2 runs",
                            command=args.command or f"python scripts/generation_table.py {argv_text}",
                            rows=record_rows(args.paths, targets), seeds=sorted(_seeds(args.paths)),
                            notes=args.note, machine_info=machine(threads=args.threads or _threads(args.paths)),
                            **({"results_dir": args.results_dir} if args.results_dir else {}))
        print(f"record: {path}", file=sys.stderr)  # stderr: stdout is the table (generation_rows.sh tees it to a file)


def _threads(paths: list[Path]) -> int | None:
    """The runs' torch threads (``num_threads`` of their configs) when they agree, else None."""
    found = {_config(path.parent).get("num_threads") for path in paths}
    return next(iter(found)) if len(found) == 1 and isinstance(next(iter(found)), int) else None


def _seeds(paths: list[Path]) -> set[int]:
    """The stage-2 seeds of the runs (from their configs; none when a config does not say)."""
    found = {_config(path.parent).get("seed") for path in paths}
    return {seed for seed in found if isinstance(seed, int)}


if __name__ == "__main__":
    main()
