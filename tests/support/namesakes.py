"""Databases whose names share a prefix (st44, st44-eu, st44_eu, st44.x), deployed into one
backup directory: what the backup and restore tests share."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import psycopg2.sql


def namesakes(db) -> list[str]:
    """The test's database and three whose names start with its name."""
    return [db.name, f"{db.name}-eu", f"{db.name}_eu", f"{db.name}.x"]


def create(pg, names) -> None:
    for name in names:
        if not pg.sql("SELECT 1 FROM pg_database WHERE datname = %s", params=(name,)):
            pg.create_database(name)


def drop(pg, names) -> None:
    for name in names:
        pg.drop_database(name)


def host_vars(socket_vars, name, **more) -> dict:
    return dict(socket_vars, db_deploy_db_name=name, **more)


def manifests(site) -> dict[str, dict]:
    """{backup file name: its manifest} of every readable manifest in the backup directory."""
    found = {}
    for path in sorted(site.backups.glob("*.json")):
        try:
            data = json.loads(path.read_text())
        except ValueError:
            continue
        found[data.get("file")] = data
    return found


def own_backups(site, name, pg) -> list[Path]:
    """The backups whose manifest names this database on pg's cluster."""
    sysid = system_identifier(pg)
    return sorted(
        site.backups / f
        for f, m in manifests(site).items()
        if m.get("database") == name and m.get("system_identifier") == sysid and (site.backups / f).exists()
    )


def users(pg, name) -> list[str]:
    return sorted(e for (e,) in pg.sql("SELECT email FROM users", dbname=name))


def insert_user(pg, name, email) -> None:
    pg.sql("INSERT INTO users (email, password_hash) VALUES (%s, 'x')", dbname=name, params=(email,))


def system_identifier(pg) -> str:
    return str(pg.sql("SELECT system_identifier FROM pg_control_system()")[0][0])


def kept_copies(pg, name) -> list[str]:
    """Databases whose comment marks them as a restore's copy of name (whatever their name)."""
    rows = pg.sql("SELECT d.datname, shobj_description(d.oid, 'pg_database') FROM pg_database d")
    found = []
    for datname, comment in rows:
        try:
            marker = json.loads(comment or "")
        except ValueError:
            continue
        if isinstance(marker, dict) and marker.get("kind") == "before_restore" and marker.get("database") == name:
            found.append(datname)
    return sorted(found)


def copy_name_prefix(name) -> str:
    """What the name of a restore's copy of name starts with (roles/db_deploy/tasks/restore.yml):
    the name, or when longer than 33 characters its first 24 and 8 hex of its SHA-256."""
    short = name if len(name) <= 33 else name[:24] + "_" + hashlib.sha256(name.encode()).hexdigest()[:8]
    return short + "_before_restore_"


def named_like_copies(pg, name) -> list[str]:
    """Databases named as a restore names its copies of name, marked or not."""
    prefix = copy_name_prefix(name)
    return sorted(d for (d,) in pg.sql("SELECT datname FROM pg_database") if d.startswith(prefix))


def ident(name):
    return psycopg2.sql.Identifier(name)
