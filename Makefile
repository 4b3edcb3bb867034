# Each target sets itself up on a fresh machine: `.venv` is created and the project installed
# (editable, with the dev extra) the first time, and again whenever pyproject.toml changes.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: venv demo test test-all lint bench gpu-check clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

.venv: $(STAMP)
venv: $(STAMP)

demo: .venv
	$(BIN)/python scripts/train_then_diagnose.py --out runs/demo --steps 450  # a fixed length: the same story on any machine load

lint: .venv
	$(BIN)/ruff check .

test: .venv lint
	$(BIN)/python -m pytest -q

test-all: .venv
	$(BIN)/python -m pytest -q -m "slow or not slow"

bench: .venv
	$(BIN)/python benchmarks/step_overhead.py
	$(BIN)/python benchmarks/step_cost.py
	$(BIN)/python benchmarks/probes.py
	$(BIN)/python benchmarks/corruptions.py
	if $(BIN)/python -c "import lightly" 2>/dev/null; then $(BIN)/python benchmarks/vs_lightly.py; \
	else echo "vs_lightly skipped: lightly is not installed (pip install -e '.[bench]')"; fi

# the GPU check (issue 17): on a GPU machine `make gpu-check`; on the CPU `make gpu-check GPU_CHECK_ARGS=--quick`
gpu-check: .venv
	bash benchmarks/gpu_check.sh $(GPU_CHECK_ARGS)

clean:
	rm -rf runs .pytest_cache .ruff_cache build *.egg-info
