# opslog: `make run` for a first look, `make test` for the whole suite.
# Set-up is idempotent: system packages only when missing, the venv only when setup.cfg, setup.py or
# the C they build changed.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# Test processes: two on this project's 2-core machines (most tests wait on real services).
TEST_WORKERS ?= 2
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
APT    := DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q --no-install-recommends

.PHONY: setup system-deps browser-deps run test test-fast bench lint clean

setup: system-deps $(STAMP)

system-deps:
	@if [ ! -x /usr/lib/rabbitmq/bin/rabbitmq-server ]; then \
		echo "installing rabbitmq-server"; $(SUDO) apt-get update -q && $(APT) rabbitmq-server; fi
	@# The journald tests write journal directories with systemd-journal-remote (it brings journalctl
	@# along where systemd is missing). Where systemd is installed, the same version as its
	@# libsystemd-shared: a newer one would upgrade systemd itself.
	@if [ ! -x /lib/systemd/systemd-journal-remote ]; then \
		echo "installing systemd-journal-remote"; \
		version=$$(dpkg-query -W -f='$${Version}' libsystemd-shared 2>/dev/null || true); \
		$(SUDO) apt-get update -q && $(APT) systemd-journal-remote$${version:+=$$version}; fi

	@# setup.py compiles shipper._logfmt (the C split of logfmt lines): a C compiler and Python's headers.
	@if ! command -v cc >/dev/null || ! $(PYTHON) -c "import os, sys, sysconfig; \
			sys.exit(not os.path.exists(os.path.join(sysconfig.get_path('include'), 'Python.h')))"; then \
		echo "installing a C compiler and Python's headers"; $(SUDO) apt-get update -q && $(APT) gcc libc6-dev python3-dev; fi

browser-deps:
	@if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then \
		echo "installing chromium for the browser tests"; $(SUDO) apt-get update -q && $(APT) chromium chromium-driver; fi

$(STAMP): setup.cfg pyproject.toml setup.py shipper/_logfmt.c
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $@

run: setup
	$(VENV)/bin/opslog up $(ARGS)

test: setup browser-deps
	$(VENV)/bin/pytest -n $(TEST_WORKERS) $(PYTEST_ARGS)

test-fast: setup
	$(VENV)/bin/pytest -n $(TEST_WORKERS) -m "not slow and not browser" $(PYTEST_ARGS)

bench: setup
	$(PY) -m bench.run

lint: setup
	$(VENV)/bin/ruff check common shipper consumer webui tests bench
	$(VENV)/bin/lint-imports --no-cache  # contracts in .importlinter: which package may import which

clean:
	rm -rf $(VENV) var test-output bench/work .pytest_cache build shipper/_logfmt.*.so
