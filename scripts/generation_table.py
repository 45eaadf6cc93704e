"""Print the Markdown table of generated-sample metrics (motion accuracy and temporal consistency) of several runs.

    python scripts/generation_table.py outputs/gen/dit_*/samples_metrics.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import yaml

COLUMNS = ("temporal_flickering", "warp_error_dis", "motion_smoothness_flowinterp")


def row(metrics_path: Path) -> str:
    """One table row: the run's layout and noise prior (from its config.yaml) and its scores."""
    report = json.loads(metrics_path.read_text())["metrics"]
    config = yaml.safe_load((metrics_path.parent / "config.yaml").read_text())
    accuracy = next((v for k, v in report.items() if k.startswith("classifier_accuracy")), float("nan"))
    cells = [metrics_path.parent.name, config["model"]["net"]["layout"], config["model"]["noise_prior"],
             f"{accuracy:.1%}", *(f"{report[key]:.4f}" for key in COLUMNS)]
    return "| " + " | ".join(cells) + " |"


def main(paths: list[str]) -> None:
    if not paths:
        raise SystemExit("usage: python scripts/generation_table.py RUN/samples_metrics.json ...")
    print("| run | layout | noise_prior | motion accuracy ↑ | temporal_flickering ↑ | warp_error_dis ↓ "
          "| motion_smoothness_flowinterp ↑ |")
    print("|---|---|---|---|---|---|---|")
    for path in sorted(paths):
        print(row(Path(path)))


if __name__ == "__main__":
    main(sys.argv[1:])
