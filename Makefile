# Two entry points: `make demo` and `make test`. Each creates .venv when missing and
# installs into it only when pyproject.toml or constraints.txt changed (stamp files),
# so a second run starts in seconds.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip install --disable-pip-version-check -q -c constraints.txt

.PHONY: demo test test-fast lint-imports bench repro benchmark install install-dev fashion-mnist-source clean

$(PY):
	$(PYTHON) -m venv $(VENV)

$(VENV)/.stamp-base: pyproject.toml constraints.txt | $(PY)
	$(PIP) -e .
	touch $@

$(VENV)/.stamp-dev: pyproject.toml constraints.txt $(VENV)/.stamp-base
	$(PIP) -e '.[dev]'
	touch $@

install: $(VENV)/.stamp-base
install-dev: $(VENV)/.stamp-dev

demo: $(VENV)/.stamp-base
	$(VENV)/bin/robustattr demo --out runs/demo

# Both cores: one pytest-xdist worker per core, one torch thread per worker (two threads per
# worker would fight over the same two cores). The layers contract (pyproject.toml) runs first.
TEST_WORKERS ?= 2
PYTEST := OMP_NUM_THREADS=1 $(PY) -m pytest -q -n $(TEST_WORKERS) --dist worksteal

test: $(VENV)/.stamp-dev fashion-mnist-source lint-imports
	$(PYTEST)

# Everything but the tests marked slow (long end-to-end runs): a quick check while editing.
test-fast: $(VENV)/.stamp-dev lint-imports
	$(PYTEST) -m "not slow"

lint-imports: $(VENV)/.stamp-dev
	$(VENV)/bin/lint-imports --no-cache

# Fashion-MNIST's offline source is the Debian package dataset-fashion-mnist (design.md, Data).
# Installed here when missing and apt-get is at hand (as root, or through password-less sudo);
# otherwise one line says what to run, and the Fashion-MNIST tests are skipped (listed by name).
FASHION_MNIST_DIR := /usr/share/datasets/fashion-mnist
fashion-mnist-source:
	@if [ -e $(FASHION_MNIST_DIR)/train-images-idx3-ubyte.gz ]; then :; \
	elif ! command -v apt-get >/dev/null 2>&1; then \
	  echo "note: no apt-get here; for Fashion-MNIST run: robustattr data fetch fashion-mnist --source-dir DIR (DIR holding its four IDX files)"; \
	else \
	  if [ "$$(id -u)" -eq 0 ]; then SUDO=; else SUDO="sudo -n"; fi; \
	  echo "installing the Debian package dataset-fashion-mnist (Fashion-MNIST's offline source)"; \
	  ($$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q dataset-fashion-mnist) \
	    || echo "warning: could not install it; run: sudo apt-get install dataset-fashion-mnist"; \
	fi

# Benchmarks (docs/performance.md): the bench extra, then every benchmark in bench/ -> bench/results/latest.json.
# torchattacks goes in without its dependencies: it imports none of torchvision/requests, and the
# torchvision wheel available here is a CUDA build that cannot load next to the CPU torch wheel.
$(VENV)/.stamp-bench: pyproject.toml constraints.txt $(VENV)/.stamp-base
	$(PIP) 'captum>=0.7' 'tqdm>=4.56.1'
	$(PIP) --no-deps 'torchattacks>=3.5'
	touch $@

bench: $(VENV)/.stamp-bench
	$(PY) bench/run_all.py

# Table 1 at CPU scale (docs/results.md): `make repro DATASET=mnist` (or fashion-mnist) runs or resumes
# the recipes in configs/repro/DATASET, skips finished units, and ends with the report.
DATASET ?= mnist
repro: $(VENV)/.stamp-base $(if $(filter fashion-mnist,$(DATASET)),fashion-mnist-source)
	$(VENV)/bin/robustattr repro $(DATASET)

# The benchmark (docs/benchmark.md): every method at one budget rule (training at most 60 minutes on one
# core) and one evaluation, cost recorded: `make benchmark DATASET=mnist` (or fashion-mnist) runs or resumes
# the recipes in configs/benchmark/DATASET unit by unit on one torch thread, skips finished units, and
# ends with results/benchmark/DATASET/report.md and its figures.
benchmark: $(VENV)/.stamp-base $(if $(filter fashion-mnist,$(DATASET)),fashion-mnist-source)
	OMP_NUM_THREADS=1 $(VENV)/bin/robustattr benchmark $(DATASET)

clean:
	rm -rf $(VENV)
