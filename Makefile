# Two entry points for a fresh machine: `make demo` and `make test`. Each does its own set-up.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
TOOLS := .tools
HELM := $(TOOLS)/helm/helm
APT_PACKAGES := etcd-server etcd-client strace prometheus prometheus-alertmanager mtail chromium

.PHONY: help setup system venv helm lint typecheck unit test test-fast demo bench clean image

help:
	@echo "make demo   - real etcd on a slowed disk, watched by the exporter"
	@echo "make test   - set-up, then ruff, mypy and every test"
	@echo "make test-fast - the levels without etcd, Prometheus, helm or podman (tests/README.md)"
	@echo "make bench  - benchmarks (figures on stdout)"
	@echo "make image  - the container image, built with podman (no registry needed)"

system:
	@bash .ci/setup-system $(APT_PACKAGES)

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q -U pip

$(VENV)/.installed: pyproject.toml setup.py exporter/commands/parse/_shapes.c | $(BIN)/python
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

venv: $(VENV)/.installed

$(HELM):
	@bash .ci/setup-helm $(TOOLS)

helm: $(HELM)

setup: system venv helm

lint: venv
	$(BIN)/ruff check exporter tests bench
	$(BIN)/ruff format --check exporter tests bench
	$(BIN)/mypy

test: setup lint image
	PATH="$(CURDIR)/$(TOOLS)/helm:$$PATH" $(BIN)/pytest -q

# The levels that need no etcd, Prometheus, helm or podman (tests/README.md), without `slow`.
test-fast: venv
	$(BIN)/pytest -q -m "(unit or component or rules or meta or bench) and not slow"

unit: venv
	$(BIN)/pytest -q -m unit

# podman, runc and mmdebstrap if missing; Debian base images when no registry is reachable
# (cached under /var/cache); then the build. Prints the image size.
image:
	@bash .ci/build-image

demo: system venv
	$(BIN)/python -m tools.demo

bench: setup
	$(BIN)/python bench/parse_bench.py
	$(BIN)/python bench/scrape_bench.py
	$(BIN)/python bench/kube_follow.py

clean:
	rm -rf $(VENV) $(TOOLS) .demo bench/out .pytest_cache .mypy_cache .ruff_cache
