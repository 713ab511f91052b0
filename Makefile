# make test / make demo bootstrap their own virtual environment in .venv.
# torch==2.13.0 (a CPU wheel on our machines) is installed only when the venv has no torch yet,
# so a user who brings their own torch (e.g. a CUDA build) keeps it.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: test demo venv clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q "torch==2.13.0"
	$(PY) -m pip install -q -e ".[dev]"
	@touch $(STAMP)

test: $(STAMP)
	$(VENV)/bin/ruff check soo_interp tests benchmarks
	$(PY) -m pytest -q tests

demo: $(STAMP)
	$(VENV)/bin/soo-interp demo --out runs/demo --overwrite

clean:
	rm -rf runs/demo .pytest_cache
