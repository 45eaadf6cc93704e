#!/usr/bin/env bash
# The generation job, from nothing to scored samples: stage 1 (per-frame autoencoder), a check of what stage 1
# preserves (reconstructions of the real test clips, scored like generated ones), the latent cache, stage 2 (the
# video DiT, with a motion learning curve), 256 samples from the EMA weights, and their scores.
#   bash scripts/generation_demo.sh                                   # class-conditional divided DiT (the main row)
#   ROW=cond2_divided bash scripts/generation_demo.sh                  # 2 frames given, 6 generated
#   DIT_ARGS="model.net.layout=space_only model.net.tubelet_size=1" ROW=space_only bash scripts/generation_demo.sh
# Stage 1, the reconstructions check and the latent cache are made once and reused by every ROW.
# The recognition model that scores motion is the main job's (`make demo`); it is trained here when missing.
# The default job (ROW=divided, no DIT_ARGS, 256 samples, 50 steps) also writes two result records
# (scripts/records.py), which docs/generation.md is rendered from: results/generation_job.json, the scores of its
# samples (and of stage 1's reconstructions and the real clips), and results/generation_job_time.json, the seconds
# of every step. RECORD=NAME writes NAME.json and NAME_time.json for any job, RECORD=none nothing; RESULTS_DIR moves
# them (tests). The records' machine (cores, fp32 matmul peak) is measured by scripts/records.py when it writes
# them, at the end of the job, on the same machine.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
GEN=${GEN:-outputs/gen}
ROW=${ROW:-divided}
OUT="$GEN/$ROW"
NUM_SAMPLES=${NUM_SAMPLES:-256}
STEPS=${STEPS:-50}
THREADS=${THREADS:-2}
CLASSIFIER=${CLASSIFIER:-outputs/demo/divided/checkpoints/best.ckpt}
DATA=datasets/moving_mnist_direction
AE="$GEN/autoencoder"
if [[ $ROW == divided && -z ${DIT_ARGS:-} && $NUM_SAMPLES == 256 && $STEPS == 50 ]]; then
  RECORD=${RECORD:-generation_job}
  COMMAND="make generation"
else
  RECORD=${RECORD:-none}  # another row or recipe does not replace make generation's records
  COMMAND="ROW=$ROW DIT_ARGS=\"${DIT_ARGS:-}\" NUM_SAMPLES=$NUM_SAMPLES STEPS=$STEPS bash scripts/generation_demo.sh"
fi
RESULTS_DIR=${RESULTS_DIR:-results}
start=$(date +%s)
step_start=$start
TIMES=()  # records.py arguments: one row per step, its seconds (and, for some, its budget)
# step_done LABEL [BUDGET_MINUTES] [reused]: print and keep the seconds since the previous step ended.
step_done() {
  local now seconds
  now=$(date +%s)
  seconds=$(( now - step_start ))
  step_start=$now
  echo "   step: $1: $seconds s ($(( now - start )) s so far)"
  TIMES+=(--value "$1:seconds=$seconds")
  if [[ ${3:-} == reused ]]; then
    TIMES+=(--text "$1:budget=reused (already made)")
  elif [[ -n ${2:-} ]]; then
    local verdict="met"
    (( seconds > $2 * 60 )) && verdict="**missed**"
    TIMES+=(--text "$1:budget=≤ $2 min: $verdict")
  fi
}

echo "== 1/7 building Moving MNIST direction (skipped when present)"
$PY scripts/make_moving_mnist.py --out "$DATA" --variant direction

if [[ ! -f "$CLASSIFIER" ]]; then
  echo "== (no recognition model at $CLASSIFIER: training the main job's divided TimeSformer first)"
  $PY train.py experiment=mmnist_direction_divided hydra.run.dir="$(dirname "$(dirname "$CLASSIFIER")")" test=false \
    num_threads="$THREADS"
fi
step_done "dataset and recognition model (made when missing)"

echo "== 2/7 stage 1: frame autoencoder -> $AE"
reused=reused
if [[ ! -f "$AE/checkpoints/best.ckpt" ]]; then
  reused=
  $PY train.py experiment=mmnist_autoencoder hydra.run.dir="$AE" test=false num_threads="$THREADS" ${AE_ARGS:-}
fi
step_done "stage 1 (frame autoencoder)" "" $reused

echo "== 3/7 what stage 1 preserves: reconstructions of the 1000 real test clips, scored like generated clips"
reused=reused
if [[ ! -f "$AE/reconstructions_metrics.json" ]]; then
  reused=
  $PY scripts/reconstruct_videos.py --autoencoder "$AE/checkpoints/best.ckpt" --videos "$DATA/test_direction.txt" \
    --out "$AE/reconstructions" --grey --threads "$THREADS"
  $PY scripts/evaluate_videos.py --videos "$AE/reconstructions/samples.txt" --reference "$DATA/test_direction.txt" \
    --classifier "$CLASSIFIER" --groups paired accuracy --threads "$THREADS" --out "$AE/reconstructions_metrics.json"
  $PY scripts/evaluate_videos.py --videos "$DATA/test_direction.txt" --classifier "$CLASSIFIER" --groups accuracy \
    --threads "$THREADS" --out "$AE/originals_metrics.json"
