"""A long migration on a big database shows which version runs, and leaves no secret behind."""

from __future__ import annotations

import re

import pytest

from tests.support.db_state import recorded_versions

pytestmark = pytest.mark.e2e


def test_migrations_of_a_big_database_say_which_version_runs(deploy, db, site, tcp_login, tmp_path):
    """db_deploy_progress_min_size 0: every database is big. A slow migration (pg_sleep) makes the
    wait poll several times; over TCP with a password, so the background job reads a pass file."""
    (site.migrations / "900_slow_backfill.sql").write_text("SELECT pg_sleep(3);\nCREATE TABLE backfilled (id int);\n")
    host = dict(tcp_login.vars, db_deploy_progress_min_size=0, db_deploy_progress_interval=1)
    remote_tmp = tmp_path / "remote-tmp"

    run = deploy(vars=host, secrets=tcp_login.secrets(), env={"ANSIBLE_REMOTE_TMP": str(remote_tmp)})

    assert run.rc == 0, run.output[-3000:]
    total = len(list(site.migrations.glob("*.sql")))
    lines = re.findall(rf"^\[localhost\] applying 900 slow_backfill \({total} of {total}\), started \S+, \d+ s$", run.stdout, re.M)
    assert len(lines) >= 2, run.stdout
    # Changes are counted once, where they happen: not the background start, not the pass file.
    assert "Start the pending migrations" not in run.stdout and "Write the pass file" not in run.stdout
    assert "changed: [localhost] db_deploy : Wait for the migrations, saying which version runs" in run.stdout
    assert "900" in recorded_versions(db) and "backfilled" in db.tables()
    assert not list(site.backups.glob(".pgpass*"))
    assert not [p for p in site.releases.rglob(".progress-*")]
    leaked = [p for p in remote_tmp.rglob("*") if p.is_file() and tcp_login.password.encode() in p.read_bytes()]
    assert leaked == []
