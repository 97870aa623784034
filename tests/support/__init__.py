"""Everything the tests share that is not a test, one concern per module:

pgcluster        a throwaway real PostgreSQL server (also used by bench/run.py)
tool_runner      the venv's command-line tools (ansible-lint, molecule, scripts)
migrate_runner   postgresql_migrate through ansible-playbook, as users run it
migrate_units    the module's unit-test builders: files read and split, plans, parameters
st44             the facts of the repository's st44 migrations
db_state         reading a database: recorded versions, catalog, tables, rows
deploy_runner    what a deploy playbook run returns and where it puts things
deploy_fixtures  the fixtures that run the deploy playbooks (site, deploy, ...)
namesakes        databases whose names share a prefix (backups and restores)
background_runs  runs started in the background for fault tests, and polling
faults           migrations with a deterministic middle, for fault tests

Fixtures reach every directory through ``pytest_plugins`` in tests/conftest.py;
test files import the rest by its full name, e.g.
``from tests.support.db_state import recorded_versions``.
"""

import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
# The venv's bin directory, not the resolved interpreter's: ansible-playbook and the tools are
# installed next to the python running the tests (requirements-dev.txt, requirements-molecule.txt).
VENV_BIN = Path(sys.executable).parent
