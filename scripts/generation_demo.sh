#!/usr/bin/env bash
# The generation job, from nothing to scored samples: stage 1 (per-frame autoencoder), a check of what stage 1
# preserves (reconstructions of the real test clips, scored like generated ones), the latent cache, stage 2 (the
# video DiT, with a motion learning curve), 256 samples from the EMA weights, and their scores.
#   bash scripts/generation_demo.sh                                   # class-conditional divided DiT (the main row)
#   ROW=cond2_divided bash scripts/generation_demo.sh                  # 2 frames given, 6 generated
#   DIT_ARGS="model.net.layout=space_only model.net.tubelet_size=1" ROW=space_only bash scripts/generation_demo.sh
# Stage 1, the reconstructions check and the latent cache are made once and reused by every ROW.
# The recognition model that scores motion is the main job's (`make demo`); it is trained here when missing.
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
start=$(date +%s)
stamp() { echo "   ($(( $(date +%s) - start )) s so far)"; }

echo "== 1/7 building Moving MNIST direction (skipped when present)"
$PY scripts/make_moving_mnist.py --out "$DATA" --variant direction

if [[ ! -f "$CLASSIFIER" ]]; then
  echo "== (no recognition model at $CLASSIFIER: training the main job's divided TimeSformer first)"
  $PY train.py experiment=mmnist_direction_divided hydra.run.dir="$(dirname "$(dirname "$CLASSIFIER")")" test=false \
    num_threads="$THREADS"
fi

echo "== 2/7 stage 1: frame autoencoder -> $AE"
if [[ ! -f "$AE/checkpoints/best.ckpt" ]]; then
  $PY train.py experiment=mmnist_autoencoder hydra.run.dir="$AE" test=false num_threads="$THREADS" ${AE_ARGS:-}
fi
stamp

echo "== 3/7 what stage 1 preserves: reconstructions of the 1000 real test clips, scored like generated clips"
if [[ ! -f "$AE/reconstructions_metrics.json" ]]; then
  $PY scripts/reconstruct_videos.py --autoencoder "$AE/checkpoints/best.ckpt" --videos "$DATA/test_direction.txt" \
    --out "$AE/reconstructions" --grey --threads "$THREADS"
  $PY scripts/evaluate_videos.py --videos "$AE/reconstructions/samples.txt" --reference "$DATA/test_direction.txt" \
    --classifier "$CLASSIFIER" --groups paired accuracy --threads "$THREADS" --out "$AE/reconstructions_metrics.json"
  $PY scripts/evaluate_videos.py --videos "$DATA/test_direction.txt" --classifier "$CLASSIFIER" --groups accuracy \
    --threads "$THREADS" --out "$AE/originals_metrics.json"
fi
stamp

echo "== 4/7 caching the autoencoder's latents of every clip -> $AE/latents"
if [[ ! -f "$AE/latents/test.pt" ]]; then
  $PY scripts/cache_latents.py --autoencoder "$AE/checkpoints/best.ckpt" --num-threads "$THREADS"
fi
stamp

echo "== 5/7 stage 2: video DiT over the cached latents -> $OUT/dit"
rm -rf "$OUT"
$PY train.py experiment=mmnist_dit hydra.run.dir="$OUT/dit" data.root="$AE/latents" \
  model.autoencoder_path="$AE/checkpoints/best.ckpt" num_threads="$THREADS" ${DIT_ARGS:-}
stamp

echo "== 6/7 sampling $NUM_SAMPLES clips ($STEPS DDIM steps, EMA weights, grey like the data) -> $OUT/samples"
$PY scripts/sample_videos.py --ckpt "$OUT/dit/checkpoints/last.ckpt" --num-samples "$NUM_SAMPLES" --steps "$STEPS" \
  --out "$OUT/samples" --grey
stamp

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

echo
echo "generation job ($ROW) finished in $(( $(date +%s) - start )) s"
echo "samples: $OUT/samples (grid.gif); scores: $OUT/samples_metrics.{json,md}; curve: $OUT/motion_curve.png"
