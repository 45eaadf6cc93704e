#!/usr/bin/env bash
# Every row of the generation table of docs/generation.md (issue 8, section 3): the class-conditional and the 2-frame-conditioned
# DiT, each with divided attention and without temporal mixing (space_only, with and without a frame index), all
# through scripts/generation_demo.sh on one shared stage 1 and latent cache. Then the table and the motion curves.
#   bash scripts/generation_rows.sh              # 5 rows, two at a time on one thread each (make generation-table)
#   ROWS="divided cond2_divided" bash scripts/generation_rows.sh
# The table is also written to results/generation_rows.json (a result record, scripts/records.py), which
# docs/generation.md's table is rendered from. Only every row (the default ROWS) writes it by default; RECORD=NAME
# writes another record, RECORD=none none; RESULTS_DIR moves it (tests). The rows' own generation_demo.sh runs write
# no generation_job record (that is make generation's, on two threads and alone).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
GEN=${GEN:-outputs/gen}
DEFAULT_ROWS="divided cond2_divided space_only_sincos space_only_none cond2_space_only"
ROWS=${ROWS:-$DEFAULT_ROWS}
JOBS=${JOBS:-2}
THREADS=${THREADS:-1}
if [[ $ROWS == "$DEFAULT_ROWS" ]]; then RECORD=${RECORD:-generation_rows}; else RECORD=${RECORD:-none}; fi
RESULTS_DIR=${RESULTS_DIR:-results}
start=$(date +%s)
# space_only: one frame per token, so nothing mixes time (twice the tokens: 0.55 s a step on one thread, against
# 0.41 s for divided). cond2_space_only stops at 2000 steps to fit the budget of the run that produced the README's
# table; compare it with the cond2_divided motion curve at the same step (100 % from step 1000).
SPACE_ONLY="model.net.layout=space_only model.net.tubelet_size=1"
declare -A ARGS=(
  [divided]=""
  [cond2_divided]="model.num_cond_frames=2"
  [space_only_sincos]="$SPACE_ONLY model.net.temporal_pos_embed=sincos"
  [space_only_none]="$SPACE_ONLY model.net.temporal_pos_embed=none"
  [cond2_space_only]="$SPACE_ONLY model.num_cond_frames=2 trainer.max_steps=2000"
)

run_row() {
  GEN=$GEN ROW=$1 THREADS=$THREADS DIT_ARGS="${ARGS[$1]} callbacks.progress_bar.refresh_rate=50" RECORD=none \
    bash scripts/generation_demo.sh > "$GEN/$1.log" 2>&1
  echo "done: $GEN/$1 ($(( $(date +%s) - start )) s so far; log $GEN/$1.log)"
}

mkdir -p "$GEN"
rows=($ROWS)
run_row "${rows[0]}"   # the first row also makes stage 1, the reconstructions check and the latent cache
for row in "${rows[@]:1}"; do
  while (( $(jobs -rp | wc -l) >= JOBS )); do sleep 5; done
  run_row "$row" &
done
wait

tables=()
for row in "${rows[@]}"; do tables+=("$GEN/$row/samples_metrics.json"); done
# Targets of issue 8 (flow direction and classifier accuracy). The record's machine (cores, fp32 matmul peak) is
# measured by generation_table.py when it writes the record, after the rows, on the same machine.
COMMAND="make generation-table"
[[ $ROWS != "$DEFAULT_ROWS" ]] && COMMAND="ROWS=\"$ROWS\" bash scripts/generation_rows.sh"
$PY scripts/generation_table.py "${tables[@]}" \
  --target 'divided:flow_direction_accuracy>=0.8' --target 'divided:classifier_accuracy>=0.8' \
  --target 'cond2_divided:flow_direction_accuracy>=0.9' --target 'cond2_divided:classifier_accuracy>=0.9' \
  --record "$RECORD" --results-dir "$RESULTS_DIR" --command "$COMMAND" --threads "$THREADS" \
  --title "Stage 2 rows of the generation job: motion of ${NUM_SAMPLES:-256} class-conditional samples a row" \
  --note "Each row's samples from the EMA weights (scripts/generation_demo.sh: DDIM ${STEPS:-50} steps, no guidance), $THREADS thread(s) a row, $JOBS rows at a time; intervals are 95 % bootstrap intervals over clips. Continuation SSIM and MSE compare the generated frames with the real ones that follow the given frames." \
  | tee "$GEN/generation_table.md"
curves=() labels=()
for row in "${rows[@]}"; do curves+=("$GEN/$row/dit") labels+=("$row"); done
$PY scripts/plot_curves.py "${curves[@]}" --labels "${labels[@]}" --metric flow_direction_accuracy --x step \
  --target 0.8 --chance 0.125 --title "stage 2: flow direction accuracy of 64 samples (8 per direction)" \
  --out "$GEN/motion_curves.png"
echo "generation rows finished in $(( $(date +%s) - start )) s; table $GEN/generation_table.md"
