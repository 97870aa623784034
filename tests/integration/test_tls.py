"""The production shape with client certificates: deploy-db.yml over TCP to a PostgreSQL that
accepts only TLS with a client certificate (pg_hba `hostssl ... cert clientcert=verify-full`),
the server's certificate checked with verify-full against a CA made here with openssl.

The module (every database task) and pg_dump must both connect that way: the migrations are
applied and the backup is taken through the same certificate, and db_deploy_connect_params
reach both (the server logs each connection's application_name).
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import subprocess
from pathlib import Path

import psycopg2.sql
import pytest
from tests.support.pgcluster import Database, PgCluster, make_base_root

from tests.support.namesakes import kept_copies
from tests.support.db_state import public_tables, recorded_versions, row_counts
from tests.support.deploy_runner import SYSTEM_PYTHON
from tests.support.st44 import ST44_TABLES, ST44_VERSIONS, add_app_rows

pytestmark = pytest.mark.e2e

ROLE = "st44_owner"
APP_NAME = "st44-deploy-tls-test"


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, text=True)


def _signed(cwd: Path, name: str, subject: str, extensions: str) -> None:
    """name.key and name.crt, signed by ca.key."""
    (cwd / f"{name}.ext").write_text(extensions + "\n")
    _openssl("req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", subject, cwd=cwd)
    _openssl(
        "x509",
        "-req",
        "-in",
        f"{name}.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-out",
        f"{name}.crt",
        "-extfile",
        f"{name}.ext",
        cwd=cwd,
    )


@pytest.fixture(scope="module")
def tls_pg():
    """A PostgreSQL on 127.0.0.1 that admits ROLE over TCP only with TLS and a client
    certificate whose CN is ROLE; its certificates and the client's in `.certs`."""
    root = make_base_root(prefix="db-deploy-tls-")
    certs = root / "certs"
    certs.mkdir()
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt", "-days", "2", "-subj", "/CN=st44 test CA", cwd=certs)
    _signed(certs, "server", "/CN=localhost", "subjectAltName=DNS:localhost,IP:127.0.0.1")
    _signed(certs, "client", f"/CN={ROLE}", "extendedKeyUsage=clientAuth")

    cluster = PgCluster(root / "cluster")
    # The server's key: its OS user's, 0600, or PostgreSQL refuses to start.
    server_dir = cluster.base_dir / "tls"
    server_dir.mkdir()
    for name in ("server.crt", "server.key", "ca.crt"):
        shutil.copy(certs / name, server_dir / name)
    for path in [server_dir, *server_dir.iterdir()]:
        if cluster.os_user:
            pw = pwd.getpwnam(cluster.os_user)
            os.chown(path, pw.pw_uid, pw.pw_gid)
    (server_dir / "server.key").chmod(0o600)
    (cluster.data_dir / "pg_hba.conf").write_text(
        f"local   all   all                  trust\nhostssl all   {ROLE}  127.0.0.1/32  cert clientcert=verify-full\n"
    )
    # The client's key: libpq refuses one that others can read.
    (certs / "client.key").chmod(0o600)
    cluster.start(
        settings={
            "ssl": "on",
            "ssl_cert_file": str(server_dir / "server.crt"),
            "ssl_key_file": str(server_dir / "server.key"),
            "ssl_ca_file": str(server_dir / "ca.crt"),
            "log_connections": "on",
        }
    )
    cluster.sql(psycopg2.sql.SQL("CREATE ROLE {} LOGIN CREATEDB").format(psycopg2.sql.Identifier(ROLE)))
    cluster.certs = certs
    yield cluster
    cluster.destroy()
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def tls_db(tls_pg, request):
    name = "st44_tls_" + re.sub(r"[^a-z0-9]+", "_", request.node.name.lower())[5:35]
    tls_pg.drop_database(name)
    tls_pg.create_database(name, owner=ROLE)
    yield Database(tls_pg, name)
    tls_pg.drop_database(name)


