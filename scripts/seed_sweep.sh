#!/usr/bin/env bash
# Seed spread of the main job and its ablation: trains the divided recipe and the space-only ablation on seeds 0-4
# with Hydra multirun, tests each best checkpoint, and writes the summary table, a bar chart with the seeds as
# points, and the validation top-1 per epoch of the divided runs.
#   bash scripts/seed_sweep.sh                     # both experiments, seeds 0-4 (about 45 min on 2 cores)
#   SEEDS=0,1 EXPERIMENTS=mmnist_direction_divided OUT=outputs/seeds_quick bash scripts/seed_sweep.sh
#   THREADS=1 bash scripts/seed_sweep.sh           # leave a core free for other work (each run about 2x slower)
# The spreads are also written to results/recognition_seed_sweep.json (a result record, scripts/records.py), which
# the README's seed-sweep table is rendered from. Only the full sweep (default SEEDS and EXPERIMENTS) writes it by
# default; RECORD=NAME writes another record, RECORD=none none; RESULTS_DIR moves it (tests).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
OUT=${OUT:-outputs/seeds}
DEFAULT_SEEDS=0,1,2,3,4
DEFAULT_EXPERIMENTS=mmnist_direction_divided,mmnist_direction_space_only
SEEDS=${SEEDS:-$DEFAULT_SEEDS}
EXPERIMENTS=${EXPERIMENTS:-$DEFAULT_EXPERIMENTS}
if [[ $SEEDS == "$DEFAULT_SEEDS" && $EXPERIMENTS == "$DEFAULT_EXPERIMENTS" ]]; then
  RECORD=${RECORD:-recognition_seed_sweep}
else
  RECORD=${RECORD:-none}  # a partial sweep does not replace the full sweep's record
fi
RESULTS_DIR=${RESULTS_DIR:-results}
COMMAND="bash scripts/seed_sweep.sh"  # for the record: the variables that differ from the defaults, then the script
[[ -n ${THREADS:-} ]] && COMMAND="THREADS=$THREADS $COMMAND"
[[ $EXPERIMENTS != "$DEFAULT_EXPERIMENTS" ]] && COMMAND="EXPERIMENTS=$EXPERIMENTS $COMMAND"
[[ $SEEDS != "$DEFAULT_SEEDS" ]] && COMMAND="SEEDS=$SEEDS $COMMAND"
start=$(date +%s)

$PY scripts/make_moving_mnist.py --out datasets/moving_mnist_direction --variant direction
$PY train.py -m experiment="$EXPERIMENTS" seed="$SEEDS" hydra.sweep.dir="$OUT" \
  'hydra.sweep.subdir=${hydra.job.override_dirname}' \
  'hydra.job.config.override_dirname.exclude_keys=[callbacks.progress_bar.refresh_rate,num_threads]' \
  callbacks.progress_bar.refresh_rate=50 num_threads="${THREADS:-2}"

# Targets as in make demo (divided >= 95 %, space_only <= 55 %), on every seed. The record's machine (cores, its fp32
# matmul peak) is measured by summarize_sweep.py when it writes the record, after the runs, on the same machine.
$PY scripts/summarize_sweep.py "$OUT" --metric test/acc_top1 \
  --target 'experiment=mmnist_direction_divided>=0.95' --target 'experiment=mmnist_direction_space_only<=0.55' \
  --record "$RECORD" --results-dir "$RESULTS_DIR" --row-label '{data.generate.variant} / {model.net.attention_type}' \
  --title "Moving MNIST direction: divided TimeSformer against its space-only ablation, seeds $SEEDS" \
  --command "$COMMAND" --threads "${THREADS:-2}" \
  --note "Each seed's best checkpoint on the test clips; ${THREADS:-2} threads a run, one run at a time. Chance 12.5 %; an order-blind model is capped at 50 %."
divided=("$OUT"/experiment=mmnist_direction_divided,seed=*)
if [[ -d "${divided[0]}" ]]; then
  labels=()
  for run in "${divided[@]}"; do labels+=("seed ${run##*seed=}"); done
  $PY scripts/plot_curves.py "${divided[@]}" --labels "${labels[@]}" --metric val/acc_top1 --x epoch \
    --target 0.95 --chance 0.125 --title "divided (mmnist_direction_divided): val top-1 per epoch" \
    --out "$OUT/val_acc_divided.png"
fi
echo "seed sweep finished in $(( $(date +%s) - start )) s; runs under $OUT/"
