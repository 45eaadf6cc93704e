#!/usr/bin/env bash
# The generator asked for a digit and a direction ("a 7 moving NE"), from nothing to scored samples, on the ladder of
# the README's generation section: what stage 1 keeps of digit shape, an image stage that draws digits, and a video
# stage started from it (Video LDM / AnimateDiff: temporal layers at zero output) that learns motion.
#   bash scripts/generation_digits.sh                          # make generation: the moving row, seed 0
#   SEED=1 ROW=digits_seed1 bash scripts/generation_digits.sh  # another seed of the video stage (image stage shared)
#   GUIDANCE=2 ROW=digits bash scripts/generation_digits.sh    # sample the video stage with guidance 2
#   GUIDANCE=direction=2,digit=4 ROW=digits ...                # guidance per label set (the digit given the direction)
#   SCORE_FROM=2 VIDEO_ARGS="model.num_cond_frames=2" ROW=digits_cond2 bash scripts/generation_digits.sh  # 2 given
#   FIRST_FRAME=4 VIDEO_ARGS="model.num_cond_frames=1" ROW=digits_cond1 ...  # from noise, factorized (Emu Video): the
#                                                 # image stage draws frame 1 at guidance 4, the video stage the rest
#   FIRST_FRAME=6 FIRST_FRAME_STAGE=outputs/gen/first_frame ...  # frame 1 drawn by an image stage trained on the
#                                                 # clips' first frames, asked for digit and direction (trained from
#                                                 # IMAGE first when missing: experiment=mmnist_dit_first_frame)
#   SAMPLER=dpmpp_2m VIDEO_STEPS=25 ...          # sample both stages with DPM-Solver++(2M) instead of DDIM
#   SAMPLE_SEED=1 ...                            # other noise (both stages) for the same labels: a held-out draw
#   FRAME_GUIDANCE=2 VIDEO_ARGS="model.num_cond_frames=1 model.cond_frame_dropout=0.1" ...  # guide the given frame
#   IMAGE_BASE=outputs/gen/image IMAGE=outputs/gen/image_5k ...  # the image stage trained 2,500 steps more, started
#                                                 # from IMAGE_BASE's EMA weights (trained first when missing)
#   VARIANT=still ROW=still_cond1 FIRST_FRAME=6 GUIDANCE=6 VIDEO_ARGS="model.num_cond_frames=1" ...  # a digit that
#                                                 # never moves (issue 20's "still" row): asked for its digit only
#   IMAGE=outputs/gen/image_conv IMAGE_ARGS="model.net.conv_stem_depth=2 model.net.final_conv=true" \
#     VIDEO_ARGS="model.net.conv_stem_depth=2 model.net.final_conv=true" ROW=digits_conv bash scripts/generation_digits.sh
# Every step is skipped when its output exists, so an interrupted run is resumed by running it again; each step
# prints the time so far. Scores: outputs/gen/<ROW>/samples_metrics.{json,md}; image stage: outputs/gen/image/.
# The last step writes the result record results/generation_<ROW>.json (docs/generation.md's ladder table; RESULTS_DIR
# puts it elsewhere).
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
SAMPLER=${SAMPLER:-ddim}           # of the samples, both stages: ddim | dpmpp_2m (DPM-Solver++(2M)) | ddpm
SCORE_FROM=${SCORE_FROM:-0}       # first frame scored; k for a video stage given k frames (model.num_cond_frames=k)
FIRST_FRAME=${FIRST_FRAME:-}      # a guidance scale: the image stage draws frame 1 with it (num_cond_frames=1)
FIRST_FRAME_STAGE=${FIRST_FRAME_STAGE:-}  # a run folder: the image stage trained on first frames draws frame 1
if [[ -n $FIRST_FRAME_STAGE && -z $FIRST_FRAME ]]; then
  echo "FIRST_FRAME_STAGE needs FIRST_FRAME (its guidance scale)" >&2; exit 2
