"""Print the Markdown table of generated-sample metrics (motion and temporal consistency) of several runs.

    python scripts/generation_table.py outputs/gen/*/samples_metrics.json

A run folder is the generation job's ``outputs/gen/<row>/``: ``samples_metrics.json`` (from
``scripts/evaluate_videos.py``), the stage-2 config in ``dit/config.yaml`` (or ``config.yaml`` beside the metrics),
and, for frame-conditioned rows, ``continuation_metrics.json``: SSIM and MSE of the generated frames against the
real continuation, and the flow direction accuracy of the generated frames alone. Accuracies carry their 95 %
bootstrap interval over clips when the metrics file records one (``ci95``).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import yaml

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


def main(paths: list[str]) -> None:
    if not paths:
        raise SystemExit("usage: python scripts/generation_table.py RUN/samples_metrics.json ...")
    print("| " + " | ".join(HEADER) + " |")
    print("|" + "---|" * len(HEADER))
    for path in sorted(paths):
        print("| " + " | ".join(row(Path(path))) + " |")


if __name__ == "__main__":
    main(sys.argv[1:])
