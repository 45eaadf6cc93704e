"""Result records: one small JSON file per reported result under ``results/``, from which the docs are rendered.

A record says what was run and where, so a figure in the README can always be traced to a run and rerun:

* ``name``, ``title``: the file stem (``results/<name>.json``) and a one-line description;
* ``command``: the one command that reproduces it, and ``overrides`` / ``seeds`` beside it;
* ``commit`` (``git rev-parse HEAD``, with ``dirty: true`` if the work tree had uncommitted changes) and ``date``
  (UTC, ISO 8601);
* ``machine``: CPU cores, torch threads, GPU (none here), and the fp32 matmul peak measured in the same run
  (``fp32_matmul_peak_gflops``: the best of five 4096² ``torch.mm``, the same probe as ``scripts/bench_train.py``),
  so times from machines of different speed can be compared;
* ``rows``: ``{row: {metric: {"value": v, "ci95": [lo, hi]} | {"mean", "min", "max", "values"}}}``: one row per
  configuration, intervals as 95 % bootstrap intervals over clips (``scripts/evaluate_videos.py``), seed spreads as
  mean / min / max;
* ``provenance``: ``measured`` (written by the script that ran it) or ``transcribed`` (figures typed from an earlier
  README whose run predates the records; its ``machine`` and ``commit`` are what that text stated, or null).

A rerun replaces its record (written atomically). ``scripts/render_docs.py`` turns records into the tables of the
README and ``docs/``; a record from a machine other than the reference one (2 CPU cores, no GPU) is marked there.

Command line (for shell pipelines)::

    python scripts/records.py write generation_digits --title "..." --command "make generation-digits" \\
        --seeds 0 --row moving=outputs/gen/digits/samples_metrics.json
    python scripts/records.py spread generation_digits_seeds --from generation_digits generation_digits_seed1 \
        --row "video stage" --metrics digit_accuracy identity_consistency --title "..." --command "..."
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "results"
PEAK_SIZE = 4096
REFERENCE_MACHINE = {"cpu_cores": 2, "gpu": None}  # the machine the README's figures are measured on


def matmul_peak(size: int = PEAK_SIZE, repeats: int = 5) -> float:
    """Best fp32 ``torch.mm`` throughput of two size×size matrices, in FLOP/s (2·size³ FLOP per product)."""
    import torch

    a, b = torch.randn(size, size), torch.randn(size, size)
    torch.mm(a, b)  # warm-up: thread pool and caches
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best


def machine(peak_flops: float | None = None, threads: int | None = None) -> dict[str, Any]:
    """This machine: cores, torch threads, GPU name (or None) and the fp32 matmul peak in GFLOP/s.

    Args:
        peak_flops: a peak already measured in this run (FLOP/s); None measures it now (about 2 s).
        threads: torch threads the result ran with; None: ``torch.get_num_threads()`` now.
    """
    import torch

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    peak = matmul_peak() if peak_flops is None else peak_flops
    return {"cpu_cores": os.cpu_count(), "torch_threads": threads or torch.get_num_threads(), "gpu": gpu,
            "fp32_matmul_peak_gflops": round(peak / 1e9, 1), "platform": platform.platform(terse=True)}


def machine_for_children(threads: int | None) -> dict[str, Any]:
    """:func:`machine` for a benchmark whose measurements run in child processes with ``threads`` torch threads
    (None: torch's default): the peak is measured here, now, with those threads, and printed."""
    import torch

    if threads:
        torch.set_num_threads(threads)
    info = machine(threads=torch.get_num_threads())
    print(f"fp32 matmul peak: {info['fp32_matmul_peak_gflops']} GFLOP/s ({info['torch_threads']} threads)")
    return info


def git_commit(root: Path = ROOT) -> tuple[str | None, bool]:
    """``(HEAD commit, work tree dirty)``; ``(None, False)`` outside a git checkout."""
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True)
        status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                                capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return None, False
    return head.stdout.strip(), bool(status.stdout.strip())


def metric_entry(value: float, ci95: Iterable[float] | None = None) -> dict[str, Any]:
    """``{"value": v}`` with its 95 % interval when given."""
    entry: dict[str, Any] = {"value": float(value)}
    if ci95 is not None:
        entry["ci95"] = [float(x) for x in ci95]
    return entry