fi
case $SAMPLER in ddim|ddpm|dpmpp_2m) ;; *) echo "SAMPLER=$SAMPLER: must be ddim, ddpm or dpmpp_2m" >&2; exit 2 ;; esac
SAMPLE_SEED=${SAMPLE_SEED:-0}     # the samples' noise (sample_videos.py --seed); the labels do not depend on it
[[ $SAMPLE_SEED =~ ^[0-9]+$ ]] || { echo "SAMPLE_SEED=$SAMPLE_SEED: must be a non-negative integer" >&2; exit 2; }
FRAME_GUIDANCE=${FRAME_GUIDANCE:-1}  # guidance over the given frames (model.cond_frame_dropout > 0 runs)
VARIANT=${VARIANT:-direction}     # the video stage's clips: direction (a digit moving one way) | still (never moves)
MOVING=datasets/moving_mnist_direction  # stage 1, its check and the image stage read the moving clips
DATA=datasets/moving_mnist_$VARIANT
AE="$GEN/autoencoder"
LATENTS="$AE/latents_sets"
VIDEO_LATENTS=$LATENTS
variant_args=()                   # what the video stage needs to know of its data
case $VARIANT in
  direction) ;;
  still) VIDEO_LATENTS="$AE/latents_still"  # labelled by digit only; nothing to play backwards
         variant_args=(data.num_classes=10 data.time_reversal=false
                       model.conditioning=[digit] "~model.num_classes.direction") ;;
  *) echo "VARIANT=$VARIANT: must be direction or still" >&2; exit 2 ;;
esac
DIGITS=${DIGITS:-outputs/frame_digit/checkpoints/best.ckpt}
IMAGE=${IMAGE:-$GEN/image}
IMAGE_BASE=${IMAGE_BASE:-}        # an image run that starts the image stage (model.init_from); trained first if missing
OUT="$GEN/$ROW"
start=$(date +%s)
stamp() { echo "   ($(( $(date +%s) - start )) s so far)"; }
# timed DIR CMD...: run a training step and keep its wall time in DIR/seconds.txt for the record
timed() { local dir=$1; shift; local t0; t0=$(date +%s); "$@"; mkdir -p "$dir"; echo $(( $(date +%s) - t0 )) > "$dir/seconds.txt"; }
minutes() { [[ -f "$1/seconds.txt" ]] && awk '{printf "%.1f", $1 / 60}' "$1/seconds.txt"; }
common=(num_threads="$THREADS" model.autoencoder_path="$AE/checkpoints/best.ckpt"
        callbacks.motion_curve.digit_classifier="$DIGITS" callbacks.progress_bar.refresh_rate=50)

echo "== 1/10 building Moving MNIST direction$([[ $VARIANT != direction ]] && echo " and $VARIANT")" \
  "(skipped when present)"
$PY scripts/make_moving_mnist.py --out "$MOVING" --variant direction
[[ $VARIANT != direction ]] && $PY scripts/make_moving_mnist.py --out "$DATA" --variant "$VARIANT"

echo "== 2/10 the per-frame digit classifier that scores digits -> $DIGITS"
if [[ ! -f "$DIGITS" ]]; then
  $PY train.py experiment=mmnist_frame_digit hydra.run.dir="$(dirname "$(dirname "$DIGITS")")" num_threads="$THREADS"
fi
stamp

echo "== 3/10 stage 1: frame autoencoder -> $AE"
if [[ ! -f "$AE/train_metrics.json" ]]; then  # written when training ends; an interrupted run resumes (resume=auto)
  timed "$AE" $PY train.py experiment=mmnist_autoencoder hydra.run.dir="$AE" test=false num_threads="$THREADS"
fi
stamp

echo "== 4/10 what stage 1 keeps of shape: the digit classifier on reconstructions of the 1000 real test clips"
if [[ ! -f "$AE/reconstructions_digit_metrics.json" ]]; then
  $PY scripts/reconstruct_videos.py --autoencoder "$AE/checkpoints/best.ckpt" --videos "$MOVING/test_digit.txt" \
    --out "$AE/reconstructions_digit" --grey --threads "$THREADS"
  $PY scripts/evaluate_videos.py --videos "$AE/reconstructions_digit/samples.txt" --reference "$MOVING/test_digit.txt" \
    --digit-classifier "$DIGITS" --groups paired accuracy --threads "$THREADS" \
    --out "$AE/reconstructions_digit_metrics.json"
  $PY scripts/evaluate_videos.py --videos "$MOVING/test_digit.txt" --digit-classifier "$DIGITS" --groups accuracy \
    --threads "$THREADS" --out "$AE/originals_digit_metrics.json"
