# Two commands on a fresh machine: `make run` and `make test`. Both make the virtual environment first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# torch first, pinned: on this project's machines that version is a local CPU build (seconds, no download).
TORCH ?= torch==2.13.0

.PHONY: run demo test bench

$(VENV)/.installed: pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q "$(TORCH)"
	$(BIN)/pip install -q -e '.[test]'
	touch $@

run: $(VENV)/.installed
	$(BIN)/python -m bot

demo: $(VENV)/.installed
	mkdir -p data
	$(BIN)/python -m engine render tests/assets/coffee.jpg --preset $${RESTYLE_PRESET:-tiny} --mode canny \
		--prompt "a cup of tea, watercolour" -o data/demo.png

test: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest -q

bench: $(VENV)/.installed
	$(BIN)/python bench/engine.py
	$(BIN)/python bench/ack.py
