# Two commands do everything on a fresh machine with Python 3.11:
#   make run    - the whole local stack (PostgreSQL, Temporal dev server + UI, SMTP catcher, worker, API)
#   make test   - the test suite against real PostgreSQL, Temporal and SMTP servers
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test test-faults lint venv clean chromium

$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24"
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[test]"
	@# Bytecode as the image has it (pip compiles installed packages; an editable install
	@# under PYTHONDONTWRITEBYTECODE=1 has none, see docs/performance.md).
	$(BIN)/python -m compileall -q activities api client db domain operations settings workflows cli.py worker.py worker_processes.py > /dev/null
	@touch $(STAMP)

venv: $(STAMP)

DEMO ?= --demo

run: $(STAMP)
	$(BIN)/dunning dev $(DEMO) $(ARGS)

# The console's browser tests drive Debian's chromium (never a browser Playwright would
# download): install it where it is missing (CI and developers run as root; else sudo).
CHROMIUM := /usr/bin/chromium

chromium:
	@test -x $(CHROMIUM) || { echo "installing chromium (Debian package) for the console's browser tests"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get update -q && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q --no-install-recommends chromium; }

# Tests run in $(JOBS) processes (pytest-xdist): most of a test's time is spent waiting on
# the real servers, so two processes on two cores finish sooner. JOBS=0 runs them in one.
# Tests marked `serial` (races under load on purpose) run afterwards in one process; exit
# status 5 is "none selected" (ARGS naming other tests).
JOBS ?= 2

test: $(STAMP) chromium
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/pytest -n $(JOBS) --dist loadgroup -m "not slow and not serial" $(ARGS)
	$(BIN)/pytest -m "serial and not slow" $(ARGS) || [ $$? -eq 5 ]

test-faults: $(STAMP)
	$(BIN)/pytest -m slow $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/lint-imports

clean:
	rm -rf $(VENV) .data .pytest_cache .ruff_cache