fi
REAL="$AE/originals_digit_metrics.json"  # the real row of the record: the video stage's own kind of clip
if [[ $VARIANT != direction ]]; then
  REAL="$AE/originals_${VARIANT}_digit_metrics.json"
  [[ -f $REAL ]] || $PY scripts/evaluate_videos.py --videos "$DATA/test_digit.txt" --digit-classifier "$DIGITS" \
    --groups accuracy --threads "$THREADS" --out "$REAL"
fi
stamp

echo "== 5/10 latents of every clip, with their digit and direction -> $LATENTS$([[ $VARIANT != direction ]] \
  && echo " (and of the $VARIANT clips, with their digit -> $VIDEO_LATENTS)")"
if [[ ! -f "$LATENTS/test.pt" ]]; then
  $PY scripts/cache_latents.py --autoencoder "$AE/checkpoints/best.ckpt" --out "$LATENTS" \
    --label-sets digit direction --num-threads "$THREADS"
fi
if [[ ! -f "$VIDEO_LATENTS/test.pt" ]]; then  # still clips: their digit is their label
  $PY scripts/cache_latents.py --autoencoder "$AE/checkpoints/best.ckpt" --out "$VIDEO_LATENTS" --label-sets digit \
    --num-threads "$THREADS" data.root="$DATA" data.train=train_digit.txt data.val=val_digit.txt \
    data.test=test_digit.txt data.num_classes=10
fi
stamp

echo "== 6/10 image stage: the DiT on single frames, asked for a digit -> $IMAGE"
image_init=()
if [[ -n $IMAGE_BASE ]]; then
  if [[ ! -f "$IMAGE_BASE/train_metrics.json" ]]; then
    timed "$IMAGE_BASE" $PY train.py experiment=mmnist_dit_image hydra.run.dir="$IMAGE_BASE" "${common[@]}" \
      data.root="$LATENTS" ${IMAGE_ARGS:-}
  fi
  stamp
  image_init=(model.init_from="$IMAGE_BASE/checkpoints/last.ckpt" callbacks.motion_curve.every_n_steps=1250)
fi
if [[ ! -f "$IMAGE/train_metrics.json" ]]; then
  timed "$IMAGE" $PY train.py experiment=mmnist_dit_image hydra.run.dir="$IMAGE" "${common[@]}" data.root="$LATENTS" \
    ${IMAGE_ARGS:-} "${image_init[@]}"
fi
# the requested digit at guidance 1-4, NUM_SAMPLES images each (scales already scored are kept)
NUM_SAMPLES=$NUM_SAMPLES STEPS=$STEPS THREADS=$THREADS DIGITS=$DIGITS \
  bash scripts/guidance_sweep.sh "$IMAGE/checkpoints/last.ckpt" "$IMAGE" | tee "$IMAGE/guidance.md"
$PY scripts/plot_curves.py "$IMAGE" --labels image --metric digit_accuracy --x step --target 0.9 --chance 0.1 \
  --title "image stage: digit accuracy of the curve's samples" --out "$IMAGE/curves.png"
FRAME_ONE=$IMAGE  # the run that draws frame 1 from noise (FIRST_FRAME)
FRAME_ONE_NAME=image  # its name in the record
if [[ -n $FIRST_FRAME_STAGE ]]; then  # where a clip starts depends on its direction: a stage asked for both labels
  if [[ ! -f "$FIRST_FRAME_STAGE/train_metrics.json" ]]; then
    timed "$FIRST_FRAME_STAGE" $PY train.py experiment=mmnist_dit_first_frame hydra.run.dir="$FIRST_FRAME_STAGE" \
      "${common[@]}" data.root="$LATENTS" model.init_from="$IMAGE/checkpoints/last.ckpt"
  fi
  FRAME_ONE=$FIRST_FRAME_STAGE
  FRAME_ONE_NAME=first-frame
fi
stamp

echo "== 7/10 video stage on $VARIANT clips: started from the image stage, asked for $([[ $VARIANT == direction ]] \
  && echo "digit and direction" || echo "the digit") -> $OUT/dit"
if [[ ! -f "$OUT/dit/train_metrics.json" ]]; then
  timed "$OUT/dit" $PY train.py experiment=mmnist_dit_digits hydra.run.dir="$OUT/dit" seed="$SEED" \
    model.init_from="$IMAGE/checkpoints/last.ckpt" "${common[@]}" data.root="$VIDEO_LATENTS" "${variant_args[@]}" \
    ${VIDEO_ARGS:-}
