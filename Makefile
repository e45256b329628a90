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
	$(BIN)/python -m pytest tests notebooks --nbval-lax -p no:cacheprovider --durations=15

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

# A reader's session in a real browser (tests/browser): JupyterLab runs notebook 07, headless Chromium picks a
# question in its trajectory browser and moves the turn slider. Minutes long, so not part of `make test`.
BROWSER_STAMP := $(VENV)/.browser-installed
.PHONY: test-browser

$(BROWSER_STAMP): $(STAMP) tests/browser/requirements.txt
	$(BIN)/pip install --quiet -r tests/browser/requirements.txt
	touch $(BROWSER_STAMP)

test-browser: setup $(BROWSER_STAMP)  ## notebook 07's widget driven in headless Chromium (Debian's chromium, chromium-driver)
	@for f in /usr/bin/chromium /usr/bin/chromedriver; do test -x $$f || { \
	  echo "make test-browser: $$f is missing; install Debian's browser and its driver:" \
	       "apt-get install chromium chromium-driver" >&2; exit 1; }; done
	MINI_O3_BROWSER=1 $(BIN)/python -m pytest tests/browser -s -p no:cacheprovider