def seed_entry(values: Iterable[float]) -> dict[str, Any]:
    """Seed spread of one metric: mean, min, max and the values themselves (seed order)."""
    values = [float(v) for v in values]
    if not values:
        raise ValueError("a seed spread needs at least one value")
    return {"mean": sum(values) / len(values), "min": min(values), "max": max(values), "values": values}


def rows_from_metrics_json(path: str | Path) -> dict[str, dict[str, Any]]:
    """Every metric of a ``scripts/evaluate_videos.py`` JSON report, with its 95 % interval.

    Keys with a component tag (``digit_accuracy[frameclassifier:frame_digit]``) are stored under the bare name
    (``digit_accuracy``), the tag under ``"component"``.

    Raises:
        FileNotFoundError / ValueError: the report is missing or is not an evaluate_videos.py report (path named).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such metrics report")
    report = json.loads(path.read_text())
    if "metrics" not in report:
        raise ValueError(f"{path}: not a scripts/evaluate_videos.py report (no 'metrics')")
    out: dict[str, Any] = {}
    for key, value in report["metrics"].items():
        name, _, tag = key.partition("[")
        entry = metric_entry(value, report.get("ci95", {}).get(key))
        if tag:
            entry["component"] = tag.rstrip("]")
        out[name] = entry
    return out


def write_record(
    name: str,
    *,
    title: str,
    command: str,
    rows: Mapping[str, Mapping[str, Any]],
    seeds: Iterable[int] = (),
    overrides: Iterable[str] = (),
    notes: Iterable[str] = (),
    machine_info: Mapping[str, Any] | None = None,
    provenance: str = "measured",
    commit: str | None = None,
    date: str | None = None,
    results_dir: str | Path = RESULTS,
    dirty: bool = False,
) -> Path:
    """Write (or replace) ``results/<name>.json`` atomically and return its path.

    Args:
        name: file stem, ``[a-z0-9_]+``.
        title: one line saying what the result is.
        command: the command that reproduces it.
        rows: ``{row: {metric: entry}}`` (see :func:`metric_entry`, :func:`seed_entry`); plain numbers are wrapped.
        seeds: the seeds behind the figures.
        overrides: Hydra overrides or script flags that differ from the recipe.
        notes: short sentences a reader needs to read the figures.
        machine_info: :func:`machine` of the run (None: measured now).
        provenance: ``measured`` or ``transcribed`` (module docstring).
        commit: the commit the figures come from, for a transcribed or computed record (None: this checkout's HEAD
            and whether its work tree is dirty).
        dirty: whether ``commit`` had uncommitted changes (read only when ``commit`` is given).
        date: when the figures were measured (ISO 8601); None: now for a measured record, unknown for a
            transcribed one.

    Raises:
        ValueError: a bad name, provenance or empty rows.
    """
    if not name or not all(ch.isalnum() or ch == "_" for ch in name) or name.lower() != name:
        raise ValueError(f"record name {name!r} must be lower-case letters, digits and underscores")
    if provenance not in ("measured", "transcribed"):
        raise ValueError(f"provenance={provenance!r} must be 'measured' or 'transcribed'")
    if not rows:
        raise ValueError(f"record {name!r} has no rows")
    commit, dirty = (commit, bool(dirty)) if commit else git_commit()
    record = {
        "name": name, "title": title, "command": command, "seeds": list(seeds), "overrides": list(overrides),
        "commit": commit, "dirty": dirty,
        "date": date or (dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat()
                         if provenance == "measured" else None),
        "machine": dict(machine_info) if machine_info is not None else machine(),
        "provenance": provenance,
        "rows": {row: {key: value if isinstance(value, Mapping) else metric_entry(value)
                       for key, value in metrics.items()} for row, metrics in rows.items()},
        "notes": list(notes),
    }
    path = Path(results_dir) / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(record, indent=1, ensure_ascii=False) + "\n")
    os.replace(tmp, path)
    return path


def load_records(results_dir: str | Path = RESULTS) -> dict[str, dict[str, Any]]:
    """Every ``results/*.json`` record by name.

    Raises:
        ValueError: a file that is not valid JSON or lacks a record's fields (the file is named).
    """
    records = {}
    for path in sorted(Path(results_dir).glob("*.json")):
        try:
            record = json.loads(path.read_text())
        except json.JSONDecodeError as error:
            raise ValueError(f"{path}: not valid JSON ({error})") from error
        missing = {"name", "command", "rows", "machine", "provenance"} - set(record)
        if missing:
            raise ValueError(f"{path}: not a result record, missing {sorted(missing)}")
        records[record["name"]] = record
    return records


def is_reference_machine(record: Mapping[str, Any]) -> bool:
    """Whether the record was measured on the README's reference machine (2 CPU cores, no GPU)."""
    info = record.get("machine") or {}
    return info.get("cpu_cores") == REFERENCE_MACHINE["cpu_cores"] and not info.get("gpu")


def spread_record(
    name: str,
    sources: Iterable[str],
    *,
    row: str,
    metrics: Iterable[str],
    title: str,
    command: str,
    texts: Mapping[str, str] | None = None,
    notes: Iterable[str] = (),
    results_dir: str | Path = RESULTS,
) -> Path:
    """Write ``results/<name>.json``: the seed spread (mean, min, max) of ``row`` over one-seed records.

    Each source record holds one training seed of the same recipe; the new record's row ``mean over seeds a, b
    [min, max]`` has one :func:`seed_entry` per metric (values in the sources' order), plus each source's own row
    (``seed k``, with its 95 % interval) and the ``texts`` cells. Commit (and its dirty flag), date and machine are
    the newest source's (the spread is computed, not measured).

    Raises:
        ValueError: fewer than two sources, a source without exactly one seed, two sources with the same seed, a
            source lacking the row or a numeric metric, a source without a commit or date (a transcribed one), or
            sources from machines of different kinds (cores, GPU); the record is named.
        FileNotFoundError: a source record that does not exist.
    """
    sources = list(sources)
    metrics = list(metrics)
    if len(sources) < 2:
        raise ValueError(f"a seed spread needs two or more records, got {sources}")
    loaded = []
    for source in sources:
        path = Path(results_dir) / f"{source}.json"
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such record")
        record = json.loads(path.read_text())
        if len(record.get("seeds", [])) != 1:
            raise ValueError(f"{path}: a seed spread needs records of one seed each, it has {record.get('seeds')}")
        missing = [m for m in metrics if "value" not in record["rows"].get(row, {}).get(m, {})]
        if missing:
            raise ValueError(f"{path}: row {row!r} lacks {missing} (as numbers)")
        if not record.get("commit") or not record.get("date"):
            raise ValueError(f"{path}: a seed spread needs measured records with a commit and a date")
        loaded.append(record)
    kinds = {(record["machine"].get("cpu_cores"), record["machine"].get("gpu")) for record in loaded}
    if len(kinds) > 1:
        raise ValueError(f"records {sources} come from different machines (cores, GPU): {sorted(map(str, kinds))}")
    seeds = [record["seeds"][0] for record in loaded]
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"records {sources} repeat a seed: {seeds}")
    label = f"mean over seeds {', '.join(map(str, seeds))} [min, max]"
    rows: dict[str, dict[str, Any]] = {label: {
        m: seed_entry(record["rows"][row][m]["value"] for record in loaded) for m in metrics}}
    for key, text in (texts or {}).items():
        rows[label][key] = {"text": text}
    for seed, record in zip(seeds, loaded):
        rows[f"seed {seed}"] = {m: record["rows"][row][m] for m in metrics}
    newest = max(loaded, key=lambda record: record.get("date") or "")
    return write_record(name, title=title, command=command, rows=rows, seeds=seeds,
                        overrides=newest.get("overrides", []), notes=notes, machine_info=newest["machine"],
                        commit=newest["commit"], dirty=newest.get("dirty", False), date=newest["date"],
                        results_dir=results_dir)


def _parse_rows(specs: list[str]) -> dict[str, dict[str, Any]]:
    rows = {}
    for spec in specs:
        row, sep, path = spec.partition("=")
        if not sep or not row or not path:
            raise ValueError(f"--row {spec!r}: expected ROW=metrics.json")
        rows[row] = rows_from_metrics_json(path)
    return rows


def _add_entries(rows: dict[str, dict[str, Any]], specs: list[str], kind: str) -> None:
    for spec in specs:
        target, sep, value = spec.partition("=")
        row, colon, key = target.rpartition(":")
        if not sep or not colon or not row or not key:
            raise ValueError(f"--{kind} {spec!r}: expected ROW:KEY=VALUE")
        if kind == "value":
            try:
                entry = metric_entry(float(value))
            except ValueError:
                raise ValueError(f"--value {spec!r}: {value!r} is not a number") from None
        else:
            entry = {"text": value}
        rows.setdefault(row, {})[key] = entry


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="action", required=True)
    write = sub.add_parser("write", help="write results/<name>.json from evaluate_videos.py reports")
    write.add_argument("name", help="record name: results/<name>.json")
    write.add_argument("--title", required=True, help="one line saying what the result is")
    write.add_argument("--command", required=True, help="the command that reproduces it")
    write.add_argument("--row", action="append", default=[], metavar="ROW=FILE",
                       help="a row from a scripts/evaluate_videos.py JSON report (repeatable)")
    write.add_argument("--value", action="append", default=[], metavar="ROW:KEY=NUMBER",
                       help="a number beside the reports' metrics, e.g. 'video stage:minutes=41.5' (repeatable)")
    write.add_argument("--text", action="append", default=[], metavar="ROW:KEY=TEXT",
                       help="a text cell, e.g. 'video stage:target=>= 90 %%' (repeatable)")
    write.add_argument("--seeds", type=int, nargs="*", default=[], help="seeds behind the figures")
    write.add_argument("--overrides", nargs="*", default=[], help="overrides that differ from the recipe")
    write.add_argument("--note", action="append", default=[], help="a sentence a reader needs (repeatable)")
    write.add_argument("--results-dir", default=str(RESULTS), help="where records live (default: results/)")
    spread = sub.add_parser("spread", help="write results/<name>.json: one row's seed spread over one-seed records")
    spread.add_argument("name", help="record name: results/<name>.json")
    spread.add_argument("--from", dest="sources", nargs="+", required=True, metavar="RECORD",
                        help="the one-seed records, e.g. generation_digits_tdir_cond1_all generation_..._seed1")
    spread.add_argument("--row", required=True, help="the row of every source, e.g. 'video stage'")
    spread.add_argument("--metrics", nargs="+", required=True, help="the metrics to spread")
    spread.add_argument("--title", required=True)
    spread.add_argument("--command", required=True, help="the commands that reproduce every seed")
    spread.add_argument("--text", action="append", default=[], metavar="KEY=TEXT",
                        help="a text cell of the spread row, e.g. 'target=>= 85 %%' (repeatable)")
    spread.add_argument("--note", action="append", default=[])
    spread.add_argument("--results-dir", default=str(RESULTS))
    show = sub.add_parser("show", help="list the records: name, provenance, date, machine")
    show.add_argument("--results-dir", default=str(RESULTS))
    args = parser.parse_args(argv)
    try:
        if args.action == "write":
            rows = _parse_rows(args.row)
            _add_entries(rows, args.value, "value")
            _add_entries(rows, args.text, "text")
            path = write_record(args.name, title=args.title, command=args.command, rows=rows,
                                seeds=args.seeds, overrides=args.overrides, notes=args.note,
                                results_dir=args.results_dir)
            print(f"record: {path}")
        elif args.action == "spread":
            texts = {}
            for spec in args.text:
                key, sep, text = spec.partition("=")
                if not sep or not key:
                    raise ValueError(f"--text {spec!r}: expected KEY=TEXT")
                texts[key] = text
            path = spread_record(args.name, args.sources, row=args.row, metrics=args.metrics, title=args.title,
                                 command=args.command, texts=texts, notes=args.note, results_dir=args.results_dir)
            print(f"record: {path}")
        else:
            for name, record in load_records(args.results_dir).items():
                info = record["machine"]
                print(f"{name}: {record['provenance']}, {record.get('date')}, {info.get('cpu_cores')} cores, "
                      f"peak {info.get('fp32_matmul_peak_gflops')} GFLOP/s")
    except (FileNotFoundError, ValueError) as error:
        print(f"records.py: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
