# geo-service: `make demo` and `make test` work on a fresh Debian machine (root or not).
SHELL := /bin/bash
VENV  ?= .venv
PY    := $(VENV)/bin/python
GEO   := $(VENV)/bin/geo-service
HOST  ?= 127.0.0.1
PORT  ?= 8000

.PHONY: install system-deps web-deps demo test lint bench clean

$(VENV)/.installed: pyproject.toml
	bash scripts/install_python.sh $(VENV)
	touch $@

system-deps:
	bash scripts/install_system_deps.sh

install: system-deps $(VENV)/.installed

# MapLibre GL JS (npm) serves only the browser tests: `make demo` does not fetch it.
web-deps:
	bash scripts/install_web_deps.sh

demo: install
	$(GEO) demo --host $(HOST) --port $(PORT)

test: install web-deps
	bash scripts/run_tests.sh $(VENV)

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

bench: install
	$(PY) bench/assign.py

clean:
	-$(GEO) db stop
	rm -rf .geo-service
