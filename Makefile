# Two entry points (README): `make demo` and `make test`. Both create .venv on first use.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.geomkit-installed
SAMPLE := samples/minilm_kjv.h5
DEMO_DIR := demo-output

.PHONY: demo test test-slow install clean

install: $(STAMP)

# torch is pinned to the CPU build first: an unpinned torch pulls several GB of CUDA packages.
# Pure Python: nothing is compiled at install.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	mkdir -p $(DEMO_DIR)
	$(BIN)/geomkit info $(SAMPLE) --scan --format table
	$(BIN)/geomkit report $(SAMPLE) --vs samples/mpnet_kjv.h5 -o $(DEMO_DIR)/report.html --json $(DEMO_DIR)/report.json
	@echo "HTML report: $(abspath $(DEMO_DIR))/report.html"

# the whole suite but the slow-marked tests (the full fuzz run: make test-slow, run by CI)
test: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow" --durations=15

test-slow: $(STAMP)
	$(BIN)/python -m pytest -q -m slow --durations=15

clean:
	rm -rf $(VENV) $(DEMO_DIR)
