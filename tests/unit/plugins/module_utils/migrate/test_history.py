"""Unit tests of module_utils/migrate/history.py: the history table's name, width and another tool's table in its place."""

import pytest
from ansible_collections.st44.db_deploy.plugins.module_utils.migrate.history import foreign_history_table, incomplete_table_name, versions_too_wide

from tests.support.migrate_units import migration


@pytest.mark.parametrize(
    "table, marker",
    [
        ("schema_migrations", "schema_migrations_incomplete"),
        ("ops.history", "ops.history_incomplete"),
    ],
)
def test_incomplete_table_name(table, marker):
    assert incomplete_table_name(table) == marker


def test_versions_wider_than_the_history_column_are_named():
    migrations = [migration("016_tasks.sql"), migration("20240101120000_timestamped.sql")]
    assert versions_too_wide(migrations, None) == []
    assert versions_too_wide(migrations, 50) == []
    assert versions_too_wide(migrations, 10) == [
        "versions 20240101120000 have more than the 10 characters the history table's version column holds; "
        "widen it in a migration of its own (ALTER TABLE ... ALTER COLUMN version TYPE varchar(50)) or keep "
        "version numbers short"
    ]


@pytest.mark.parametrize(
    "columns, looks_like",
    [
        (
            ["installed_rank", "version", "description", "type", "script", "checksum", "installed_by", "installed_on", "execution_time", "success"],
            "Flyway's (flyway_schema_history)",
        ),
        (["version", "dirty"], "golang-migrate's"),
        (["id", "version_id", "is_applied", "tstamp"], "goose's (goose_db_version)"),
        (["version", "description", "installed_on", "success", "checksum", "execution_time"], "sqlx's (_sqlx_migrations)"),
        (["version"], "Rails' or dbmate's"),
        (["id", "app", "name", "applied"], "Django's (django_migrations)"),
    ],
)
def test_another_tools_history_table_is_recognised(columns, looks_like):
    text = foreign_history_table("public.schema_migrations", [(c, "text") for c in columns])
    assert "its columns are %s, without" % ", ".join("%s text" % c for c in columns) in text
    assert "It looks like %s history table, which this tool must not write to" % looks_like in text
    assert "the table option (the role variable db_deploy_table)" in text
