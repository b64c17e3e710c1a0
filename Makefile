# Each target creates or reuses .venv and installs what it needs itself.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck bench clean

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install --quiet --upgrade pip
	@$(PY) -m pip install --quiet -e ".[dev]"
	@touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/tracker-bridge demo --dir demo-$$(date +%Y%m%d-%H%M%S)

test: $(STAMP)
	$(PY) -m pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check tracker_bridge connectors tests bench
	$(VENV)/bin/mypy tracker_bridge tracker_bridge_connectors

bench: $(STAMP)
	@for f in bench/*.py; do echo "== $$f"; \
	  if [ $$f = bench/triage_eval.py ]; then $(PY) $$f --data bench/data/triage-dev.jsonl || exit 1; \
	  else $(PY) $$f || exit 1; fi; done

clean:
	rm -rf $(VENV) demo-* .pytest_cache .mypy_cache .ruff_cache
