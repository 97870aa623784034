"""Unit tests of module_utils/migrate/session.py: the lock key, and the connection telling a refused statement from a lost server."""

import pytest
from ansible_collections.st44.db_deploy.plugins.module_utils.migrate.errors import SqlFailure
from ansible_collections.st44.db_deploy.plugins.module_utils.migrate.session import Db, default_lock_key


def test_default_lock_key_is_stable_and_fits_a_positive_bigint():
    # Pinned: runs of different module versions against one database must share the key.
    assert default_lock_key("schema_migrations") == 2670252943535968100
    for table in ("schema_migrations", "public.schema_migrations", "ops.history", "x"):
        key = default_lock_key(table)
        assert key == default_lock_key(table)
        assert 0 < key < 2**63


def test_default_lock_key_differs_per_table():
    tables = ["schema_migrations", "ops.history", "schema_migrations2"]
    assert len(set(default_lock_key(t) for t in tables)) == len(tables)


def test_default_lock_key_is_the_same_for_the_same_table():
    assert default_lock_key("public.schema_migrations") == default_lock_key("schema_migrations")


def test_a_statement_the_driver_refuses_is_no_lost_connection_but_a_terminated_session_is(db):
    """Only a closed connection makes the run say so (and the commit outcome unknown)."""
    conn = db.connect()
    try:
        session = Db(conn)
        with pytest.raises(SqlFailure) as refused:
            session.run("SELECT %s, %s", (1,))  # one parameter for two placeholders: psycopg refuses
        assert refused.value.sqlstate is None and not refused.value.connection_lost
        pid = session.value("SELECT pg_backend_pid() AS v")
        db.sql("SELECT pg_terminate_backend(%s)", (pid,))
        with pytest.raises(SqlFailure) as lost:
            session.run("SELECT 1")
        assert lost.value.connection_lost
    finally:
        conn.close()
