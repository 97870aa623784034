"""Fixtures for running the deploy, restore and status playbooks the way users do
(integration and hardening tests; tests/conftest.py registers them for the whole suite).

Each test gets its own database (the ``db`` fixture), its own site directory for
backups, releases, reports and a copy of the migrations (``site``), and a
``deploy`` callable that runs ``ansible-playbook <playbook> -i <inventory>``
against localhost and returns what the person at the terminal sees plus the
JSON report the run wrote.

The inventory is written per run. Secrets go only into a 0600 vars file passed
with ``-e @file``, never onto the command line or into the inventory.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from secrets import token_hex, token_urlsafe

import psycopg2.sql
import pytest

from tests.support import REPO_ROOT, VENV_BIN, migrate_runner
from tests.support.deploy_runner import SYSTEM_PYTHON, DeployRun, Site, TcpLogin
from tests.support.namesakes import kept_copies, named_like_copies
from tests.support.pgcluster import make_base_root
from tests.support.st44 import MIGRATIONS, ST44_TABLES


@pytest.fixture
def site():
    """A fresh directory tree for one test, with a copy of the st44 migrations."""
    root = make_base_root(prefix="db-deploy-it-")
    migrations = root / "migrations"
    shutil.copytree(MIGRATIONS, migrations)
    yield Site(root=root, migrations=migrations)
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def socket_vars(pg, db, site) -> dict:
    """Inventory vars for shape (a): unix socket, peer-style, become postgres."""
    return {
        "ansible_connection": "local",
        "ansible_python_interpreter": SYSTEM_PYTHON,
        "ansible_become_method": "ansible.builtin.su",
        "db_deploy_db_name": db.name,
        "db_deploy_login_user": "postgres",
        "db_deploy_login_unix_socket": str(pg.socket_dir),
        "db_deploy_login_host": "",
        "db_deploy_login_port": pg.port,
        "db_deploy_become_user": "postgres",
        "db_deploy_backup_dir": str(site.backups),
        "db_deploy_release_root": str(site.releases),
        "db_deploy_report_dir": str(site.reports),
        "db_deploy_migrations_src": str(site.migrations),
        "db_deploy_expected_tables": ST44_TABLES,
    }


@pytest.fixture
def tcp_login(pg, db, socket_vars) -> TcpLogin:
    """The database's owner, as in production: no superuser, CREATEDB (a restore
    creates the database again), a random password; and the inventory vars to use it."""
    role = "deployer_" + token_hex(4)
    # ':' and '\' must be escaped in the pass file pg_dump and pg_restore read.
    password = "Pw:" + token_urlsafe(18) + "\\x"
    pg.create_role(role, password=password)
    ident = psycopg2.sql.Identifier(role)
    pg.sql(psycopg2.sql.SQL("ALTER ROLE {} CREATEDB").format(ident))
    pg.sql(psycopg2.sql.SQL("ALTER DATABASE {} OWNER TO {}").format(psycopg2.sql.Identifier(db.name), ident))
    tcp_vars = dict(socket_vars)
    tcp_vars.update(
        db_deploy_login_host="127.0.0.1",
        db_deploy_login_unix_socket="",
        db_deploy_login_user=role,
        db_deploy_become_user="",
        db_deploy_ssl_mode="disable",
    )
    yield TcpLogin(role=role, password=password, vars=tcp_vars)
    # The role owns the deployed tables (and, after a restore, those of the kept copy).
    try:
        for (name,) in pg.sql("SELECT datname FROM pg_database WHERE datallowconn"):
            pg.sql(psycopg2.sql.SQL("REASSIGN OWNED BY {} TO postgres").format(ident), dbname=name)
        pg.sql(psycopg2.sql.SQL("DROP ROLE {}").format(ident))
    except psycopg2.Error:
        pass  # a throwaway cluster: a leftover role harms no other test


@pytest.fixture
def deploy(pg, db, site, socket_vars, tmp_path):
    """deploy(playbook="deploy-db.yml", vars={...}, secrets={...}, extra_vars={...},
    check=False, diff=False, verbosity=0, env={...}) -> DeployRun.

    vars replace the socket shape's inventory vars; secrets go through a 0600
    vars file; extra_vars are plain -e key=value (never secrets).
    """
    runs = iter(range(1000))

    def _run(
        playbook: str = "deploy-db.yml",
        *,
        vars: dict | None = None,
        secrets: dict | None = None,
        extra_vars: dict | None = None,
        check: bool = False,
        diff: bool = False,
        verbosity: int = 0,
        timeout: float = 300,
        env: dict | None = None,
    ) -> DeployRun:
        n = next(runs)
        host_vars = dict(vars if vars is not None else socket_vars)
        inventory = tmp_path / f"inventory-{n}.yml"
        inventory.write_text(json.dumps({"st44_db": {"hosts": {"localhost": host_vars}}}, indent=2))
        cmd = [str(VENV_BIN / "ansible-playbook"), str(REPO_ROOT / playbook), "-i", str(inventory)]
        if secrets:
            secret_file = tmp_path / f"secrets-{n}.json"
            secret_file.touch(mode=0o600)
            secret_file.chmod(0o600)
            secret_file.write_text(json.dumps(secrets))
            cmd += ["-e", f"@{secret_file}"]
        for key, value in (extra_vars or {}).items():
            cmd += ["-e", f"{key}={value}"]
        cmd += migrate_runner.mode_flags(check, diff, verbosity)
        reports_before = set(site.reports.glob("*.json")) if site.reports.exists() else set()
        proc = subprocess.run(cmd, cwd=REPO_ROOT, env=migrate_runner.env(env), capture_output=True, text=True, timeout=timeout)
        new_reports = sorted(set(site.reports.glob("*.json")) - reports_before, key=lambda p: p.stat().st_mtime) if site.reports.exists() else []
        report_path = new_reports[-1] if new_reports else None
        report = json.loads(report_path.read_text()) if report_path else None
        return DeployRun(proc.returncode, proc.stdout, proc.stderr, report, report_path)

    yield _run
    # `db` drops only its own name: drop the copies a restore kept of it, found by their marker
    # and by the naming rule (a copy renamed but not yet marked when a restore failed).
    for name in sorted(set(kept_copies(pg, db.name)) | set(named_like_copies(pg, db.name))):
        pg.drop_database(name)
