# One command to set up, one to test, one to demo. Everything the tests need is installed here.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
JS_BUNDLE := deltakit_nb/static/chat.js
JS_SRC := $(wildcard js/src/*.js js/src/*.css) js/package.json js/package-lock.json js/build.mjs
CHROMIUM := /usr/bin/chromium
export AGNO_TELEMETRY ?= false

.PHONY: dev test lint pytest jstest lab dist bench notebooks chromium postgres clean

dev: $(STAMP) $(JS_BUNDLE)

# The bundle first: the editable install's build hook (hatch-jupyter-builder, pyproject.toml)
# then finds it newer than js/src and leaves npm alone.
$(STAMP): pyproject.toml | $(JS_BUNDLE)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -U pip
	$(PY) -m pip install -q -e '.[test]'
	touch $@

js/node_modules/.package-lock.json: js/package.json js/package-lock.json
	npm --prefix js ci --no-audit --no-fund --loglevel=error

$(JS_BUNDLE): js/node_modules/.package-lock.json $(JS_SRC)
	npm --prefix js run build --silent

# Debian's Chromium for the browser tests (Playwright drives it; it never downloads a browser).
chromium:
	@test -x $(CHROMIUM) || { \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium fonts-dejavu-core >/dev/null; }

# Debian's PostgreSQL for the PostgreSQL store's tests and benchmarks: tests/pgserver.py runs
# its initdb and pg_ctl in a temp dir per test session (the package's own cluster is not used).
postgres:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq postgresql >/dev/null; }

lint: dev
	$(VENV)/bin/ruff check deltakit_nb tests benchmarks notebooks/refresh_outputs.py
	$(VENV)/bin/ruff format --check deltakit_nb tests benchmarks notebooks/refresh_outputs.py
	$(VENV)/bin/mypy

jstest: $(JS_BUNDLE)
	node --test js/test/

pytest: dev chromium postgres
	$(VENV)/bin/pytest
	$(VENV)/bin/pytest -p no:cacheprovider --nbval-lax notebooks

test: dev chromium postgres lint jstest pytest

# JupyterLab with nothing that calls an outside host (no news feed, update check or PyPI
# extension manager); --allow-root only where it is needed (a container or CI as root).
LAB_FLAGS := --LabApp.news_url=None --LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate \
	--LabApp.extension_manager=readonly
# Default settings for this run only (JUPYTER_CONFIG_PATH, your own config dir stays first):
# JupyterLab's "get notified about official Jupyter news?" prompt answered No. Settings you
# changed yourself still win; nothing is written to your JupyterLab settings.
LAB_CONFIG_PATH := $(CURDIR)/jupyter-config/make-lab

lab: dev
	JUPYTER_CONFIG_PATH=$(LAB_CONFIG_PATH)$${JUPYTER_CONFIG_PATH:+:$$JUPYTER_CONFIG_PATH} \
	DELTAKIT_DEMO_DELAY=$${DELTAKIT_DEMO_DELAY:-0.02} $(VENV)/bin/jupyter lab $(LAB_FLAGS) \
	  --ServerApp.root_dir=notebooks --LabApp.default_url=/lab/tree/quickstart.ipynb \
	  $$([ "$$(id -u)" = 0 ] && echo --allow-root)

# sdist and wheel into dist/, both with the JS bundle (`dev` rebuilds it if js/ changed), so
# neither installing the wheel nor building a wheel from the sdist needs Node.
dist: dev
	rm -rf dist
	$(PY) -m build --outdir dist .

bench: dev chromium postgres
	$(PY) -m pip install -q -e ".[bench]"
	$(PY) benchmarks/bench_stream.py
	$(PY) benchmarks/bench_load.py
	$(PY) benchmarks/bench_browser.py
	$(PY) benchmarks/bench_threads.py
	$(PY) benchmarks/bench_cross.py

# Re-run the example notebooks and save the outputs nbval checks.
notebooks: dev
	cd notebooks && ../$(PY) refresh_outputs.py *.ipynb

clean:
	rm -rf $(VENV) js/node_modules $(JS_BUNDLE) dist
