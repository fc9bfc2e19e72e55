# The README's two commands (`make demo`, `make test`) set themselves up on first use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: demo test lint check clean bench

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)  ## a real load run: one room of 200 on the embedded reference server
	$(BIN)/loadtool run scenarios/fanout.yaml

test: $(STAMP)  ## the whole test suite
	$(BIN)/pytest -q

lint: $(STAMP)  ## ruff (lint + format check) and mypy --strict
	$(BIN)/ruff check loadtool tests bench
	$(BIN)/ruff format --check loadtool tests bench
	$(BIN)/mypy --strict loadtool

check: lint test

bench: $(STAMP)  ## side-by-side benchmarks vs Node, Artillery, Locust (bench/README.md; ~35 min)
	$(BIN)/python -m bench all

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis
