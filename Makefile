# Every target bootstraps .venv/ from pyproject.toml first, so a fresh clone needs only python3.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test typecheck lint protos bench clean

$(STAMP): pyproject.toml benchmarks/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	$(BIN)/pip install --quiet -e benchmarks/  # development tools: securecalc bench, latency
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/securecalc demo

# Two workers; the tests that assert time bounds run one at a time on one of them (see
# tests/conftest.py).
test: typecheck
	$(BIN)/python -m pytest -q -n 2 --dist loadgroup

typecheck: $(STAMP)
	$(BIN)/mypy

lint: $(STAMP)
	$(BIN)/ruff check .

protos: $(STAMP)
	$(BIN)/python protos/generate.py

bench: $(STAMP)
	$(BIN)/securecalc bench --quick

clean:
	rm -rf $(VENV) build *.egg-info
