# The two commands of the README: `make demo` and `make test`. Both create or update .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.landmix-installed

# Ray 2.59+ turns token auth on by default; the local cluster here is loopback-only.
export RAY_AUTH_MODE ?= disabled
export MLFLOW_DISABLE_TELEMETRY ?= true
export RAY_USAGE_STATS_ENABLED ?= 0
export LANDMIX_DATA_ROOT ?= $(abspath ../shared/data)

.PHONY: venv demo test lint clean browser

venv: $(STAMP)

# Re-installs only when pyproject.toml changes; the package is editable, so code edits need nothing.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python jobs/tune_mix.py --smoke-test

test: $(STAMP)
	$(BIN)/ruff check platform jobs tests bench
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check --fix platform jobs tests bench
	$(BIN)/ruff format platform jobs tests bench

# Debian's chromium for the MLflow UI test (as root; elsewhere: sudo apt-get install -y chromium).
# Without it that one test skips and says why.
browser:
	@test -x /usr/bin/chromium || { test "$$(id -u)" = 0 && apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } || \
	  echo "chromium not installed (needs root): the MLflow UI test will skip"

clean:
	rm -rf $(VENV) build *.egg-info platform/*.egg-info
