#!/usr/bin/env bash
# Seed spread of the main job and its ablation: trains the divided recipe and the space-only ablation on seeds 0-4
# with Hydra multirun, tests each best checkpoint, and writes the summary table, a bar chart with the seeds as
# points, and the validation top-1 per epoch of the divided runs.
#   bash scripts/seed_sweep.sh                     # both experiments, seeds 0-4 (about 45 min on 2 cores)
#   SEEDS=0,1 EXPERIMENTS=mmnist_direction_divided OUT=outputs/seeds_quick bash scripts/seed_sweep.sh
#   THREADS=1 bash scripts/seed_sweep.sh           # leave a core free for other work (each run about 2x slower)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
OUT=${OUT:-outputs/seeds}
SEEDS=${SEEDS:-0,1,2,3,4}
EXPERIMENTS=${EXPERIMENTS:-mmnist_direction_divided,mmnist_direction_space_only}
start=$(date +%s)

$PY scripts/make_moving_mnist.py --out datasets/moving_mnist_direction --variant direction
$PY train.py -m experiment="$EXPERIMENTS" seed="$SEEDS" hydra.sweep.dir="$OUT" \
  'hydra.sweep.subdir=${hydra.job.override_dirname}' \
  'hydra.job.config.override_dirname.exclude_keys=[callbacks.progress_bar.refresh_rate,num_threads]' \
  callbacks.progress_bar.refresh_rate=50 num_threads="${THREADS:-2}"

$PY scripts/summarize_sweep.py "$OUT" --metric test/acc_top1
divided=("$OUT"/experiment=mmnist_direction_divided,seed=*)
if [[ -d "${divided[0]}" ]]; then
  labels=()
  for run in "${divided[@]}"; do labels+=("seed ${run##*seed=}"); done
  $PY scripts/plot_curves.py "${divided[@]}" --labels "${labels[@]}" --metric val/acc_top1 --x epoch \
    --target 0.95 --chance 0.125 --title "divided (mmnist_direction_divided): val top-1 per epoch" \
    --out "$OUT/val_acc_divided.png"
fi
echo "seed sweep finished in $(( $(date +%s) - start )) s; runs under $OUT/"
