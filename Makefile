# Entry points. `make test` is what CI runs (.ci/run); it sets up first, which
# takes about a second once everything is installed.
PYTHON_VENV := .venv/bin/python
# Extra pytest arguments, e.g. make test PYTEST_ARGS="-k smoke -x"
PYTEST_ARGS ?=
# Parallel pytest workers (pytest-xdist); each starts its own PostgreSQL.
# The e2e tests mostly wait on ansible-playbook subprocesses, so two workers
# on the two cores here roughly halve the wall time. worksteal: an idle worker
# takes tests queued on the other, so the four Molecule scenarios (last in the
# queue, two minutes each) run two at a time instead of on one worker.
PYTEST_WORKERS ?= 2

.PHONY: setup setup-deploy test test-fast bench clean

setup:
	bash scripts/setup.sh

# What a pipeline runner needs to run the playbooks against remote hosts, and
# no more: the venv with requirements.txt and community.postgresql; no
# PostgreSQL server, test tools or podman (docs/examples/ call it).
setup-deploy:
	bash scripts/setup.sh --deploy-only

# The deploy playbook against the local default (inventory/local): a PostgreSQL
# for this checkout on this machine, started first if it is not running
# (scripts/local-postgres.sh). Extra ansible-playbook arguments, e.g.
# make deploy DEPLOY_ARGS="--check --diff"
DEPLOY_ARGS ?=

.PHONY: deploy local-pg-stop

deploy: setup
	bash scripts/local-postgres.sh
	.venv/bin/ansible-playbook deploy-db.yml -i inventory/local $(DEPLOY_ARGS)

# Stop the local default's server (its data stays in .local/ or the directory
# the script named).
local-pg-stop:
	bash scripts/local-postgres.sh stop

test: setup
	$(PYTHON_VENV) -m pytest tests -q -n $(PYTEST_WORKERS) --dist worksteal $(PYTEST_ARGS)

# The inner loop while changing postgresql_migrate: its unit tests and its end-to-end tests
# (the module through ansible-playbook against a real PostgreSQL); no role runs, no Molecule.
test-fast: setup
	$(PYTHON_VENV) -m pytest tests/unit tests/e2e -q -n $(PYTEST_WORKERS) --dist worksteal $(PYTEST_ARGS)

# Figures and PASS/FAIL per target, not a test (bench/README.md): the deploy
# against a one-ping play, postgresql_migrate against dbmate, the backup step
# against pg_dump. About 10 minutes on a quiet 2-core machine (it builds a 1 GB
# database); BENCH_ARGS="--repeat 5", "--no-backup" or "--backup-gb 0.2".
BENCH_ARGS ?=

bench: setup
	$(PYTHON_VENV) bench/run.py $(BENCH_ARGS)

clean:
	rm -rf .venv .collections .cache

# The role's defaults/main.yml and README variable section, from its
# meta/argument_specs.yml (tests/test_role_docs.py fails while they differ).
.PHONY: role-docs

role-docs:
	$(PYTHON_VENV) scripts/role-docs.py

# Every Molecule scenario (molecule/: the outage, a partly migrated database, a
# broken migration, the dry run), one after the other, each against a throwaway
# PostgreSQL container running the real deploy-db.yml; about 6 minutes. Podman
# by default, ST44_MOLECULE_DRIVER=docker for Docker. Other molecule test
# arguments, e.g. make molecule MOLECULE_ARGS="-s failure --destroy never"
MOLECULE_ARGS ?= --all

.PHONY: molecule

# Containers are named after this checkout, as tests/test_molecule.py names them.
ST44_MOLECULE_PREFIX ?= st44-molecule-$(shell printf %s "$(CURDIR)" | sha1sum | cut -c1-8)

molecule: setup
	bash scripts/setup-molecule.sh
	PATH="$(CURDIR)/.venv/bin:$$PATH" ST44_MOLECULE_PREFIX="$(ST44_MOLECULE_PREFIX)" \
		.venv/bin/molecule test $(MOLECULE_ARGS)

# A fresh encrypted vault for inventory/$(ENV) (scripts/new-vault.sh): asks for the vault
# password twice and for each vault_* value the inventory uses, none echoed; never
# overwrites an existing vault. make vault ENV=prod
ENV ?=

.PHONY: vault

vault: setup
	bash scripts/new-vault.sh $(ENV)
