"""Print a Markdown table of metrics from the JSON files that train.py/eval.py write.

    python scripts/results_table.py outputs/demo/*/test_metrics.json
    python scripts/results_table.py --keys test/acc_top1 test/acc_top5 -- run_a/test_metrics.json run_b/test_metrics.json

Each row is named after the run folder that holds the file (the parent of an ``eval``/``checkpoints`` folder).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

DEFAULT_KEYS = ("test/acc_top1", "test/acc_top5", "test/acc_mean_class")


def run_name(path: Path) -> str:
    parent = path.parent
    return parent.parent.name if parent.name in ("eval", "checkpoints") else parent.name


def table(paths: list[Path], keys: list[str]) -> str:
    """Markdown table with one row per metrics file; missing keys print as '-'; fractions print as percent."""
    lines = ["| run | " + " | ".join(keys) + " |", "|---" * (len(keys) + 1) + "|"]
    for path in paths:
        metrics = json.loads(path.read_text())
        cells = [f"{100 * metrics[k]:.1f}%" if k in metrics and "acc" in k else
                 (f"{metrics[k]:.4g}" if k in metrics else "-") for k in keys]
        lines.append(f"| {run_name(path)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("files", nargs="+", type=Path, help="metrics JSON files")
    parser.add_argument("--keys", nargs="+", default=list(DEFAULT_KEYS), help="metric keys to show")
    args = parser.parse_args()
    missing = [str(p) for p in args.files if not p.is_file()]
    if missing:
        parser.error(f"metrics files not found: {missing}")
    print(table(args.files, args.keys))


if __name__ == "__main__":
    main()
