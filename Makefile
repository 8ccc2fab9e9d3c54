# rotalumis — set-up, demo, tests. Needs only Python 3 (>= 3.10) with pip and venv.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check -q
STAMP := $(VENV)/.installed
PYPROB_VENV := .venv-pyprob
PYPROB_STAMP := $(PYPROB_VENV)/.installed
# torch is pinned: 2.13.0's CPU wheel is available locally on the project machines.
TORCH := torch==2.13.0

.PHONY: demo test lint install pyprob-venv bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade pip
	$(PIP) install $(TORCH)
	$(PIP) install -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(PY) examples/demo.py --out demo-output

test: $(STAMP)
	$(PY) -m pytest -q
	$(VENV)/bin/lint-imports

lint: $(STAMP)
	$(PY) -m ruff check src tests benchmarks examples
	$(PY) -m ruff format --check src tests benchmarks examples
	$(PY) -m mypy
	$(VENV)/bin/lint-imports

# pyprob 1.5.0 (the peer) lives in its own venv: it pins flatbuffers==2.0.
$(PYPROB_STAMP): Makefile
	test -x $(PYPROB_VENV)/bin/python || $(PYTHON) -m venv $(PYPROB_VENV)
	$(PYPROB_VENV)/bin/python -m pip --disable-pip-version-check -q install $(TORCH)
	$(PYPROB_VENV)/bin/python -m pip --disable-pip-version-check -q install pyprob==1.5.0
	touch $(PYPROB_STAMP)

pyprob-venv: $(PYPROB_STAMP)

bench: $(STAMP) $(PYPROB_STAMP)
	$(PY) benchmarks/bench_vs_pyprob.py

clean:
	rm -rf $(VENV) $(PYPROB_VENV) demo-output build *.egg-info
