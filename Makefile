# Two entry points: `make demo` and `make test`. Each creates .venv when missing and
# installs into it only when pyproject.toml or constraints.txt changed (stamp files),
# so a second run starts in seconds.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip install --disable-pip-version-check -q -c constraints.txt

.PHONY: demo test bench install install-dev clean

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

clean:
	rm -rf $(VENV)
