# Two commands matter: `make demo` and `make test` (see README.md).
# Both work on a fresh Debian machine: they create .venv, install syncer with its
# dev extras, and (as root) install the Debian packages the real-server tests need.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
DEB_PACKAGES := dovecot-imapd dovecot-pop3d postgresql systemd chromium
PYTEST_ARGS ?=

.PHONY: test check demo lint typecheck bench deps test-servers clean help man

help:
	@echo "make demo   - sync a throwaway local Dovecot into demo/archive.db and show it"
	@echo "make test   - install what is needed, then ruff, mypy and the test suite"
	@echo "make check  - the fast loop: lint, types, import contracts, unit tests (no servers)"
	@echo "make bench  - the benchmarks against mbsync (long; not part of make test)"
	@echo "make man    - the manual pages, written from the commands' help into man/"

$(PY):
	$(PYTHON) -m venv $(VENV) || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq python3-venv && $(PYTHON) -m venv $(VENV); \
	  else echo "python3-venv is missing: apt-get install python3-venv" >&2; exit 1; fi; }

$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev,postgres]'
	touch $(STAMP)

# Installs the servers the tests run (never starts the system services).
deps: test-servers
	@missing=""; \
	command -v dovecot >/dev/null 2>&1 || missing="$$missing dovecot-imapd dovecot-pop3d"; \
	[ -e /usr/lib/dovecot/pop3 ] || missing="$$missing dovecot-pop3d"; \
	ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || missing="$$missing postgresql"; \
	command -v systemd-analyze >/dev/null 2>&1 || missing="$$missing systemd"; \
	[ -x /usr/bin/chromium ] || missing="$$missing chromium"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "Installing Debian packages:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(DEB_PACKAGES) >/dev/null; \
	  else echo "Missing Debian packages:$$missing (run: sudo apt-get install $(DEB_PACKAGES))" >&2; fi; \
	fi

# Cyrus IMAP and Courier-IMAP conflict with dovecot-imapd as packages: their .deb files are
# downloaded and unpacked into /var/cache/syncer-test-servers (tests/servers/debs.py), their
# libraries installed normally. Idempotent; needs root, else the tests name what is missing.
test-servers:
	@if [ "$$(id -u)" = 0 ]; then $(PYTHON) -m tests.servers.debs install; \
	else echo "Not root: Cyrus/Courier test servers not installed (run: sudo make test-servers)" >&2; fi

lint: $(STAMP)
	$(VENV)/bin/ruff check syncer tests
	$(VENV)/bin/lint-imports

typecheck: $(STAMP)
	$(VENV)/bin/mypy

# The fast loop while changing code: no servers, no slow property runs, under a minute.
check: $(STAMP) lint typecheck
	$(VENV)/bin/pytest -q -n auto -m "not integration and not slow" tests/unit

# Independent tests run on every core (pytest-xdist); each worker starts its own servers
# once (session fixtures), on free loopback ports.
test: deps $(STAMP) lint typecheck
	$(VENV)/bin/pytest -q -n auto $(PYTEST_ARGS)

demo: deps $(STAMP)
	$(PY) -m tests.demo

# The peers: mbsync (Debian isync) and notmuch, compared in the same run (docs/performance.md).
BENCH_PACKAGES := isync notmuch getmail6

bench: deps $(STAMP)
	@missing=""; command -v mbsync >/dev/null 2>&1 || missing="$$missing isync"; \
	command -v notmuch >/dev/null 2>&1 || missing="$$missing notmuch"; \
	command -v getmail >/dev/null 2>&1 || missing="$$missing getmail6"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	  else echo "Missing Debian packages:$$missing (run: sudo apt-get install $(BENCH_PACKAGES))" >&2; exit 1; fi; \
	fi
	$(PY) -m tests.bench.run_bench --messages 10000 --runs 3
	$(PY) -m tests.bench.run_bench --messages 50000 --runs 1 --scenarios full,nochange,delta,normalize
	$(PY) -m tests.bench.bench_pop3
	$(PY) -m tests.bench.bench_search --messages 100000
	$(PY) -m tests.bench.bench_cli_start --messages 100000
	$(PY) -m tests.bench.bench_web --messages 100000

# One page per command (syncer.1, syncer-sync.1 ...), from the click commands' help.
man: $(STAMP)
	$(PY) -m syncer.cli.manpages man

clean:
	rm -rf $(VENV) demo man .pytest_cache .mypy_cache .ruff_cache
