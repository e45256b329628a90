# mini-o3-lite: `make run` executes every notebook (tiny preset), `make test` runs the tests.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PRESET ?= tiny

# Nothing downloads at run time: models, tokenizers and data are built or read locally.
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export HF_DATASETS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: setup run test lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(STAMP)

setup: $(STAMP)

run: setup  ## execute every notebook in order with papermill (outputs in runs/<preset>/notebooks/)
	$(BIN)/mini-o3-lite run --preset $(PRESET)

test: setup  ## unit tests, then every notebook executed by nbval
	$(BIN)/python -m pytest tests notebooks --nbval-lax -p no:cacheprovider

lint: setup
	$(BIN)/ruff check .

bench: setup
	@for b in benchmarks/*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf runs .pytest_cache

# verl's environment beside the kit's: verl pins transformers < 5.11, the kit needs >= 5.24 (tests/verl/requirements.txt).
VERL_VENV  := .venv-verl
VERL_STAMP := $(VERL_VENV)/.installed
.PHONY: test-verl

$(VERL_STAMP): tests/verl/requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VERL_VENV)
	$(VERL_VENV)/bin/pip install --quiet --upgrade pip
	$(VERL_VENV)/bin/pip install --quiet -r tests/verl/requirements.txt
	$(VERL_VENV)/bin/pip install --quiet --no-deps -e . llamafactory==0.9.5 trl==0.24.0
	touch $(VERL_STAMP)

test-verl: $(VERL_STAMP)  ## the verl plugin and the scale-out exports against verl's and LLaMA-Factory's own code (CPU)
	$(VERL_VENV)/bin/python -m pytest tests/verl -p no:cacheprovider