@pytest.fixture
def tls_vars(tls_pg, tls_db, site) -> dict:
    """inventory/prod's shape: TCP, verify-full, nothing to become; plus the client certificate."""
    return {
        "ansible_connection": "local",
        "ansible_python_interpreter": SYSTEM_PYTHON,
        "db_deploy_db_name": tls_db.name,
        "db_deploy_login_user": ROLE,
        "db_deploy_login_host": "127.0.0.1",
        "db_deploy_login_port": tls_pg.port,
        "db_deploy_login_unix_socket": "",
        "db_deploy_become_user": "",
        "db_deploy_ssl_mode": "verify-full",
        "db_deploy_ca_cert": str(tls_pg.certs / "ca.crt"),
        "db_deploy_ssl_cert": str(tls_pg.certs / "client.crt"),
        "db_deploy_ssl_key": str(tls_pg.certs / "client.key"),
        "db_deploy_connect_params": {"application_name": APP_NAME},
        "db_deploy_backup_dir": str(site.backups),
        "db_deploy_release_root": str(site.releases),
        "db_deploy_report_dir": str(site.reports),
        "db_deploy_migrations_src": str(site.migrations),
        "db_deploy_expected_tables": ST44_TABLES,
    }


def test_deploy_over_tls_with_a_client_certificate_applies_backs_up_and_restores(deploy, tls_pg, tls_db, tls_vars, site):
    log_start = len(tls_pg.log_text())

    run = deploy(vars=tls_vars)
    deploy_log = tls_pg.log_text()[log_start:]

    assert run.rc == 0, run.output
    assert recorded_versions(tls_db) == ST44_VERSIONS
    assert set(ST44_TABLES) <= set(public_tables(tls_pg, tls_db.name))
    backups = site.backup_files()
    assert len(backups) == 1 and backups[0].stat().st_size > 0, run.output
    # Every connection, the module's and pg_dump's, came with the certificate over TLS and
    # with the connect_params (pg_dump would otherwise call itself pg_dump).
    connections = [line for line in deploy_log.splitlines() if "connection authorized" in line]
    assert connections, deploy_log
    assert all(f"user={ROLE} " in line and "SSL enabled" in line for line in connections), connections
    assert all(f"application_name={APP_NAME}" in line for line in connections), connections

    add_app_rows(tls_db)  # after the backup: the restore takes them away
    log_start = len(tls_pg.log_text())
    restored = deploy("playbooks/restore-db.yml", vars=tls_vars, extra_vars={"db_deploy_restore_confirm": tls_db.name})
    restore_log = tls_pg.log_text()[log_start:]

    assert restored.rc == 0, restored.output
    assert public_tables(tls_pg, tls_db.name) == []  # the backup was taken before the first migration
    (kept,) = kept_copies(tls_pg, tls_db.name)
    assert row_counts(tls_pg, kept)["users"] == 2
    # pg_restore too: the certificate, TLS and the connect_params.
    connections = [line for line in restore_log.splitlines() if "connection authorized" in line]
    assert connections and all(f"user={ROLE} " in line and "SSL enabled" in line and f"application_name={APP_NAME}" in line for line in connections), (
        connections
    )


def test_deploy_without_the_client_certificate_is_refused_with_libpqs_message(deploy, tls_pg, tls_db, tls_vars, site):
    run = deploy(vars=dict(tls_vars, db_deploy_ssl_cert="", db_deploy_ssl_key=""))

    assert run.rc != 0
    assert "connection requires a valid client certificate" in run.output, run.output
    assert public_tables(tls_pg, tls_db.name) == []
    assert site.backup_files() == []


def test_connect_params_pg_dump_could_not_use_are_refused_naming_what_to_use(deploy, db, site, socket_vars):
    params = {"password": "Sx-connect-params-1", "keepalives": 1, "sslmode": "require", "sslrootcert": "/x"}

    run = deploy(vars=dict(socket_vars, db_deploy_connect_params=params))

    assert run.rc != 0
    refused = [line for line in run.output.splitlines() if "db_deploy_connect_params may not set" in line]
    assert refused, run.output
    line = refused[-1]  # every refusal on the one line of the failed task
    assert "may not set password: use db_deploy_login_password from the vault" in line
    assert "may not set keepalives: libpq has no environment variable for it" in line
    assert "db_deploy_connect_params: {service: NAME}" in line
    assert "may not set sslmode: use db_deploy_ssl_mode" in line
    assert "may not set sslrootcert: use db_deploy_ca_cert" in line
    assert "Sx-connect-params-1" not in run.output
    assert db.tables() == [] and site.backup_files() == [] and site.shipped() == []
