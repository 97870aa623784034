"""Fixtures for end-to-end runs of postgresql_migrate against a real PostgreSQL."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.support.migrate_runner import run_migrate
from tests.support.st44 import MIGRATIONS


@pytest.fixture
def st44_dir(tmp_path) -> Path:
    """A copy of the repository's migrations that a test may edit."""
    target = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS, target)
    return target


@pytest.fixture
def mdir(tmp_path) -> Path:
    """An empty migrations directory for hand-written cases."""
    target = tmp_path / "m"
    target.mkdir()
    return target


@pytest.fixture
def migrate(db):
    """Run the module against the test database: migrate(path, **more_args)."""

    def _run(path, check=False, diff=False, verbosity=0, secret_args=None, **args):
        module_args = dict(db.login_params(), path=str(path))
        module_args.update(args)
        return run_migrate(module_args, check=check, diff=diff, verbosity=verbosity, secret_args=secret_args)

    return _run