fi
stamp

grid=$([[ $VARIANT == direction ]] && echo "digit x direction" || echo "digit")
echo "== 8/10 sampling $NUM_SAMPLES clips, every $grid equally often (guidance $GUIDANCE) -> $OUT/samples"
first_frame=()
[[ -n $FIRST_FRAME ]] && first_frame=(--first-frame-from "$FRAME_ONE/checkpoints/last.ckpt" --first-frame-guidance "$FIRST_FRAME")
$PY scripts/sample_videos.py --ckpt "$OUT/dit/checkpoints/last.ckpt" --num-samples "$NUM_SAMPLES" --steps "$VIDEO_STEPS" \
  --sampler "$SAMPLER" --guidance-scale "$GUIDANCE" --frame-guidance "$FRAME_GUIDANCE" --out "$OUT/samples" --grey \
  --seed "$SAMPLE_SEED" "${first_frame[@]}"
stamp

echo "== 9/10 scoring: motion against the directions (moving clips), digits and identity against the digits"
$PY scripts/evaluate_videos.py --videos "$OUT/samples/samples.txt" --digit-labels "$OUT/samples/samples_digit.txt" \
  --digit-classifier "$DIGITS" --groups temporal accuracy --start-frame "$SCORE_FROM" --threads "$THREADS" \
  --out "$OUT/samples_metrics.json"
curve_metrics=(digit_accuracy identity_consistency)
[[ $VARIANT == direction ]] && curve_metrics=(flow_direction_accuracy "${curve_metrics[@]}")
$PY scripts/plot_curves.py "$OUT/dit" --labels "$ROW" --metric "${curve_metrics[@]}" --x step --target 0.9 \
  --title "video stage ($ROW): 80 samples a point" --out "$OUT/curves.png"

echo "== 10/10 the result record -> results/generation_$ROW.json"
IMAGE_G=${FIRST_FRAME:-$GUIDANCE}  # the image stage's row: the guidance that drew frame 1, else the video stage's
IMAGE_G=$([[ -f "$IMAGE/guidance_$IMAGE_G/samples_metrics.json" ]] && echo "$IMAGE_G" || echo 4)
values=()
for pair in "stage 1=$AE" "image stage=$IMAGE" "video stage=$OUT/dit"; do
  m=$(minutes "${pair#*=}" || true)
  if [[ ${pair%%=*} == "image stage" && -n $IMAGE_BASE && -n "$m" ]]; then  # both image runs, when both were timed
    if [[ -f "$IMAGE_BASE/seconds.txt" ]]; then
      m=$(awk '{s += $1} END {printf "%.1f", s / 60}' "$IMAGE_BASE/seconds.txt" "$IMAGE/seconds.txt")
    else
      m=  # the base run was trained outside this script: its time is unknown, so no minutes are written
    fi
  fi
  [[ -n "$m" ]] && values+=(--value "${pair%%=*}:minutes=$m")
done
target="≥ 90 % / ≥ 85 % / ≥ 95 %"
note="$NUM_SAMPLES clips (every $grid equally often) or images from the EMA weights."
title="The generator asked for a digit and a direction ($ROW): the ladder, rung by rung"
real_label="real test clips (1,000)"
if [[ $VARIANT == still ]]; then  # issue 20's row "still, from noise"
  target="≥ 90 % / ≥ 90 % / –"
  title="The generator asked for a digit that never moves ($ROW, still clips): the ladder, rung by rung"
  real_label="real still test clips (1,000)"
  note="$note Still clips: the video stage was trained on Moving MNIST still (one digit that never moves), asked for its digit only, so no motion is asked for or scored; stage 1 and the image stage are the moving rows' (their rows score moving clips and single frames)."
fi
if [[ $SCORE_FROM != 0 ]]; then  # issue 20's row "moving, 2 frames given"
  target="≥ 95 % / ≥ 90 % / ≥ 98 %"
  note="$NUM_SAMPLES clips from the EMA weights, each continuing a real test clip whose first $SCORE_FROM frames are given (with its digit and direction, so the labels follow the test split, not a balanced grid); the video stage's scores count only the generated frames (evaluate_videos.py --start-frame $SCORE_FROM)."
