# Two entry points: `make demo` and `make test`. Each creates .venv when missing and
# installs into it only when pyproject.toml or constraints.txt changed (stamp files),
# so a second run starts in seconds.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip install --disable-pip-version-check -q -c constraints.txt

.PHONY: demo test bench repro install install-dev clean

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

test: $(VENV)/.stamp-dev
	$(PY) -m pytest -q

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
repro: $(VENV)/.stamp-base
	$(VENV)/bin/robustattr repro $(DATASET)

clean:
	rm -rf $(VENV)
