"""The merge-request dry run of the example pipelines logs in as a role that may only read
the migration history (docs/examples/release-pipeline.gitlab-ci.yml lists its grants). This
proves those grants, taken from the file as written, are enough for `--check --diff` over
TCP, and that such a login can neither write nor read the app's data. (A login with
default_transaction_read_only is refused by the module, dry run included: not that way.)"""

from __future__ import annotations

import re
from secrets import token_hex, token_urlsafe

import psycopg2
import pytest

from tests.support import REPO_ROOT

GITLAB = REPO_ROOT / "docs/examples/release-pipeline.gitlab-ci.yml"


def documented_grants(database: str, role: str) -> list[str]:
    """The SQL lines of the pipeline file's comment, for this test's database and role."""
    statements = re.findall(r"^#\s+((?:CREATE ROLE|ALTER ROLE|GRANT) [^;]*;)", GITLAB.read_text(), re.M)
    assert len(statements) >= 4, "the GitLab example no longer lists the plan login's grants"
    return [s.replace("st44_plan", f'"{role}"').replace("DATABASE st44 ", f'DATABASE "{database}" ') for s in statements]


@pytest.mark.e2e
def test_the_plan_login_of_the_example_pipelines_can_dry_run_and_nothing_more(deploy, pg, db, site, tcp_login, check_mode_lock):
    first = deploy(vars=tcp_login.vars, secrets=tcp_login.secrets())
    assert first.rc == 0, first.output
    (site.migrations / "900_add_plan_probe.sql").write_text("CREATE TABLE plan_probe (id int);\n")

    role, password = "plan_" + token_hex(4), "Pl:" + token_urlsafe(18)
    for statement in documented_grants(db.name, role):
        pg.sql(statement, dbname=db.name)
    pg.sql(psycopg2.sql.SQL("ALTER ROLE {} PASSWORD %s").format(psycopg2.sql.Identifier(role)), params=(password,))

    plan_vars = dict(tcp_login.vars, db_deploy_login_user=role)
    with check_mode_lock():
        dry = deploy(vars=plan_vars, secrets={"db_deploy_login_password": password}, check=True, diff=True)
    assert dry.rc == 0, dry.output
    statuses = {m["version"]: m["status"] for m in dry.report["migrations"]}
    assert statuses.pop("900") == "would_apply"
    assert set(statuses.values()) == {"already_applied"}
    assert "CREATE TABLE plan_probe (id int);" in dry.stdout
    assert password not in dry.output
    assert pg.sql("SELECT to_regclass('public.plan_probe')", dbname=db.name) == [(None,)]

    conn = psycopg2.connect(pg.dsn(db.name, user=role, password=password, tcp=True))
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            for statement in (
                "CREATE TABLE plan_write (id int)",
                "SELECT * FROM users",
                "INSERT INTO schema_migrations (version, name) VALUES ('901', 'x')",
                "DELETE FROM schema_migrations",
            ):
                with pytest.raises(psycopg2.errors.InsufficientPrivilege):
                    cur.execute(statement)
    finally:
        conn.close()
