# The README's two commands (`make demo`, `make test`) set themselves up on first use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: demo test lint check clean

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
	$(BIN)/ruff check loadtool tests
	$(BIN)/ruff format --check loadtool tests
	$(BIN)/mypy --strict loadtool

check: lint test

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis
