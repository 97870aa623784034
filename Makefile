# Entry points. `make test` is what CI runs (.ci/run); it sets up first, which
# takes about a second once everything is installed.
PYTHON_VENV := .venv/bin/python
# Extra pytest arguments, e.g. make test PYTEST_ARGS="-k smoke -x"
PYTEST_ARGS ?=
# Parallel pytest workers (pytest-xdist); each starts its own PostgreSQL.
# The e2e tests mostly wait on ansible-playbook subprocesses, so two workers
# on the two cores here roughly halve the wall time.
PYTEST_WORKERS ?= 2

.PHONY: setup test clean

setup:
	bash scripts/setup.sh

test: setup
	$(PYTHON_VENV) -m pytest tests -q -n $(PYTEST_WORKERS) $(PYTEST_ARGS)

clean:
	rm -rf .venv .collections .cache
