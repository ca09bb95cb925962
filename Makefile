# One command sets up and runs the main job; one sets up and runs the tests.
#   make demo   - install, ingest docs/ into the "docs" namespace, open the terminal chat
#   make test   - install, then lint, type-check, import contracts and the test suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# CPU build of torch: pip finds this version on the project's machines; elsewhere set
# TORCH_SPEC (and PIP_EXTRA_INDEX_URL) to a CPU wheel to avoid a multi-GB CUDA build.
TORCH_SPEC ?= torch==2.13.0
STAMP := $(VENV)/.installed

.PHONY: install demo chat test lint typecheck contracts pytest bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet "$(TORCH_SPEC)"
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	HF_HUB_OFFLINE=1 $(BIN)/lorekeeper db upgrade
	HF_HUB_OFFLINE=1 $(BIN)/lorekeeper demo

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

contracts: $(STAMP)
	$(BIN)/lint-imports

pytest: $(STAMP)
	HF_HUB_OFFLINE=1 $(BIN)/pytest

test: lint typecheck contracts pytest

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
