# Two entry points for a fresh machine (Debian, pyenv with Python 3.12 or python3.12 on PATH):
#   make serve   set up and launch the dashboard
#   make test    set up and run the whole test suite (installs Chromium for the browser tests)
# While changing code:
#   make check     unit tests, the golden baseline and lint (about a minute; no browser, no
#                  statistical tests)
#   make baseline  regenerate tests/baseline.json when a change is meant to alter results
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
PYTHON ?= $(shell command -v pyenv >/dev/null 2>&1 && pyenv which python3.12 2>/dev/null || command -v python3.12 || echo python3)

.PHONY: setup serve test check baseline screenshots chromium bench lint

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 12), "Python 3.12+ is needed (Mesa 3.5)"'
	@echo "setting up $(VENV): installing the pinned packages (about 2 minutes the first time)..."
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	$(PY) -c 'from abm.fast import warm_up; print(f"fast engine compiled in {warm_up():.0f} s")'
	@echo "set up."
	touch $@

setup: $(VENV)/.installed

# the fast engine's kernels compiled first if the code changed since setup (a pull): else the
# page's first fast-engine model would stall for 15-45 s while numba compiles them
serve: setup
	@$(PY) -c 'from abm.fast import ensure_compiled; ensure_compiled(print)'
	$(VENV)/bin/abm serve

chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq chromium >/dev/null; \
	  else sudo apt-get update -qq && sudo apt-get install -y -qq chromium >/dev/null; fi; }

# the suite on every core (pytest-xdist), then the browser tests alone: they drive Chromium
# against a live server and one of them measures the server's CPU use
test: setup chromium
	$(VENV)/bin/pytest -q -n auto --dist worksteal -m "not browser"
	$(VENV)/bin/pytest -q -m browser

screenshots: setup chromium
	$(PY) docs/screenshots.py

check: setup
	$(VENV)/bin/ruff check abm tests benchmarks experiments
	$(VENV)/bin/pytest -q -n auto --dist worksteal -m "not slow and not browser" -p no:cacheprovider

baseline: setup
	$(PY) tests/baseline.py

bench: setup chromium
	$(PY) benchmarks/bench_model.py
	$(PY) benchmarks/bench_sweep.py
	$(PY) benchmarks/bench_dashboard.py

lint: setup
	$(VENV)/bin/ruff check abm tests benchmarks experiments
