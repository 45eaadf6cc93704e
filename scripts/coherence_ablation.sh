#!/usr/bin/env bash
# The layout x noise-prior table of docs/generation.md: runs the generation job's stage 2, sampling and scoring
# (scripts/generation_demo.sh) for every (layout, noise_prior) pair on the shared stage-1 autoencoder and latent cache,
# then prints the table with scripts/generation_table.py.
#   bash scripts/coherence_ablation.sh                  # 2 layouts x 4 priors, two runs at once on one thread each
#   LAYOUTS="divided joint" PRIORS="iid progressive" JOBS=1 THREADS=2 bash scripts/coherence_ablation.sh
# space_only runs use one frame per token (tubelet_size=1): a 2-frame tubelet would mix time inside the token.
# Each run takes about as long as one stage-2 row of the generation job (docs/generation.md). The iid runs are
# the same configs as the generation table's `divided` and `space_only_sincos` rows (scripts/generation_rows.sh): when
# those rows exist they are linked, not trained again.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
GEN=${GEN:-outputs/gen}
LAYOUTS=${LAYOUTS:-divided space_only}
PRIORS=${PRIORS:-iid mixed progressive shared}
JOBS=${JOBS:-2}       # runs at once
THREADS=${THREADS:-1} # torch threads per run

run_one() {
  local layout=$1 prior=$2 row="ablation_$1_$2" args="model.net.layout=$1 model.noise_prior=$2"
  [[ $layout == space_only ]] && args+=" model.net.tubelet_size=1"
  local same_row=$layout; [[ $layout == space_only ]] && same_row=space_only_sincos
  if [[ $prior == iid && ! -e $GEN/$row && -f $GEN/$same_row/samples_metrics.json ]]; then
    ln -s "$same_row" "$GEN/$row"
  fi
  if [[ ! -f $GEN/$row/samples_metrics.json ]]; then
    GEN=$GEN ROW=$row THREADS=$THREADS DIT_ARGS="$args callbacks.progress_bar.refresh_rate=50" \
      bash scripts/generation_demo.sh > "$GEN/$row.log" 2>&1
  fi
  echo "done: $GEN/$row"
}

mkdir -p "$GEN"
for layout in $LAYOUTS; do
  for prior in $PRIORS; do
    while (( $(jobs -rp | wc -l) >= JOBS )); do sleep 5; done
    run_one "$layout" "$prior" &
  done
done
wait
$PY scripts/generation_table.py "$GEN"/ablation_*/samples_metrics.json
