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

# Two test processes: most tests wait on daemons, git and servers rather than compute, so two share 2 cores well
# (the suite takes about half the time); each process starts its own PostgreSQL when a test needs one.
test: $(STAMP)
	$(PY) -m pytest -q -n 2

lint: $(STAMP)
	$(VENV)/bin/ruff check tracker_bridge connectors tests bench
	$(VENV)/bin/mypy tracker_bridge tracker_bridge_connectors tests bench

# Every script in bench/ runs to the end; the triage ones read the development data set.
TRIAGE_DATA := bench/data/triage-dev.jsonl
CLARITY_DATA := bench/data/clarity-dev.jsonl

bench: $(STAMP)
	@for f in bench/*.py; do echo "== $$f"; \
	  case $$f in \
	    bench/triage_eval.py|bench/triage_robustness.py|bench/triage_online.py) $(PY) $$f --data $(TRIAGE_DATA) || exit 1 ;; \
	    bench/clarity_eval.py) $(PY) $$f --data $(CLARITY_DATA) || exit 1 ;; \
	    *) $(PY) $$f || exit 1 ;; \
	  esac; done

clean:
	rm -rf $(VENV) demo-* .pytest_cache .mypy_cache .ruff_cache
