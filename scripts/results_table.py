"""Print a Markdown table of metrics from the JSON files that train.py/eval.py write.

    python scripts/results_table.py outputs/demo/*/test_metrics.json
    python scripts/results_table.py --keys test/acc_top1 test/acc_top5 -- run_a/test_metrics.json run_b/test_metrics.json
    python scripts/results_table.py --target 'divided:test/acc_top1>=0.95' --target 'space_only:test/acc_top1<=0.55' \
        outputs/demo/*/eval/test_metrics.json

Each row is named after the run folder that holds the file (the parent of an ``eval``/``checkpoints`` folder).
``--target RUN:KEY>=VALUE`` (or ``<=``) adds a column that says whether that run reached the target, so nobody has to compare
numbers by hand; the exit status stays 0 either way. ``--record NAME`` also writes the table as the result record
``results/NAME.json`` (see ``scripts/records.py``), with the command given by ``--command``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

DEFAULT_KEYS = ("test/acc_top1", "test/acc_top5", "test/acc_mean_class")


def run_name(path: Path) -> str:
    parent = path.parent
    return parent.parent.name if parent.name in ("eval", "checkpoints") else parent.name


def _format(key: str, value: float) -> str:
    return f"{100 * value:.1f}%" if "acc" in key else f"{value:.4g}"


def parse_target(spec: str) -> tuple[str, str, str, float]:
    """``RUN:KEY>=VALUE`` or ``RUN:KEY<=VALUE`` (``=`` alone means ``>=``) -> (run, key, op, value).

    Raises:
        ValueError: ``spec`` is not of that form.
    """
    try:
        run, rest = spec.split(":", 1)
        key, value = rest.rsplit("=", 1)
        op = "<=" if key.endswith("<") else ">="
        return run, key.rstrip("<>"), op, float(value)
    except ValueError as error:
        raise ValueError(f"--target {spec!r} must look like RUN:KEY>=VALUE or RUN:KEY<=VALUE, e.g. "
                         "divided:test/acc_top1>=0.95") from error


def verdict(metrics: dict, key: str, op: str, target: float) -> str:
    """'meets the ≥ X target' or 'misses ...': whether ``metrics[key]`` is ``op`` ``target``."""
    if key not in metrics:
        return f"no {key}"
    shown = _format(key, target)
    if op == ">=":
        return f"meets the ≥ {shown} target" if metrics[key] >= target else f"**below the {shown} target**"
    return f"meets the ≤ {shown} bound" if metrics[key] <= target else f"**above the {shown} bound**"


def table(paths: list[Path], keys: list[str], targets: list[tuple[str, str, str, float]] = ()) -> str:
    """Markdown table with one row per metrics file; missing keys print as '-'; fractions print as percent.

    With ``targets``, a last column gives each targeted run's verdict (other runs get '-').
    """
    header = ["run", *keys] + (["target"] if targets else [])
    lines = ["| " + " | ".join(header) + " |", "|---" * len(header) + "|"]
    for path in paths:
        metrics = json.loads(path.read_text())
        cells = [_format(k, metrics[k]) if k in metrics else "-" for k in keys]
        if targets:
            mine = [verdict(metrics, key, op, value) for run, key, op, value in targets if run == run_name(path)]
            cells.append("; ".join(mine) if mine else "-")
        lines.append(f"| {run_name(path)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def record_rows(paths: list[Path], keys: list[str], targets: list[tuple[str, str, str, float]] = ()) -> dict:
    """The table as result-record rows: ``{run: {key with '/' as '_': {"value": v}, "target": {"text": ...}}}``."""
    rows = {}
    for path in paths:
        metrics = json.loads(path.read_text())
        row = {key.replace("/", "_"): {"value": float(metrics[key])} for key in keys if key in metrics}
        mine = [verdict(metrics, key, op, value) for run, key, op, value in targets if run == run_name(path)]
        if mine:
            row["target"] = {"text": "; ".join(mine)}
        rows[run_name(path)] = row
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("files", nargs="+", type=Path, help="metrics JSON files")
    parser.add_argument("--keys", nargs="+", default=list(DEFAULT_KEYS), help="metric keys to show")
    parser.add_argument("--target", action="append", default=[], metavar="RUN:KEY>=VALUE",
                        help="say whether RUN reached KEY >= VALUE, or KEY <= VALUE with <= (repeatable)")
    parser.add_argument("--record", metavar="NAME", help="also write results/NAME.json (a result record)")
    parser.add_argument("--command", default="", help="the command that produced the files, for the record")
    parser.add_argument("--seeds", type=int, nargs="*", default=[], help="seeds of the runs, for the record")
    parser.add_argument("--note", action="append", default=[], help="a sentence for the record (repeatable)")
    parser.add_argument("--results-dir", default=None, help="where the record goes (default: results/)")
    args = parser.parse_args(argv)
    missing = [str(p) for p in args.files if not p.is_file()]
    if missing:
        parser.error(f"metrics files not found: {missing}")
    try:
        targets = [parse_target(spec) for spec in args.target]
    except ValueError as error:
        parser.error(str(error))
    print(table(args.files, args.keys, targets))
    if args.record:
        from scripts.records import write_record

        path = write_record(args.record, title=f"{args.command or 'runs'}: {', '.join(args.keys)}",
                            command=args.command or "python scripts/results_table.py ...",
                            rows=record_rows(args.files, args.keys, targets), seeds=args.seeds, notes=args.note,
                            **({"results_dir": args.results_dir} if args.results_dir else {}))
        print(f"record: {path}")


if __name__ == "__main__":
    main()
