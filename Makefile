# The two commands of the README: `make demo` and `make test`. Both create or update .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.landmix-installed

# Ray 2.59+ turns token auth on by default; the suite's local cluster here is loopback-only. The cluster files
# set RAY_AUTH_MODE=token, and so do the tests of it (test_token_auth.py, test_cluster_onprem.py) for their
# own heads.
export RAY_AUTH_MODE ?= disabled
export MLFLOW_DISABLE_TELEMETRY ?= true
export RAY_USAGE_STATS_ENABLED ?= 0
export LANDMIX_DATA_ROOT ?= $(abspath ../shared/data)

.PHONY: venv demo test lint clean browser cluster-tools

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
	$(BIN)/ruff format --check platform jobs tests bench
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check --fix platform jobs tests bench
	$(BIN)/ruff format platform jobs tests bench

# Debian's chromium for the MLflow UI test (as root; elsewhere: sudo apt-get install -y chromium).
# Without it that one test skips and says why; in CI (CI set, as .ci/run sets it) this target fails instead,
# and so would the test. CHROMIUM and APT are variables so that a test can run this target without root.
IN_CI := $(filter 1 true yes TRUE True YES,$(CI))
CHROMIUM ?= /usr/bin/chromium
APT ?= apt-get
MISSING_EXIT := $(if $(IN_CI),1,0)
MISSING_SAYS = $(if $(IN_CI),CI is set so this fails,the $(1) test will skip)
browser:
	@test -x $(CHROMIUM) || { test "$$(id -u)" = 0 && $(APT) update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(APT) install -y -qq chromium >/dev/null; }; \
	  test -x $(CHROMIUM) || { echo "chromium not installed at $(CHROMIUM) (needs root):" \
	  "$(call MISSING_SAYS,MLflow UI)"; exit $(MISSING_EXIT); }

# sshd, rsync, netcat and Debian's python3.11 with venv (the cluster user's virtualenv) for the on-prem cluster test (tests/test_cluster_onprem.py; as root, CI does). The
# test runs its own sshd on 127.0.0.1 with its own config: the package's ssh service is kept from starting
# (a policy-rc.d that refuses service starts, only while apt runs, and only where the machine has none).
# Without them, outside CI, that test skips and says why; in CI this target fails.
CLUSTER_TOOLS := /usr/sbin/sshd /usr/bin/ssh-keygen /usr/bin/rsync /usr/bin/nc /usr/bin/python3.11 \
  /usr/lib/python3.11/ensurepip/__init__.py
cluster-tools:
	@for f in $(CLUSTER_TOOLS); do test -e $$f || missing=1; done; test -z "$$missing" || { \
	  test "$$(id -u)" = 0 || { echo "openssh-server, rsync, netcat, python3.11-venv not installed (needs root):" \
	  "$(call MISSING_SAYS,on-prem cluster)"; exit $(MISSING_EXIT); }; \
	  policy=; test -e /usr/sbin/policy-rc.d || { policy=1; printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; }; \
	  $(APT) update -qq && DEBIAN_FRONTEND=noninteractive $(APT) install -y -qq openssh-server rsync netcat-openbsd python3.11-venv >/dev/null; rc=$$?; \
	  test -z "$$policy" || rm -f /usr/sbin/policy-rc.d; exit $$rc; }

clean:
	rm -rf $(VENV) build *.egg-info platform/*.egg-info
