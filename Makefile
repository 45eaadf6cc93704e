# Two commands on a fresh machine:  `make demo`  and  `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test test-slow env docs clean-data generation generation-digits generation-table claims claims-smoke

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

# A generator asked for a digit and a direction: docs/generation.md's ladder (image stage, then the video stage started from it).
generation-digits: $(STAMP)
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
	$(PY) -m pytest -m "not slow" -q

test-slow: $(STAMP)
	$(PY) -m pytest -m slow -q
