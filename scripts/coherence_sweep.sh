#!/usr/bin/env bash
# The layout x noise-prior ablation as one Hydra multirun: every (layout, prior) stage-2 run trains, then samples and
# scores itself (callbacks.score_samples), each in its own folder of the sweep; then the seed spread and the table.
#   CLASSIFIER=outputs/demo/divided/checkpoints/best.ckpt bash scripts/coherence_sweep.sh
#   PRIORS=iid,progressive SEEDS=0,1,2 OUT=outputs/gen/sweep bash scripts/coherence_sweep.sh
#   EXPERIMENTS=mmnist_dit PRIORS=iid SEEDS=1,2 OUT=outputs/gen/seeds bash scripts/coherence_sweep.sh  # seed spread
# Needs the generation job's stage 1 and latent cache (make generation). The table of docs/generation.md was measured with
# scripts/coherence_ablation.sh (the same configs, one run at a time, its iid rows shared with the generation table);
# this is the form that scales to a cluster: add hydra/launcher=slurm (docs/scaling.md).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
AE=${AE:-outputs/gen/autoencoder}
OUT=${OUT:-outputs/gen/sweep}
EXPERIMENTS=${EXPERIMENTS:-mmnist_dit,mmnist_dit_space_only}  # the layouts: divided, space_only
PRIORS=${PRIORS:-iid,mixed,progressive,shared}
SEEDS=${SEEDS:-0}
CLASSIFIER=${CLASSIFIER:-outputs/demo/divided/checkpoints/best.ckpt}

$PY train.py -m experiment="$EXPERIMENTS" model.noise_prior="$PRIORS" seed="$SEEDS" \
  data.root="$AE/latents" model.autoencoder_path="$AE/checkpoints/best.ckpt" \
  callbacks.score_samples.num_samples=256 callbacks.score_samples.steps=50 \
  "callbacks.score_samples.classifier='$CLASSIFIER'" \
  callbacks.progress_bar.refresh_rate=50 hydra.sweep.dir="$OUT" ${DIT_ARGS:-}
$PY scripts/summarize_sweep.py "$OUT" --metric flow_direction_accuracy
$PY scripts/generation_table.py "$OUT"/*/samples_metrics.json