fi
step_done "what stage 1 keeps (reconstructions scored)" "" $reused

echo "== 4/7 caching the autoencoder's latents of every clip -> $AE/latents"
reused=reused
if [[ ! -f "$AE/latents/test.pt" ]]; then
  reused=
  $PY scripts/cache_latents.py --autoencoder "$AE/checkpoints/best.ckpt" --num-threads "$THREADS"
fi
step_done "latent cache" "" $reused

echo "== 5/7 stage 2: video DiT over the cached latents -> $OUT/dit"
rm -rf "$OUT"
$PY train.py experiment=mmnist_dit hydra.run.dir="$OUT/dit" data.root="$AE/latents" \
  model.autoencoder_path="$AE/checkpoints/best.ckpt" num_threads="$THREADS" ${DIT_ARGS:-}
step_done "stage 2 (video DiT, motion curve)" 45

echo "== 6/7 sampling $NUM_SAMPLES clips ($STEPS DDIM steps, EMA weights, grey like the data) -> $OUT/samples"
$PY scripts/sample_videos.py --ckpt "$OUT/dit/checkpoints/last.ckpt" --num-samples "$NUM_SAMPLES" --steps "$STEPS" \
  --out "$OUT/samples" --grey
step_done "sampling $NUM_SAMPLES clips"

echo "== 7/7 scoring the samples"
$PY scripts/evaluate_videos.py --videos "$OUT/samples/samples.txt" --classifier "$CLASSIFIER" \
  --groups temporal accuracy --threads "$THREADS" --out "$OUT/samples_metrics.json"
if [[ -f "$OUT/samples/reference.txt" ]]; then  # frame-conditioned: the generated frames against the real ones
  k=$($PY -c "from models.run import load_run; print(load_run('$OUT/dit/checkpoints/last.ckpt').config.model.num_cond_frames)")
  $PY scripts/evaluate_videos.py --videos "$OUT/samples/samples.txt" --reference "$OUT/samples/reference.txt" \
    --start-frame "$k" --groups paired accuracy --threads "$THREADS" --out "$OUT/continuation_metrics.json"
fi  # (its flow_direction_accuracy is that of the generated frames alone: the given ones move correctly by construction)
$PY scripts/plot_curves.py "$OUT/dit" --labels "$ROW" --metric flow_direction_accuracy --x step --target 0.8 \
  --chance 0.125 --title "stage 2 ($ROW): flow direction accuracy of 64 samples" --out "$OUT/motion_curve.png"
step_done "scoring and the curve"
total=$(( $(date +%s) - start ))
TIMES+=(--value "**generation job ($ROW), in all**:seconds=$total")
verdict="met"; (( total > 75 * 60 )) && verdict="**missed**"
TIMES+=(--text "**generation job ($ROW), in all**:budget=≤ 75 min: $verdict")

echo
echo "generation job ($ROW) finished in $total s"
echo "samples: $OUT/samples (grid.gif); scores: $OUT/samples_metrics.{json,md}; curve: $OUT/motion_curve.png"

if [[ $RECORD != none ]]; then
  rows=()  # ROW=report.json: every metric of an evaluate_videos.py report, with its 95 % interval
  [[ -f "$AE/originals_metrics.json" ]] && rows+=(--row "real test clips=$AE/originals_metrics.json")
  [[ -f "$AE/reconstructions_metrics.json" ]] && \
    rows+=(--row "stage-1 reconstructions of them=$AE/reconstructions_metrics.json")
  rows+=(--row "\`$ROW\` samples ($NUM_SAMPLES clips)=$OUT/samples_metrics.json")
  [[ -f "$OUT/continuation_metrics.json" ]] && \
    rows+=(--row "\`$ROW\` generated frames against the real ones=$OUT/continuation_metrics.json")
  seed=0  # train.py's default, unless DIT_ARGS sets one
  [[ " ${DIT_ARGS:-} " =~ \ seed=([0-9]+)\  ]] && seed=${BASH_REMATCH[1]}
  $PY scripts/records.py write "$RECORD" --results-dir "$RESULTS_DIR" --command "$COMMAND" --seeds "$seed" \
    --title "The generation job ($ROW): its $NUM_SAMPLES samples ($STEPS DDIM steps, EMA weights) scored, beside the real test clips and stage 1's reconstructions of them" \
    --overrides ${DIT_ARGS:-} "${rows[@]}" \
    --note "95 % bootstrap intervals over clips; $THREADS threads. Scored by scripts/evaluate_videos.py with the recognition model $CLASSIFIER."
  $PY scripts/records.py write "${RECORD}_time" --results-dir "$RESULTS_DIR" --command "$COMMAND" --seeds "$seed" \
    --title "The generation job ($ROW), one uninterrupted run, step by step" "${TIMES[@]}" \
    --note "$THREADS threads; a step marked reused was made by an earlier run and took no time here. The budgets are those of make generation on the 2-core reference machine."
fi
