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

SBI_VENV := .venv-sbi
SBI_STAMP := $(SBI_VENV)/.installed

.PHONY: demo test lint install system-deps pyprob-venv sbi-venv ppx-schema bench bench-sbi clean

# setup.py builds the optional C accelerator of interception; the last line says whether
# it was built (if not, interception runs in pure Python: docs/interception.md)
$(STAMP): pyproject.toml setup.py $(wildcard src/rotalumis/intercept/_accel*.[ch])
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade pip
	$(PIP) install $(TORCH)
	$(PIP) install -e '.[dev,examples,optimize,distributed]'
	$(PY) -c "from rotalumis.intercept._accelerator import DESCRIPTION; print('rotalumis interception:', DESCRIPTION)"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(PY) examples/demo.py --out demo-output

# Graphviz (address graphs), Chromium (the HTML report test) and flatc (the PPX schema check)
# come from Debian; `make demo` does not need them. Without root or apt the tests that need them skip, saying why.
system-deps:
	@command -v dot >/dev/null || (apt-get update -q && apt-get install -y -q graphviz) \
		|| echo "warning: could not install graphviz (dot); address-graph tests will skip"
	@command -v chromium >/dev/null || (apt-get update -q && apt-get install -y -q chromium) \
		|| echo "warning: could not install chromium; the report browser test will skip"
	@command -v flatc >/dev/null || (apt-get update -q && apt-get install -y -q flatbuffers-compiler) \
		|| echo "warning: could not install flatc; the PPX schema regeneration test will skip"

test: $(STAMP) $(PYPROB_STAMP) system-deps
	$(PY) -m pytest -q
	# the interception tests once more on the pure-Python path (the fallback of the C one)
	ROTALUMIS_PURE_PYTHON=1 $(PY) -m pytest -q -m "not slow" tests/intercept \
		--ignore=tests/intercept/test_intercept_examples.py
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

# sbi 0.27.0 (the NPE peer of benchmarks/bench_sbi_tasks.py) in its own venv, torch kept at the pin
$(SBI_STAMP): Makefile
	test -x $(SBI_VENV)/bin/python || $(PYTHON) -m venv $(SBI_VENV)
	$(SBI_VENV)/bin/python -m pip --disable-pip-version-check -q install $(TORCH)
	$(SBI_VENV)/bin/python -m pip --disable-pip-version-check -q install sbi==0.27.0 $(TORCH)
	touch $(SBI_STAMP)

sbi-venv: $(SBI_STAMP)

# PPX: regenerate the FlatBuffers Python code from the committed schema with Debian's flatc 2.0.8.
PPX_SCHEMA := src/rotalumis/remote/schema/ppx.fbs
PPX_GENERATED := src/rotalumis/remote/ppx_generated
ppx-schema:
	command -v flatc >/dev/null || (apt-get update && apt-get install -y flatbuffers-compiler)
	rm -rf build/ppx-schema
	flatc --python -o build/ppx-schema $(PPX_SCHEMA)
	rm -rf $(PPX_GENERATED)
	mv build/ppx-schema/ppx $(PPX_GENERATED)
	# flatc 2.0.8 imports sibling tables absolutely ("from ppx.Tensor"); make them relative
	sed -i 's/^\( *\)from ppx\.\([A-Za-z]*\) import/\1from .\2 import/' $(PPX_GENERATED)/*.py
	rm -rf build/ppx-schema

bench: $(STAMP) $(PYPROB_STAMP)
	$(PY) benchmarks/bench_vs_pyprob.py
	$(PY) benchmarks/bench_ppx.py

# the sbibm tasks against sbi's NPE (long: see benchmarks/bench_sbi_tasks.py --help)
bench-sbi: $(STAMP) $(SBI_STAMP)
	$(PY) benchmarks/bench_sbi_tasks.py

clean:
	rm -rf $(VENV) $(PYPROB_VENV) $(SBI_VENV) demo-output build *.egg-info
