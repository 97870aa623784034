"""A migrations directory that holds no migration file stops the deploy: the st44
outage began with migrations that silently never ran."""

from __future__ import annotations

import shutil

import pytest

from tests.support.deploy_runner import write_sql

pytestmark = pytest.mark.e2e


def test_diesel_style_folder_fails_the_deploy_naming_what_is_there(deploy, db, site):
    shutil.rmtree(site.migrations)
    (site.migrations / "2024-01-01-000000_create_users").mkdir(parents=True)
    write_sql(site.migrations / "2024-01-01-000000_create_users", "up.sql", "CREATE TABLE users (id int);\n")

    run = deploy()

    assert run.rc != 0, run.output
    assert "up.sql" in run.output and "2024-01-01-000000_create_users" in run.output
    assert "db_deploy_allow_empty" in run.output
    assert "No migration was applied." in run.output
    assert db.tables() == []
    assert site.backup_files() == []
    assert run.report["result"] == "failed"


def test_empty_folder_deploys_only_when_the_operator_allows_it(deploy, db, site, socket_vars, check_mode_lock):
    shutil.rmtree(site.migrations)
    site.migrations.mkdir()

    with check_mode_lock():  # its temporary copy in /tmp is not another dry run's leftover
        refused = deploy(check=True)
    allowed = deploy(vars=dict(socket_vars, db_deploy_allow_empty=True, db_deploy_expected_tables=[]))

    assert refused.rc != 0 and "no migration file" in refused.output.lower(), refused.output
    assert allowed.rc == 0, allowed.output
    assert allowed.version_lines() == []
    assert db.tables() == []
