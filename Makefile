# Two entry points: `make run` installs everything and runs a pass over the catalog;
# `make test` installs everything and runs the whole test suite. Both need only Python 3.11+,
# git and make: uv itself is installed into .tools/ on first use.

PYTHON ?= python3
UV_VERSION := 0.13.9
UV := .tools/bin/uv
VENV := .venv
NOTICEBOARD := $(VENV)/bin/noticeboard

.PHONY: install run demo corpus test lint clean

$(UV):
	$(PYTHON) -m venv .tools
	.tools/bin/pip install --quiet "uv==$(UV_VERSION)"

install: $(UV)
	$(UV) sync --locked --extra airflow --compile-bytecode

# Exit status 1 means every source failed (as on a machine without internet access); the feeds are
# still written from what is stored, so make reports it and succeeds. Status 2 (unusable catalog,
# database or manifest) fails.
run: install
	@$(NOTICEBOARD) run || { status=$$?; [ $$status -eq 1 ] || exit $$status; \
	  echo "every source failed (no internet access?); feeds were written from what is stored; 'make demo' runs offline"; }

demo: install
	$(NOTICEBOARD) --catalog examples/replay-catalog.yaml run --replay examples/replay/manifest.json

corpus: install
	$(NOTICEBOARD) --catalog examples/corpus-catalog.yaml run --replay ../shared/corpus/manifest.json

test: install
	$(VENV)/bin/python -m pytest $(PYTEST_ARGS)

lint: install
	$(VENV)/bin/ruff check noticeboard connectors transforms publishers dags tests

clean:
	rm -rf .tools $(VENV) public noticeboard.db*
