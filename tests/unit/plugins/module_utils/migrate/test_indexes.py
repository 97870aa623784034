"""Unit tests of module_utils/migrate/indexes.py: what a no-transaction statement builds or relies on."""

import pytest
from ansible_collections.st44.db_deploy.plugins.module_utils.migrate.indexes import index_targets
from ansible_collections.st44.db_deploy.plugins.module_utils.migrate.lexer import split_statements


@pytest.mark.parametrize(
    "sql, target",
    [
        ("CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS idx ON t (c)", dict(kind="create", index="idx", table=["t"])),
        ("create index concurrently on \"App\".\"T\" using btree (c)", dict(kind="create", index=None, table=["App", "T"])),
        ("CREATE INDEX /* why */ CONCURRENTLY \"Big\" -- note\n ON ONLY s.Orders(c)", dict(kind="create", index="Big", table=["s", "orders"])),
        ("CREATE INDEX \"on\" ON t (c)", dict(kind="create", index="on", table=["t"])),
        ("REINDEX (VERBOSE) INDEX CONCURRENTLY s.idx", dict(kind="reindex", what="INDEX", name=["s", "idx"])),
        ("REINDEX TABLE CONCURRENTLY t", dict(kind="reindex", what="TABLE", name=["t"])),
        ("REINDEX SCHEMA CONCURRENTLY app", dict(kind="reindex", what="SCHEMA", name=["app"])),
        ("ALTER INDEX IF EXISTS app.p_idx ATTACH PARTITION app.p1_idx", dict(kind="attach", index=["app", "p_idx"])),
        ("REINDEX INDEX idx", None),  # one transaction: leaves nothing invalid
        ("ALTER INDEX idx RENAME TO other", None),
        ("CREATE TABLE t (id int)", None),
        ("VACUUM t", None),
    ],
)
def test_index_targets(sql, target):
    (statement,) = split_statements(sql)
    assert index_targets(statement) == target