fi
if [[ -n $FIRST_FRAME ]]; then  # every frame generated: issue 20's row "moving, from noise"
  scale=$([[ -n $FIRST_FRAME_STAGE ]] && echo "guidance" || echo "digit guidance")
  note="$note Factorized (Emu Video, arXiv 2311.10709): the $FRAME_ONE_NAME stage drew each clip's first frame from noise at $scale $FIRST_FRAME, the video stage (given one frame) the other frames; all frames scored."
  if [[ -n $FIRST_FRAME_STAGE ]]; then
    note="$note Frame 1 came from $FIRST_FRAME_STAGE (experiment=mmnist_dit_first_frame: the image stage trained on the training clips' first frames, asked for digit and direction, at guidance $FIRST_FRAME over both$([[ -f "$FIRST_FRAME_STAGE/seconds.txt" ]] && echo "; $(minutes "$FIRST_FRAME_STAGE") min of training, not in the image stage's minutes"))."
  fi
fi
SAMPLER_NAME=$(case $SAMPLER in ddim) echo DDIM;; dpmpp_2m) echo "DPM-Solver++(2M)";; *) echo "$SAMPLER";; esac)
$PY scripts/records.py write "generation_$ROW" --results-dir "${RESULTS_DIR:-results}" \
  --title "$title" \
  --command "$([[ $VARIANT != direction ]] && echo "VARIANT=$VARIANT ")$([[ -n ${SCALES:-} ]] && echo "SCALES=$SCALES ")$([[ -n $IMAGE_BASE ]] && echo "IMAGE_BASE=$IMAGE_BASE ")$([[ $IMAGE != "$GEN/image" ]] && echo "IMAGE=$IMAGE ")GUIDANCE=$GUIDANCE VIDEO_STEPS=$VIDEO_STEPS VIDEO_ARGS=\"${VIDEO_ARGS:-}\" IMAGE_ARGS=\"${IMAGE_ARGS:-}\" ROW=$ROW SEED=$SEED$([[ $SCORE_FROM != 0 ]] && echo " SCORE_FROM=$SCORE_FROM")$([[ -n $FIRST_FRAME ]] && echo " FIRST_FRAME=$FIRST_FRAME")$([[ -n $FIRST_FRAME_STAGE ]] && echo " FIRST_FRAME_STAGE=$FIRST_FRAME_STAGE")$([[ $FRAME_GUIDANCE != 1 ]] && echo " FRAME_GUIDANCE=$FRAME_GUIDANCE")$([[ $SAMPLER != ddim ]] && echo " SAMPLER=$SAMPLER")$([[ $SAMPLE_SEED != 0 ]] && echo " SAMPLE_SEED=$SAMPLE_SEED") bash scripts/generation_digits.sh" \
  --seeds "$SEED" --overrides ${VIDEO_ARGS:-} \
  --row "real test clips=$REAL" --row "stage 1=$AE/reconstructions_digit_metrics.json" \
  --row "image stage=$IMAGE/guidance_$IMAGE_G/samples_metrics.json" --row "video stage=$OUT/samples_metrics.json" \
  --text "real test clips:label=$real_label" \
  --text "stage 1:label=1. stage-1 reconstructions of the real test clips" --text "stage 1:target=≥ 95 %" \
  --text "image stage:label=2. image stage, $NUM_SAMPLES images, guidance $IMAGE_G" --text "image stage:target=≥ 90 %" \
  --text "video stage:label=3. video stage ($ROW${VIDEO_ARGS:+: $VIDEO_ARGS}), guidance $GUIDANCE$([[ $FRAME_GUIDANCE != 1 ]] && echo ", frame guidance $FRAME_GUIDANCE"), $VIDEO_STEPS $SAMPLER_NAME steps${FIRST_FRAME:+, frame 1 by the $FRAME_ONE_NAME stage at guidance $FIRST_FRAME}$([[ $SAMPLE_SEED != 0 ]] && echo ", sampler seed $SAMPLE_SEED")" \
  --text "video stage:target=$target" "${values[@]}" --note "$note" \
  --note "minutes: training of each stage that ran in this invocation (stage 1 without its check)."

echo
echo "generation ($ROW) finished in $(( $(date +%s) - start )) s"
echo "samples: $OUT/samples (grid.gif: one row per digit$([[ $VARIANT == direction ]] && echo ", one column per direction")); scores: $OUT/samples_metrics.md"
