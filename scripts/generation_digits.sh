#!/usr/bin/env bash
# The generator asked for a digit and a direction ("a 7 moving NE"), from nothing to scored samples, on the ladder of
# the README's generation section: what stage 1 keeps of digit shape, an image stage that draws digits, and a video
# stage started from it (Video LDM / AnimateDiff: temporal layers at zero output) that learns motion.
#   bash scripts/generation_digits.sh                          # make generation: the moving row, seed 0
#   SEED=1 ROW=digits_seed1 bash scripts/generation_digits.sh  # another seed of the video stage (image stage shared)
#   GUIDANCE=2 ROW=digits bash scripts/generation_digits.sh    # sample the video stage with guidance 2
#   IMAGE=outputs/gen/image_conv IMAGE_ARGS="model.net.conv_stem_depth=2 model.net.final_conv=true" \
#     VIDEO_ARGS="model.net.conv_stem_depth=2 model.net.final_conv=true" ROW=digits_conv bash scripts/generation_digits.sh
# Every step is skipped when its output exists, so an interrupted run is resumed by running it again; each step
# prints the time so far. Scores: outputs/gen/<ROW>/samples_metrics.{json,md}; image stage: outputs/gen/image/.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
GEN=${GEN:-outputs/gen}
ROW=${ROW:-digits}
SEED=${SEED:-0}
THREADS=${THREADS:-2}
NUM_SAMPLES=${NUM_SAMPLES:-256}
STEPS=${STEPS:-50}
GUIDANCE=${GUIDANCE:-1}           # of the video stage's samples; the image stage is scored at 1-4
VIDEO_STEPS=${VIDEO_STEPS:-$STEPS}  # sampler steps of the video stage's samples
DATA=datasets/moving_mnist_direction
AE="$GEN/autoencoder"
LATENTS="$AE/latents_sets"
DIGITS=${DIGITS:-outputs/frame_digit/checkpoints/best.ckpt}
IMAGE=${IMAGE:-$GEN/image}
OUT="$GEN/$ROW"
start=$(date +%s)
stamp() { echo "   ($(( $(date +%s) - start )) s so far)"; }
common=(num_threads="$THREADS" data.root="$LATENTS" model.autoencoder_path="$AE/checkpoints/best.ckpt"
        callbacks.motion_curve.digit_classifier="$DIGITS" callbacks.progress_bar.refresh_rate=50)

echo "== 1/9 building Moving MNIST direction (skipped when present)"
$PY scripts/make_moving_mnist.py --out "$DATA" --variant direction

echo "== 2/9 the per-frame digit classifier that scores digits -> $DIGITS"
if [[ ! -f "$DIGITS" ]]; then
  $PY train.py experiment=mmnist_frame_digit hydra.run.dir="$(dirname "$(dirname "$DIGITS")")" num_threads="$THREADS"
fi
stamp

echo "== 3/9 stage 1: frame autoencoder -> $AE"
if [[ ! -f "$AE/checkpoints/best.ckpt" ]]; then
  $PY train.py experiment=mmnist_autoencoder hydra.run.dir="$AE" test=false num_threads="$THREADS"
fi
stamp

echo "== 4/9 what stage 1 keeps of shape: the digit classifier on reconstructions of the 1000 real test clips"
if [[ ! -f "$AE/reconstructions_digit_metrics.json" ]]; then
  $PY scripts/reconstruct_videos.py --autoencoder "$AE/checkpoints/best.ckpt" --videos "$DATA/test_digit.txt" \
    --out "$AE/reconstructions_digit" --grey --threads "$THREADS"
  $PY scripts/evaluate_videos.py --videos "$AE/reconstructions_digit/samples.txt" --reference "$DATA/test_digit.txt" \
    --digit-classifier "$DIGITS" --groups paired accuracy --threads "$THREADS" \
    --out "$AE/reconstructions_digit_metrics.json"
  $PY scripts/evaluate_videos.py --videos "$DATA/test_digit.txt" --digit-classifier "$DIGITS" --groups accuracy \
    --threads "$THREADS" --out "$AE/originals_digit_metrics.json"
fi
stamp

echo "== 5/9 latents of every clip, with their digit and direction -> $LATENTS"
if [[ ! -f "$LATENTS/test.pt" ]]; then
  $PY scripts/cache_latents.py --autoencoder "$AE/checkpoints/best.ckpt" --out "$LATENTS" \
    --label-sets digit direction --num-threads "$THREADS"
fi
stamp

echo "== 6/9 image stage: the DiT on single frames, asked for a digit -> $IMAGE"
if [[ ! -f "$IMAGE/checkpoints/last.ckpt" ]]; then
  $PY train.py experiment=mmnist_dit_image hydra.run.dir="$IMAGE" "${common[@]}" ${IMAGE_ARGS:-}
fi
# the requested digit at guidance 1-4, NUM_SAMPLES images each (scales already scored are kept)
NUM_SAMPLES=$NUM_SAMPLES STEPS=$STEPS THREADS=$THREADS DIGITS=$DIGITS \
  bash scripts/guidance_sweep.sh "$IMAGE/checkpoints/last.ckpt" "$IMAGE" | tee "$IMAGE/guidance.md"
$PY scripts/plot_curves.py "$IMAGE" --labels image --metric digit_accuracy --x step --target 0.9 --chance 0.1 \
  --title "image stage: digit accuracy of the curve's samples" --out "$IMAGE/curves.png"
stamp

echo "== 7/9 video stage: started from the image stage, asked for digit and direction -> $OUT/dit"
if [[ ! -f "$OUT/dit/checkpoints/last.ckpt" ]]; then
  $PY train.py experiment=mmnist_dit_digits hydra.run.dir="$OUT/dit" seed="$SEED" \
    model.init_from="$IMAGE/checkpoints/last.ckpt" "${common[@]}" ${VIDEO_ARGS:-}
fi
stamp

echo "== 8/9 sampling $NUM_SAMPLES clips, every digit x direction equally often (guidance $GUIDANCE) -> $OUT/samples"
$PY scripts/sample_videos.py --ckpt "$OUT/dit/checkpoints/last.ckpt" --num-samples "$NUM_SAMPLES" --steps "$VIDEO_STEPS" \
  --guidance-scale "$GUIDANCE" --out "$OUT/samples" --grey
stamp

echo "== 9/9 scoring: motion against the directions, digits and identity against the digits"
$PY scripts/evaluate_videos.py --videos "$OUT/samples/samples.txt" --digit-labels "$OUT/samples/samples_digit.txt" \
  --digit-classifier "$DIGITS" --groups temporal accuracy --threads "$THREADS" --out "$OUT/samples_metrics.json"
$PY scripts/plot_curves.py "$OUT/dit" --labels "$ROW" --metric flow_direction_accuracy digit_accuracy \
  identity_consistency --x step --target 0.9 --title "video stage ($ROW): 80 samples a point" --out "$OUT/curves.png"

echo
echo "generation ($ROW) finished in $(( $(date +%s) - start )) s"
echo "samples: $OUT/samples (grid.gif: one row per digit, one column per direction); scores: $OUT/samples_metrics.md"
