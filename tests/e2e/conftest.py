"""Fixtures for end-to-end runs of postgresql_migrate against a real PostgreSQL."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from migrate_runner import REPO_ROOT, run_migrate

MIGRATIONS = REPO_ROOT / "migrations"
ST44_VERSIONS = ["000", "001", "011", "012", "013", "014", "015", "016"]
ST44_TABLES = ["children", "household_members", "households", "schema_migrations", "task_assignments", "task_completions", "tasks", "user_sessions", "users"]


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


def catalog_snapshot(db) -> list:
    """Every relation, column, constraint and function of the database, for before/after checks."""
    return db.sql(
        "SELECT 'rel', c.relname || ':' || c.relkind::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        " WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast') "
        "UNION ALL SELECT 'col', attrelid::regclass::text || '.' || attname FROM pg_attribute a "
        " JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
        " WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast') AND attnum > 0 "
        "UNION ALL SELECT 'con', conname FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace "
        " WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') "
        "UNION ALL SELECT 'fn', p.proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
        " WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1, 2"
    )
