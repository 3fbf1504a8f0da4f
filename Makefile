# Two commands set everything up on a fresh machine:
#   make demo   - creates .venv, installs, runs a mini walk-forward on the bundled SPY sample
#   make test   - creates .venv, installs (with the dev, ray and jax extras), runs the test suite
PYTHON ?= python3
VENV   ?= .venv
PY      = $(VENV)/bin/python
STAMP   = $(VENV)/.installed

.PHONY: demo test venv dry-run lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install "torch==2.13.0"
	$(PY) -m pip install -e ".[dev,ray,jax,talib]"
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(PY) backend/scripts/run_walk_forward.py --symbol SPY --source sample \
		--windows tmp/mini_window.json --config tmp/mini_config_v1_default.json \
		--output-dir backend/evaluation/demo --overwrite --quiet

test: $(STAMP)
	$(PY) -m pytest -q

dry-run: $(STAMP)
	$(PY) backend/scripts/run_walk_forward.py --symbol SPY --source sample --windows tmp/mini_windows_multi.json --dry-run

lint: $(STAMP)
	$(PY) -m ruff check backend tests benchmarks scripts
	$(PY) -m mypy

bench: $(STAMP)
	$(PY) benchmarks/run.py --quick --out benchmarks/latest.json

clean:
	rm -rf $(VENV) backend/evaluation/demo
