#!/usr/bin/env bash
# The noise-prior x layout table of the README: trains stage 2 for every (layout, noise_prior) pair on the cached
# latents of the stage-1 run, samples 128 clips from each, and scores them with scripts/evaluate_videos.py.
#   bash scripts/coherence_ablation.sh                 # needs outputs/gen/autoencoder (scripts/generation_demo.sh)
#   LAYOUTS="divided joint" PRIORS="iid progressive" JOBS=2 bash scripts/coherence_ablation.sh
# Runs go to outputs/gen/dit_<layout>_<prior>/; the table is printed by scripts/generation_table.py.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
AE=${AE:-outputs/gen/autoencoder}
CLASSIFIER=${CLASSIFIER:-outputs/demo/divided/checkpoints/best.ckpt}
LAYOUTS=${LAYOUTS:-divided space_only}
PRIORS=${PRIORS:-iid mixed progressive}
NUM_SAMPLES=${NUM_SAMPLES:-128}
JOBS=${JOBS:-2}   # runs at once, one torch thread each

run_one() {
  local layout=$1 prior=$2 out=outputs/gen/dit_$1_$2
  if [[ ! -f $out/train_metrics.json ]]; then
    $PY train.py experiment=mmnist_dit hydra.run.dir="$out" data=mmnist_latents data.root="$AE/latents" \
      model.autoencoder_path="$AE/checkpoints/best.ckpt" model.net.layout="$layout" model.noise_prior="$prior" \
      num_threads=1 callbacks.progress_bar.refresh_rate=50 > "$out.log" 2>&1
  fi
  $PY scripts/sample_videos.py --ckpt "$out/checkpoints/best.ckpt" --num-samples "$NUM_SAMPLES" --steps 50 --grey \
    --out "$out/samples" >> "$out.log" 2>&1
  $PY scripts/evaluate_videos.py --videos "$out/samples/samples.txt" --classifier "$CLASSIFIER" --threads 1 \
    --groups temporal accuracy --out "$out/samples_metrics.json" >> "$out.log" 2>&1
  echo "done: $out"
}

mkdir -p outputs/gen
for layout in $LAYOUTS; do
  for prior in $PRIORS; do
    while (( $(jobs -rp | wc -l) >= JOBS )); do sleep 5; done
    run_one "$layout" "$prior" &
  done
done
wait
$PY scripts/generation_table.py outputs/gen/dit_*/samples_metrics.json
