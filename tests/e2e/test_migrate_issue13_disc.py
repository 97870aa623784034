"""Issue #13, the module's wrong answers: a path without migrations, bad entries in it, an invalid
index recorded as applied by a retry, retry messages, another tool's history table. Every case runs
postgresql_migrate through ansible-playbook against a real PostgreSQL."""

from __future__ import annotations

import os

import pytest
from conftest import catalog_snapshot

pytestmark = pytest.mark.e2e


def write(directory, name, sql):
    path = directory / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(sql, bytes):
        path.write_bytes(sql)
    else:
        path.write_text(sql)
    return path


def recorded(db, table="schema_migrations"):
    return [v for (v,) in db.sql(f"SELECT version FROM {table} ORDER BY version")]


# --- a path without migration files ------------------------------------------

def diesel_layout(mdir):
    write(mdir, "2024-01-01-000000_create_users/up.sql", "CREATE TABLE users (id int);\n")
    write(mdir, "2024-01-01-000000_create_users/down.sql", "DROP TABLE users;\n")
    write(mdir, "2024-02-01-000000_add_tasks/up.sql", "CREATE TABLE tasks (id int);\n")


@pytest.mark.parametrize("check", [False, True], ids=["run", "check"])
@pytest.mark.parametrize("layout, says", [
    (diesel_layout, ["2 subfolders with an up.sql (2024-01-01-000000_create_users/up.sql, "
                     "2024-02-01-000000_add_tasks/up.sql), the layout of diesel and similar tools",
                     "this tool applies NNN_description.sql files placed directly in path",
                     "2024-01-01-000000_create_users/up.sql -> 001_create_users.sql"]),
    (lambda m: None, ["holds no migration file (NNN_description.sql, directly in it): it is empty. "
                      "Nothing was applied; point path at the directory that holds the NNN_description.sql files"]),
    (lambda m: (write(m, "README.md", "# docs\n"), write(m, "schema.sql.bak", "x"),
                write(m, "migrations/001_a.sql", "CREATE TABLE a (id int);\n")),
     ["subfolder holding NNN_description.sql files: migrations; other files: README.md, schema.sql.bak",
      "point path at the subfolder that holds them"]),
], ids=["diesel", "empty", "one-level-up"])
def test_path_without_migration_files_is_an_error_naming_what_is_there(db, migrate, mdir, layout, says, check):
    layout(mdir)
    before = catalog_snapshot(db)

    run = migrate(mdir, check=check)

    assert run.rc == 2, run.output
    msg = run.result["msg"]
    assert msg.startswith(f"{mdir} holds no migration file")
    for text in says:
        assert text in msg
    assert msg.endswith("If a directory without migrations is expected here, set allow_empty: true")
    assert catalog_snapshot(db) == before  # no history table either


@pytest.mark.parametrize("check", [False, True], ids=["run", "check"])
def test_allow_empty_accepts_a_directory_without_migrations(db, migrate, mdir, check):
    run = migrate(mdir, allow_empty=True, check=check)
    assert run.rc == 0, run.output
    assert run.result["changed"] is False and run.result["migrations"] == []


@pytest.mark.parametrize("allow_empty", [False, True])
@pytest.mark.parametrize("make_path, says", [
    (lambda tmp: tmp / "no-such-dir", "does not exist"),
    (lambda tmp: write(tmp, "001_a.sql", "SELECT 1;\n"), "is not a directory"),
], ids=["missing", "a-file"])
def test_path_that_is_not_a_directory_is_an_error_even_with_allow_empty(db, migrate, tmp_path, make_path, says,
                                                                        allow_empty):
    path = make_path(tmp_path)
    run = migrate(path, allow_empty=allow_empty)
    assert run.rc == 2
    assert f"{path} {says}" in run.result["msg"]
    assert "point path at the directory that holds the NNN_description.sql files" in run.result["msg"]
    assert db.tables() == []


# --- every bad entry named at once, no traceback ---------------------------------

