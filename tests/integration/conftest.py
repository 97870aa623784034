"""Fixtures of the integration tests alone; those the hardening tests share with them
(site, socket_vars, tcp_login, deploy) are in tests/support/deploy_fixtures.py."""

from __future__ import annotations

import fcntl
from contextlib import contextmanager

import pytest


@pytest.fixture
def check_mode_lock(tmp_path_factory):
    """Serialise the dry runs of this suite's xdist workers, so that comparing
    /tmp before and after one of them does not see another's temporary files."""

    @contextmanager
    def _lock():
        lock_file = tmp_path_factory.getbasetemp().parent / "db-deploy-dry-run.lock"
        with open(lock_file, "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    return _lock
