"""Fixtures for the hardening suite: faults injected into real runs.

The deploy fixtures (site, socket_vars, tcp_login, deploy) come from
tests/support/deploy_fixtures.py, the background runs from
tests/support/background_runs.py; here: reaping what a test left running, and a
PostgreSQL of its own for tests that restart the server.
"""

from __future__ import annotations

import os
import signal
import uuid

import pytest

from tests.support.background_runs import Background
from tests.support.pgcluster import Database, PgCluster


@pytest.fixture
def reap():
    """Kill, at the end of the test, any process group a test started and left behind."""
    started: list[Background] = []
    yield started.append
    for bg in started:
        for pid in bg.orphans + bg.tree():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if bg.proc.poll() is None:
            bg.proc.kill()
        bg.proc.wait()


@pytest.fixture(scope="module")
def own_pg(cluster_root, request):
    """A PostgreSQL of this test module's own: tests here stop and restart it."""
    name = "own-" + request.module.__name__.rsplit(".", 1)[-1][:20] + "-" + uuid.uuid4().hex[:6]
    cluster = PgCluster(cluster_root / name, settings={"max_connections": 50})
    cluster.start()
    yield cluster
    cluster.destroy()


@pytest.fixture
def own_db(own_pg):
    """A fresh database on own_pg (the server is started again if a test left it down)."""
    if not own_pg.is_running:
        own_pg.start()
    name = "h_" + uuid.uuid4().hex[:10]
    own_pg.create_database(name)
    yield Database(own_pg, name)
    if not own_pg.is_running:
        own_pg.start()
    own_pg.drop_database(name)
