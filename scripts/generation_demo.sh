#!/usr/bin/env bash
# The generation job: train the per-frame autoencoder (stage 1), cache its latents of every clip, train the video DiT
# over them (stage 2), sample clips of every direction, and score them (direction accuracy by the recognition model,
# temporal consistency).
#   scripts/generation_demo.sh                       # everything, on CPU
#   NUM_SAMPLES=256 STEPS=100 scripts/generation_demo.sh
#   DIT_ARGS="model.net.layout=space_only" OUT=outputs/gen_space_only scripts/generation_demo.sh
# The recognition model that scores the samples is the main job's (scripts/demo.sh); it is trained here when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
OUT=${OUT:-outputs/gen}
NUM_SAMPLES=${NUM_SAMPLES:-64}
STEPS=${STEPS:-50}
CLASSIFIER=${CLASSIFIER:-outputs/demo/divided/checkpoints/best.ckpt}
start=$(date +%s)

echo "== 1/6 building Moving MNIST direction (skipped when present)"
$PY scripts/make_moving_mnist.py --out datasets/moving_mnist_direction --variant direction

echo "== 2/6 stage 1: frame autoencoder -> $OUT/autoencoder"
if [[ ! -f "$OUT/autoencoder/checkpoints/best.ckpt" ]]; then
  $PY train.py experiment=mmnist_autoencoder hydra.run.dir="$OUT/autoencoder" test=false ${AE_ARGS:-}
fi

echo "== 3/6 caching the autoencoder's latents of every clip -> $OUT/autoencoder/latents"
if [[ ! -f "$OUT/autoencoder/latents/test.pt" ]]; then
  $PY scripts/cache_latents.py --autoencoder "$OUT/autoencoder/checkpoints/best.ckpt"
fi

echo "== 4/6 stage 2: video DiT over the cached latents -> $OUT/dit"
rm -rf "$OUT/dit"
$PY train.py experiment=mmnist_dit hydra.run.dir="$OUT/dit" data=mmnist_latents \
  data.root="$OUT/autoencoder/latents" model.autoencoder_path="$OUT/autoencoder/checkpoints/best.ckpt" ${DIT_ARGS:-}

echo "== 5/6 sampling $NUM_SAMPLES clips ($STEPS DDIM steps, EMA weights, grey like the data) -> $OUT/samples"
rm -rf "$OUT/samples"
$PY scripts/sample_videos.py --ckpt "$OUT/dit/checkpoints/best.ckpt" --num-samples "$NUM_SAMPLES" \
  --steps "$STEPS" --out "$OUT/samples" --grey

echo "== 6/6 scoring the samples"
if [[ ! -f "$CLASSIFIER" ]]; then
  echo "   (no recognition model at $CLASSIFIER: training the main job's divided TimeSformer first)"
  $PY train.py experiment=mmnist_direction_divided hydra.run.dir="$(dirname "$(dirname "$CLASSIFIER")")" test=false
fi
$PY scripts/evaluate_videos.py --videos "$OUT/samples/samples.txt" --classifier "$CLASSIFIER" \
  --out "$OUT/samples_metrics.json"

echo
echo "generation job finished in $(( $(date +%s) - start )) s"
echo "samples: $OUT/samples (grid.gif); scores: $OUT/samples_metrics.{json,md}"