@pytest.mark.parametrize("check", [False, True], ids=["run", "check"])
def test_every_bad_entry_is_named_in_one_failure_without_a_traceback(db, migrate, mdir, tmp_path, check):
    write(mdir, "001_good.sql", "CREATE TABLE good (id int);\n")
    os.symlink("009_loop_b.sql", str(mdir / "008_loop_a.sql"))  # used to end the run with [Errno 40]
    os.symlink("008_loop_a.sql", str(mdir / "009_loop_b.sql"))
    os.symlink("gone.sql", str(mdir / "002_dangling.sql"))
    os.symlink(str(write(tmp_path, "outside/x.sql", "SELECT 1;\n")), str(mdir / "003_outside.sql"))
    (mdir / "004_dir.sql").mkdir()
    write(mdir, "005_latin1.sql", b"SELECT 'caf\xe9';\n")
    write(mdir, "006_big.sql", "SELECT 1;\n" * 100)
    write(mdir, "007_a.sql", "SELECT 1;\n")
    write(mdir, "7_b.sql", "SELECT 1;\n")
    write(mdir, "init.sql", "SELECT 1;\n")
    before = catalog_snapshot(db)

    run = migrate(mdir, check=check, max_file_size=500)

    assert run.rc == 2, run.output
    assert "Traceback" not in run.output and "Errno" not in run.output
    msg = run.result["msg"]
    assert msg.startswith(f"migration files in {mdir} are not valid, nothing was applied: ")
    assert run.result["problems"] == [
        "002_dangling.sql: a symbolic link to gone.sql, which does not exist; point it at a file or remove it",
        "003_outside.sql: a symbolic link to %s, outside the migrations directory"
        % os.path.realpath(tmp_path / "outside/x.sql"),
        "004_dir.sql: a directory, not a file; migrations are NNN_description.sql files directly in path: "
        "rename it or move it out",
        "005_latin1.sql: not valid UTF-8 (byte 0xe9 at line 1); save the file as UTF-8",
        "006_big.sql: 1000 bytes is larger than max_file_size (500)",
        "008_loop_a.sql: a symbolic link to 009_loop_b.sql that loops back on itself; point it at a file or remove it",
        "009_loop_b.sql: a symbolic link to 008_loop_a.sql that loops back on itself; point it at a file or remove it",
        "007_a.sql and 7_b.sql: duplicate version 7",
        "init.sql: the name does not match NNN_description.sql",
    ]
    for problem in run.result["problems"]:
        assert problem in msg
    assert catalog_snapshot(db) == before


# --- another tool's history table in the way -----------------------------------------

@pytest.mark.parametrize("check", [False, True], ids=["run", "check"])
@pytest.mark.parametrize("ddl, columns, tool", [
    ("CREATE TABLE schema_migrations (version bigint NOT NULL PRIMARY KEY, dirty boolean NOT NULL);"
     "INSERT INTO schema_migrations VALUES (20240101, false)",
     "version bigint, dirty boolean, without name", "It looks like golang-migrate's history table"),
    ("CREATE TABLE schema_migrations (version varchar(128) PRIMARY KEY)",
     "version character varying(128), without name", "It looks like Rails' or dbmate's history table"),
    ("CREATE TABLE schema_migrations (id serial, label text)",
     "id integer, label text, without version or name", "Another tool probably keeps it"),
], ids=["golang-migrate", "dbmate", "unknown"])
def test_another_tools_history_table_is_described_by_its_columns(db, migrate, mdir, ddl, columns, tool, check):
    db.sql(ddl)
    write(mdir, "001_a.sql", "CREATE TABLE a (id int);\n")
    before = catalog_snapshot(db)

    run = migrate(mdir, check=check)

    assert run.rc == 2
    msg = run.result["msg"]
    assert "no version/name columns" not in msg
    assert ('the history table public.schema_migrations exists but is not one this tool can use: its columns '
            f'are {columns}. {tool}') in msg
    assert ("Nothing was applied. Give this tool a history table of its own with the table option (the role "
            "variable db_deploy_table)") in msg
    assert "rename or move it (ALTER TABLE" in msg
    assert catalog_snapshot(db) == before

    other = migrate(mdir, table="app_migrations")  # what the message says to do
    assert other.rc == 0, other.output
    assert recorded(db, "app_migrations") == ["001"]
