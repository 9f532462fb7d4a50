# `make run` serves the demo (the runtime alone: no test, docs or benchmark package);
# `make test` installs everything the suite needs and runs it;
# `make test-fast` runs the tests that need no broker, browser, nginx or npm.
# Another Python: `make test-fast PYTHON=/path/to/python3.13 VENV=.venv313`.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
APT := DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get
# Markers tests/conftest.py puts on every test by the fixtures it uses (pyproject registers them).
FAST := not broker and not cluster and not browser and not nginx and not npm and not slow
# pytest-xdist workers for the fast tier: twice the cores, as its tests mostly wait on the
# subprocesses and sockets they start (on 2 cores: 4 workers 51 s, 2 workers 67 s).
FAST_WORKERS ?= $(shell echo $$(( $$(nproc) * 2 )))

.PHONY: install run test test-fast lint format docs dist system-deps npm-deps bench bench-full bench-profile crossbar-venv clean

# The editable install is setuptools' strict mode: build/__editable__.*/gos_web_socket/ holds a
# link to every file of the package and a static .pth puts it on sys.path, which Python, mypy
# and pyright all follow (no import hook). A file added or removed needs the links made again:
# $(SOURCES) lists the package's files and is rewritten (so the stamp is outdated) only when
# that list changes, so every target below reinstalls by itself when a module appears.
EDITABLE := --config-settings editable_mode=strict
SOURCES := $(VENV)/.sources
SOURCE_LIST := $(shell find app settings -type f ! -path '*/__pycache__/*' ! -name '*.py[co]' \
	| LC_ALL=C sort) containers.py push.py testing.py py.typed
$(shell mkdir -p $(VENV); [ "$$(cat $(SOURCES) 2>/dev/null)" = "$(SOURCE_LIST)" ] \
	|| echo "$(SOURCE_LIST)" > $(SOURCES))

install: $(STAMP)

define NEW_VENV
	@command -v $(PYTHON) >/dev/null || { echo "Python not found: $(PYTHON)"; exit 1; }
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
		|| { echo "Python 3.11+ is required (found $$($(PYTHON) --version))"; exit 1; }
	[ -x $(PY) ] || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
endef

$(STAMP): pyproject.toml setup.py $(SOURCES)
	$(NEW_VENV)
	$(PY) -m pip install -q $(EDITABLE) -e '.[dev]'
	touch $(STAMP) $(RUN_STAMP)

# The demo needs the runtime alone (its page and client are package data): no extra. A venv that
# `make install` made already has it.
RUN_STAMP := $(VENV)/.installed-run
$(RUN_STAMP): pyproject.toml setup.py $(SOURCES)
	$(NEW_VENV)
	$(PY) -m pip install -q $(EDITABLE) -e .
	touch $(RUN_STAMP)

run: $(RUN_STAMP)
	GOS_WEB_SOCKET__SERVER__HTTP__DEMO_TOKENS=true $(PY) -m gos_web_socket.app server

# The documentation site from docs/ (mkdocs.yml), strict: a warning or a broken link fails it.
# tests/docs/test_site.py runs the same build, so `make test` checks it too.
docs: $(STAMP)
	$(VENV)/bin/mkdocs build --strict --site-dir build/site

# An sdist and a wheel in dist/, checked as an index would check them.
dist: $(STAMP)
	rm -rf dist
	$(PY) -m build --outdir dist .
	$(VENV)/bin/twine check --strict dist/*

# System packages the suite starts for real: a private RabbitMQ node, Chromium for browser tests,
# nginx in front of the server (deploy/nginx.conf).
system-deps:
	@if [ ! -x /usr/lib/rabbitmq/bin/rabbitmq-server ]; then \
		echo "installing rabbitmq-server"; \
		$(APT) update -qq && $(APT) install -y -qq rabbitmq-server >/dev/null; \
	fi
	@command -v epmd >/dev/null || { echo "epmd missing after installing rabbitmq-server"; exit 1; }
	@if [ ! -x /usr/bin/chromium ]; then \
		echo "installing chromium"; \
		$(APT) update -qq && $(APT) install -y -qq chromium >/dev/null; \
	fi
	@if [ ! -x /usr/sbin/nginx ]; then \
		echo "installing nginx (the deployment tests run it on loopback)"; \
		$(APT) update -qq && $(APT) install -y -qq nginx >/dev/null; \
	fi
	@[ -x /usr/sbin/nginx ] || { echo "nginx missing after installing Debian's nginx package"; exit 1; }

npm-deps:
	@command -v npm >/dev/null || { echo "npm is required for the interop tests"; exit 1; }
	@if [ -f tests/interop/package.json ]; then \
		npm install --prefix tests/interop --no-audit --no-fund --silent; fi

test: $(STAMP) system-deps npm-deps
	$(PY) -m pytest

# PYTHONDONTWRITEBYTECODE= : the tier starts many Python processes (servers, CLI commands, the
# examples); where that variable is set, each compiles the package again (~0.1 s CPU each).
test-fast: $(STAMP)
	PYTHONDONTWRITEBYTECODE= $(PY) -m pytest -n $(FAST_WORKERS) -m "$(FAST)"

lint: $(STAMP)
	$(VENV)/bin/ruff check --no-cache .
	$(VENV)/bin/ruff format --no-cache --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/pyright --pythonpath $(PY)

format: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

# Benchmarks: ours vs python-socketio vs the raw limits, side by side in one run (bench/).
bench: $(STAMP) system-deps
	$(PY) -m pip install -q $(EDITABLE) -e '.[bench]'
	$(PY) -m bench

bench-full: $(STAMP) system-deps crossbar-venv
	$(PY) -m pip install -q $(EDITABLE) -e '.[bench]'
	$(PY) -m bench --full
	$(PY) -m bench wamp2 --out bench/results/wamp2.json  # ours vs Crossbar (docs/bench.md)

# Crossbar (the reference WAMP router) pins old dependencies: a venv of its own, never .venv.
crossbar-venv: bench/.venv-crossbar/bin/crossbar
bench/.venv-crossbar/bin/crossbar:
	python3 -m venv bench/.venv-crossbar
	bench/.venv-crossbar/bin/python -m pip install -q crossbar

bench-profile: $(STAMP) system-deps
	$(PY) -m pip install -q $(EDITABLE) -e '.[bench]'
	$(PY) -m bench profile

clean:
	rm -rf $(VENV) build dist .mypy_cache .ruff_cache .pytest_cache tests/interop/node_modules
