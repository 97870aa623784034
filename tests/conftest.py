"""Shared fixtures: a real PostgreSQL for the session, a fresh database per test.

pg       one server for the whole session (each xdist worker gets its own)
db       a new, empty database on it, dropped after the test
standby  a hot standby of pg, created the first time a test asks for it
"""

from __future__ import annotations

import os
import re
import shutil
import uuid
from pathlib import Path

import pytest

from tests.support import REPO_ROOT
from tests.support.pgcluster import Database, PgCluster, make_base_root

# The fixtures that run the deploy playbooks, shared by tests/integration and tests/hardening.
pytest_plugins = ["tests.support.deploy_fixtures"]


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def cluster_root():
    """Directory holding this session's clusters; removed at the end
    (kept when PGCLUSTER_KEEP=1, to read server logs after a failure)."""
    root = make_base_root()
    yield root
    if os.environ.get("PGCLUSTER_KEEP") != "1":
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def pg(cluster_root):
    cluster = PgCluster(cluster_root / "primary", settings={"max_connections": 200})
    cluster.start()
    yield cluster
    cluster.stop()


@pytest.fixture(scope="session")
def standby(pg, cluster_root):
    replica = pg.make_standby(cluster_root / "standby")
    yield replica
    replica.stop()


@pytest.fixture
def db(pg, request):
    """A fresh empty database named after the test, dropped afterwards."""
    stem = re.sub(r"[^a-z0-9]+", "_", request.node.name.lower()).strip("_")[:40]
    name = f"t_{stem}_{uuid.uuid4().hex[:8]}"
    pg.create_database(name)
    yield Database(pg, name)
    pg.drop_database(name)


def pytest_collection_modifyitems(config, items):
    """Run the longest tests first (the Molecule scenarios, a few minutes each, and ansible-test
    sanity, up to three on a machine that has not built its environments yet), so that the many
    short ones fill in around them on the other pytest worker instead of leaving one worker
    alone with the long ones at the end. Same order on every worker (xdist needs it)."""
    longest = ("test_molecule.py::test_molecule_scenario", "test_sanity.py::")
    items.sort(key=lambda item: 0 if any(name in item.nodeid for name in longest) else 1)
