# Two commands on a fresh machine:  `make demo`  and  `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test test-slow env docs clean-data generation generation-digits generation-still generation-table claims claims-smoke

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install -e ".[dev]"
	touch $(STAMP)

env: $(STAMP)

demo: $(STAMP)
	bash scripts/demo.sh

# The generation job (after `make demo`): stage 1, latent cache, the class-conditional divided DiT, scored samples.
generation: $(STAMP)
	bash scripts/generation_demo.sh

# A generator asked for a digit and a direction, from nothing: docs/generation.md's within-budget recipe (an image stage
# of 2,500 + 2,500 steps, fine-tuned 1,500 steps on first frames asked for digit and direction, draws frame 1; a video
# stage of 1,500 steps given it draws the rest at direction guidance 2, then digit guidance 4; both sampled with 25
# DPM-Solver++(2M) steps). Another seed of the video stage (the image stages are shared): `make generation-digits
# GEN_SEED=1`. As measured before, at digit guidance 6: `GEN_GUIDANCE=direction=2,digit=6
# GEN_ROW=digits_tdir_cond1_all_ff_dpm25`; with 50 DDIM steps too: `... GEN_SAMPLER=ddim GEN_STEPS=50
# GEN_ROW=digits_tdir_cond1_all_ff`.
GEN_SEED   ?= 0
GEN_SUFFIX  = $(if $(filter-out 0,$(GEN_SEED)),_seed$(GEN_SEED))
# What every row of the recipe shares: the image stages, the seed, frame 1 drawn at guidance 6.
GEN_RECIPE  = SCALES=4 IMAGE_BASE=outputs/gen/image IMAGE=outputs/gen/image_5k SEED=$(GEN_SEED) FIRST_FRAME=6
GEN_ROW    ?= digits_tdir_cond1_all_ff_dpm25_dg4$(GEN_SUFFIX)
GEN_SAMPLER ?= dpmpp_2m
GEN_STEPS  ?= 25
GEN_GUIDANCE ?= direction=2,digit=4
GEN_VIDEO_ARGS := trainer.max_steps=1500 model.new_label_init=normal model.net.temporal_rope=true \
                  model.net.temporal_label_sets=[direction] model.trainable=all model.num_cond_frames=1
generation-digits: $(STAMP)
	$(GEN_RECIPE) FIRST_FRAME_STAGE=outputs/gen/first_frame SAMPLER=$(GEN_SAMPLER) VIDEO_STEPS=$(GEN_STEPS) ROW=$(GEN_ROW) \
	  GUIDANCE=$(GEN_GUIDANCE) VIDEO_ARGS="$(GEN_VIDEO_ARGS)" bash scripts/generation_digits.sh

# The same recipe on still clips (a digit that never moves, asked for by its digit only): issue 20's "still" row. It
# shares stage 1 and the image stage with generation-digits (made first when missing).
STILL_ROW  ?= still_cond1_all$(GEN_SUFFIX)
STILL_VIDEO_ARGS := trainer.max_steps=1500 model.net.temporal_rope=true model.trainable=all model.num_cond_frames=1
generation-still: $(STAMP)
	VARIANT=still $(GEN_RECIPE) VIDEO_STEPS=50 ROW=$(STILL_ROW) GUIDANCE=6 VIDEO_ARGS="$(STILL_VIDEO_ARGS)" \
	  bash scripts/generation_digits.sh

# Every row of the generation table of docs/generation.md (two at a time, one thread each).
generation-table: $(STAMP)
	bash scripts/generation_rows.sh

# The five coherence claims (scripts/claims.py): every run they need, then claims.md with 95 % CIs and verdicts.
# Resumable: rerun after an interruption. After `make generation-table` and scripts/coherence_ablation.sh, whose
# stage 1 and moving rows it reuses.
claims: $(STAMP)
	$(PY) scripts/claims.py --budget full --reuse-gen outputs/gen --reuse direction_divided=outputs/demo/divided

claims-smoke: $(STAMP)
	$(PY) scripts/claims.py --budget smoke

# Rewrite every results table of README.md and docs/ from the records in results/.
docs: $(STAMP)
	$(PY) scripts/render_docs.py

test: $(STAMP)
	$(PY) -m pytest -m "not slow" -q -n auto

test-slow: $(STAMP)
	$(PY) -m pytest -m slow -q
