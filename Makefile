# segflow developer entry points. `make demo` and `make test` set everything up on first use.
SHELL := /bin/bash
PYTHON_BOOT ?= python3
VENV := .venv
PY := $(VENV)/bin/python
SAM_VENV := .venv-sam
SAM := $(SAM_VENV)/bin/sam
# checkov and SAM CLI pin libraries that clash with the test environment: each gets its own venv.
TOOLS_VENV := .venv-tools
CHECKOV := $(TOOLS_VENV)/bin/checkov
STAMP := $(VENV)/.installed

.PHONY: setup demo test test-fast pytest check lint-code lint-template build sizes coldstart bench bench-quick lock clean

setup: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON_BOOT) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade "pip>=24"
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $(STAMP)

$(SAM):
	test -x $(SAM_VENV)/bin/python || $(PYTHON_BOOT) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/python -m pip install --quiet --disable-pip-version-check "aws-sam-cli==1.170.0"

$(CHECKOV):
	test -x $(TOOLS_VENV)/bin/python || $(PYTHON_BOOT) -m venv $(TOOLS_VENV)
	$(TOOLS_VENV)/bin/python -m pip install --quiet --disable-pip-version-check "checkov==3.3.30"

## Run the main job on the embedded local default (generated sample, local AWS emulation).
demo: setup
	$(VENV)/bin/segflow demo --out demo-out

## The whole test suite: template checks, Lambda size limits, then every test.
test: check pytest

pytest: setup
	$(PY) -m pytest -q -p no:cacheprovider -n 2 --dist loadfile

## Template checks: cfn-lint with the serverless rules, sam validate --lint, checkov (zero findings).
lint-template: setup $(SAM) $(CHECKOV)
	$(VENV)/bin/cfn-lint --template template.yaml --append-rules cfn_lint_serverless.rules
	SAM_CLI_TELEMETRY=0 $(SAM) validate --lint --template-file template.yaml
	$(CHECKOV) -f template.yaml --framework cloudformation --compact --quiet --skip-download

## Cold import time of every handler in fresh interpreters (and which modules the light ones load).
coldstart: setup
	$(PY) bench/bench_coldstart.py --repeats 1

## Python errors ruff finds without running anything (undefined names, unused imports, syntax).
lint-code: setup
	$(VENV)/bin/ruff check layers functions infra bench tests

check: lint-code lint-template sizes coldstart

test-fast: setup
	$(PY) -m pytest -q -x -m "not slow"

## sam build for python3.12/arm64 without Docker (BuildMethod: makefile + pip --platform).
build: setup $(SAM)
	PYTHON=$(abspath $(PY)) SAM_CLI_TELEMETRY=0 $(SAM) build --template-file template.yaml

## Unzipped size of each function with its layers, against Lambda's 250 MB.
sizes: build
	$(PY) -m segflow_local.sizes .aws-sam/build

## Benchmarks (bench/RESULTS.md): the full run at 10k/100k/1M orders, and a quick CI-sized variant.
bench: setup
	$(PY) bench/run.py --sizes 10000 100000 1000000 --repeats 3

bench-quick: setup
	$(PY) bench/run.py --quick

lock:
	rm -rf .venv-lock && $(PYTHON_BOOT) -m venv .venv-lock
	.venv-lock/bin/pip install --quiet -r requirements.in
	(echo "# Pinned development and test environment (python 3.11). Regenerate with \`make lock\`."; \
	 echo "# Top-level choices live in requirements.in; Lambda layer pins in layers/constraints-lambda.txt."; \
	 .venv-lock/bin/pip freeze --exclude-editable) > requirements.txt
	rm -rf .venv-lock

clean:
	rm -rf .aws-sam demo-out .pytest_cache
