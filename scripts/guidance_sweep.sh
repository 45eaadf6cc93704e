#!/usr/bin/env bash
# Classifier-free guidance sweep (Ho & Salimans 2022) of one generation checkpoint: NUM_SAMPLES clips per scale, a
# balanced grid of its labels, each set scored by scripts/evaluate_videos.py; prints one row per scale.
#   bash scripts/guidance_sweep.sh outputs/gen/image/checkpoints/last.ckpt outputs/gen/image/guidance
#   SCALES="1 2 4" NUM_SAMPLES=128 bash scripts/guidance_sweep.sh <ckpt> <out>
# Motion (flow_direction_accuracy) is scored against samples.txt when it lists directions; digits against
# samples_digit.txt (or samples.txt) with the per-frame digit classifier DIGITS.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
CKPT=${1:?usage: guidance_sweep.sh CKPT OUT}
OUT=${2:?usage: guidance_sweep.sh CKPT OUT}
SCALES=${SCALES:-1 2 3 4}
NUM_SAMPLES=${NUM_SAMPLES:-256}
STEPS=${STEPS:-50}
THREADS=${THREADS:-2}
DIGITS=${DIGITS:-outputs/frame_digit/checkpoints/best.ckpt}
for scale in $SCALES; do
  dir="$OUT/guidance_$scale"
  if [[ ! -f "$dir/samples_metrics.json" ]]; then
    start=$(date +%s)
    $PY scripts/sample_videos.py --ckpt "$CKPT" --num-samples "$NUM_SAMPLES" --steps "$STEPS" \
      --guidance-scale "$scale" --out "$dir/samples" --grey
    digit_labels=()
    [[ -f "$dir/samples/samples_digit.txt" ]] && digit_labels=(--digit-labels "$dir/samples/samples_digit.txt")
    $PY scripts/evaluate_videos.py --videos "$dir/samples/samples.txt" "${digit_labels[@]}" --digit-classifier "$DIGITS" \
      --groups temporal accuracy --threads "$THREADS" --out "$dir/samples_metrics.json" > /dev/null
    echo "guidance $scale: sampled and scored in $(( $(date +%s) - start )) s"
  fi
done
$PY - "$OUT" $SCALES <<'PY'
import json, sys
from pathlib import Path
out, scales = Path(sys.argv[1]), sys.argv[2:]
keys = ("flow_direction_accuracy", "digit_accuracy", "identity_consistency")
print("| guidance_scale | " + " | ".join(keys) + " |\n|---|" + "---|" * len(keys))
for scale in scales:
    report = json.loads((out / f"guidance_{scale}" / "samples_metrics.json").read_text())
    cells = []
    for key in keys:
        name = next((k for k in report["metrics"] if k.split("[")[0] == key), None)
        ci = report.get("ci95", {}).get(name)
        cells.append("–" if name is None else f"{100 * report['metrics'][name]:.1f} %"
                     + (f" [{100 * ci[0]:.1f}, {100 * ci[1]:.1f}]" if ci else ""))
    print(f"| {scale} | " + " | ".join(cells) + " |")
PY
