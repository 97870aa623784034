"""The module's answers for a path without migrations, bad entries in it, a retry over an
invalid index, retry messages, another tool's history table. Every case runs
postgresql_migrate through ansible-playbook against a real PostgreSQL."""

from __future__ import annotations

import os

import pytest
from tests.support.db_state import catalog_snapshot

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
@pytest.mark.parametrize(
    "layout, says",
    [
        (
            diesel_layout,
            [
                "2 subfolders with an up.sql (2024-01-01-000000_create_users/up.sql, "
                "2024-02-01-000000_add_tasks/up.sql), the layout of diesel and similar tools",
                "this tool applies NNN_description.sql files placed directly in path",
                "2024-01-01-000000_create_users/up.sql -> 001_create_users.sql",
            ],
        ),
        (
            lambda m: None,
            [
                "holds no migration file (NNN_description.sql, directly in it): it is empty. "
                "Nothing was applied; point path at the directory that holds the NNN_description.sql files"
            ],
        ),
        (
            lambda m: (write(m, "README.md", "# docs\n"), write(m, "schema.sql.bak", "x"), write(m, "migrations/001_a.sql", "CREATE TABLE a (id int);\n")),
            ["subfolder holding NNN_description.sql files: migrations; other files: README.md, schema.sql.bak", "point path at the subfolder that holds them"],
        ),
    ],
    ids=["diesel", "empty", "one-level-up"],
)
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
@pytest.mark.parametrize(
    "make_path, says",
    [
        (lambda tmp: tmp / "no-such-dir", "does not exist"),
        (lambda tmp: write(tmp, "001_a.sql", "SELECT 1;\n"), "is not a directory"),
    ],
    ids=["missing", "a-file"],
)
def test_path_that_is_not_a_directory_is_an_error_even_with_allow_empty(db, migrate, tmp_path, make_path, says, allow_empty):
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
        "003_outside.sql: a symbolic link to %s, outside the migrations directory" % os.path.realpath(tmp_path / "outside/x.sql"),
        "004_dir.sql: a directory, not a file; migrations are NNN_description.sql files directly in path: rename it or move it out",
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
@pytest.mark.parametrize(
    "ddl, columns, tool",
    [
        (
            "CREATE TABLE schema_migrations (version bigint NOT NULL PRIMARY KEY, dirty boolean NOT NULL);"
            "INSERT INTO schema_migrations VALUES (20240101, false)",
            "version bigint, dirty boolean, without name",
            "It looks like golang-migrate's history table",
        ),
        (
            "CREATE TABLE schema_migrations (version varchar(128) PRIMARY KEY)",
            "version character varying(128), without name",
            "It looks like Rails' or dbmate's history table",
        ),
        ("CREATE TABLE schema_migrations (id serial, label text)", "id integer, label text, without version or name", "Another tool probably keeps it"),
    ],
    ids=["golang-migrate", "dbmate", "unknown"],
)
def test_another_tools_history_table_is_described_by_its_columns(db, migrate, mdir, ddl, columns, tool, check):
    db.sql(ddl)
    write(mdir, "001_a.sql", "CREATE TABLE a (id int);\n")
    before = catalog_snapshot(db)

    run = migrate(mdir, check=check)

    assert run.rc == 2
    msg = run.result["msg"]
    assert "no version/name columns" not in msg
    assert (f'the history table public.schema_migrations exists but is not one this tool can use: its columns are {columns}. {tool}') in msg
    assert ("Nothing was applied. Give this tool a history table of its own with the table option (the role variable db_deploy_table)") in msg
    assert "rename or move it (ALTER TABLE" in msg
    assert catalog_snapshot(db) == before

    other = migrate(mdir, table="app_migrations")  # what the message says to do
    assert other.rc == 0, other.output
    assert recorded(db, "app_migrations") == ["001"]


# --- a no-transaction retry never records an invalid index ---------------------------

UNIQUE_IF_NOT_EXISTS = "-- postgresql_migrate: no-transaction\nCREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS t_c_key ON t (c);\n"


def failed_unique_index(db, migrate, mdir, index_sql=UNIQUE_IF_NOT_EXISTS):
    """001 makes a table with duplicate rows; 002's unique index build fails and leaves it invalid."""
    write(mdir, "001_t.sql", "CREATE TABLE t (id int PRIMARY KEY, c int);\nINSERT INTO t VALUES (1, 1), (2, 1);\n")
    write(mdir, "002_index.sql", index_sql)
    first = migrate(mdir)
    assert first.rc == 2 and "SQLSTATE 23505" in first.result["msg"], first.output
    assert db.sql("SELECT indisvalid FROM pg_index WHERE indexrelid = 't_c_key'::regclass") == [(False,)]
    db.sql("DELETE FROM t WHERE id = 2")  # the data is fixed


@pytest.mark.parametrize("check", [False, True], ids=["run", "check"])
def test_retry_of_an_index_left_invalid_is_refused_before_anything_runs(db, migrate, mdir, check):
    failed_unique_index(db, migrate, mdir)
    before = catalog_snapshot(db)

    retry = migrate(mdir, retry_incomplete=["002"], check=check)

    assert retry.rc == 2, retry.output
    assert (
        "nothing was applied%s: 002_index.sql line 2: index public.t_c_key is invalid, left by an earlier failed "
        "build; the retry would keep it (IF NOT EXISTS) or fail on it, and an invalid index enforces nothing. Drop "
        "it with DROP INDEX CONCURRENTLY public.t_c_key; and fix what made the build fail (for a unique index, the "
        'duplicate rows), then rerun with retry_incomplete: ["002"]' % (" (check mode)" if check else "")
    ) in retry.result["msg"]
    assert recorded(db) == ["001"]  # never recorded: duplicates would be accepted from then on
    assert catalog_snapshot(db) == before
    assert db.sql("SELECT version FROM schema_migrations_incomplete") == [("002",)]

    db.sql("DROP INDEX CONCURRENTLY t_c_key")  # what the message says
    fixed = migrate(mdir, retry_incomplete=["002"])
    assert fixed.rc == 0, fixed.output
    assert recorded(db) == ["001", "002"]
    assert db.sql("SELECT indisvalid, indisunique FROM pg_index WHERE indexrelid = 't_c_key'::regclass") == [(True, True)]


def test_retry_does_not_record_an_invalid_index_that_if_not_exists_skipped(db, migrate, mdir):
    """The file sets its own search_path, so only its session knows which t it means: the index is
    resolved there, after the statement, in its table's schema (app), where a valid index of the
    same name in public must not vouch for it."""
    write(
        mdir,
        "001_t.sql",
        "CREATE SCHEMA app;\nCREATE TABLE app.t (id int PRIMARY KEY, c int);\n"
        "INSERT INTO app.t VALUES (1, 1), (2, 1);\n"
        "CREATE TABLE public.decoy (c int);\nCREATE INDEX t_c_key ON public.decoy (c);\n",
    )
    write(
        mdir,
        "002_index.sql",
        "-- postgresql_migrate: no-transaction\nSET search_path = app, public;\nCREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS t_c_key ON t (c);\n",
    )
    assert migrate(mdir).rc == 2
    db.sql("DELETE FROM app.t WHERE id = 2")  # the data is fixed

    retry = migrate(mdir, retry_incomplete=["002"])

    assert retry.rc == 2, retry.output
    msg = retry.result["msg"]
    assert (
        "migration 002 failed at 002_index.sql line 3: index app.t_c_key is invalid (pg_index.indisvalid is false): it enforces nothing and no query uses it"
    ) in msg
    assert "002 is a no-transaction migration: all its statements ran, but it is not recorded as applied" in msg
    assert (
        'Drop it (DROP INDEX CONCURRENTLY app.t_c_key;) and fix what made the build fail (for a unique index, '
        'the duplicate rows); then rerun with retry_incomplete: ["002"].'
    ) in msg
    assert retry.status_of()["002"] == "failed"
    assert recorded(db) == ["001"]
    assert db.sql("SELECT version, error LIKE 'line 3: index app.t_c_key is invalid%' FROM schema_migrations_incomplete") == [("002", True)]
    again = migrate(mdir)  # the next run still stops, explaining the retry
    assert again.rc == 2 and 'retry_incomplete: ["002"]' in again.result["msg"]

    db.sql("DROP INDEX CONCURRENTLY app.t_c_key")
    fixed = migrate(mdir, retry_incomplete=["002"])
    assert fixed.rc == 0, fixed.output
    assert recorded(db) == ["001", "002"]


def test_retry_of_reindex_concurrently_refuses_its_ccnew_leftover(db, migrate, mdir):
    """A failed REINDEX CONCURRENTLY leaves <index>_ccnew invalid; a retry that succeeds builds a
    new copy and leaves the old leftover behind."""
    write(mdir, "001_t.sql", "CREATE TABLE t (id int PRIMARY KEY, c int);\nCREATE INDEX t_c_idx ON t (c);\nINSERT INTO t VALUES (1, 1);\n")
    assert migrate(mdir).rc == 0
    write(mdir, "002_reindex.sql", "-- postgresql_migrate: no-transaction\nREINDEX INDEX CONCURRENTLY t_c_idx;\n")
    with db.open_transaction("INSERT INTO t VALUES (2, 2)"):  # abandoned: the reindex waits, then times out
        first = migrate(mdir, concurrent_lock_timeout="1s", lock_retries=0)
    assert first.rc == 2
    assert "invalid index left: public.t_c_idx_ccnew" in first.result["msg"], first.result["msg"]
    assert "DROP INDEX CONCURRENTLY public.t_c_idx_ccnew;" in first.result["msg"]

    retry = migrate(mdir, retry_incomplete=["002"])

    assert retry.rc == 2, retry.output
    assert "index public.t_c_idx_ccnew is invalid" in retry.result["msg"]
    assert recorded(db) == ["001"]


def test_partitioned_index_left_without_every_partition_is_not_recorded(db, migrate, mdir):
    write(
        mdir,
        "001_p.sql",
        "CREATE TABLE p (id int, c int) PARTITION BY RANGE (id);\n"
        "CREATE TABLE p1 PARTITION OF p FOR VALUES FROM (0) TO (10);\n"
        "CREATE TABLE p2 PARTITION OF p FOR VALUES FROM (10) TO (20);\n",
    )
    write(
        mdir,
        "002_index.sql",
        "-- postgresql_migrate: no-transaction\n"
        "CREATE INDEX IF NOT EXISTS p_c_idx ON ONLY p (c);\n"
        "CREATE INDEX CONCURRENTLY IF NOT EXISTS p1_c_idx ON p1 (c);\n"
        "ALTER INDEX p_c_idx ATTACH PARTITION p1_c_idx;\n",
    )  # p2 forgotten

    run = migrate(mdir)

    assert run.rc == 2, run.output
    msg = run.result["msg"]
    assert "002_index.sql line 2: index public.p_c_idx is invalid" in msg
    assert "a partitioned index stays invalid until an index of every partition is attached to it" in msg
    assert "Attach an index of every remaining partition to public.p_c_idx" in msg
    assert recorded(db) == ["001"]

    write(
        mdir,
        "002_index.sql",
        (mdir / "002_index.sql").read_text() + "CREATE INDEX CONCURRENTLY IF NOT EXISTS p2_c_idx ON p2 (c);\nALTER INDEX p_c_idx ATTACH PARTITION p2_c_idx;\n",
    )
    fixed = migrate(mdir, retry_incomplete=["002"])
    assert fixed.rc == 0, fixed.output
    assert recorded(db) == ["001", "002"]


# --- retry messages name the right statement and line -------------------------------


def test_failure_at_the_first_statement_says_no_statement_completed(db, migrate, mdir):
    write(mdir, "001_t.sql", "CREATE TABLE t (id int PRIMARY KEY, c int);\nINSERT INTO t VALUES (1, 1), (2, 1);\n")
    write(
        mdir,
        "002_index.sql",
        "-- postgresql_migrate: no-transaction\nCREATE UNIQUE INDEX CONCURRENTLY t_c_key ON t (c);\nCREATE INDEX CONCURRENTLY t_id_idx ON t (id);\n",
    )

    first = migrate(mdir)

    msg = first.result["msg"]
    assert first.rc == 2
    assert "002_index.sql line 2: SQLSTATE 23505" in msg
    assert "statements before line 2" not in msg
    assert (
        "002 is a no-transaction migration: it stopped at its first statement (line 2), so no statement of it completed in this run; it is marked incomplete"
    ) in msg
    assert (
        "invalid index left: public.t_c_key. A failed CREATE UNIQUE INDEX CONCURRENTLY (this attempt or an "
        "earlier one) leaves its new index invalid: drop it with DROP INDEX CONCURRENTLY public.t_c_key; before "
        "the retry"
    ) in msg

    # Retried as it is, without dropping the index: the CREATE would fail on its own leftover.
    db.sql("DELETE FROM t WHERE id = 2")
    retry = migrate(mdir, retry_incomplete=["002"])
    assert retry.rc == 2
    assert ("nothing was applied: 002_index.sql line 2: index public.t_c_key is invalid, left by an earlier failed build") in retry.result["msg"]
    assert recorded(db) == ["001"]


def test_failed_retry_does_not_blame_an_earlier_statements_invalid_index(db, migrate, mdir):
    # The file's own search_path keeps the retry from being refused up front: its statements run.
    failed_unique_index(
        db,
        migrate,
        mdir,
        "-- postgresql_migrate: no-transaction\n"
        "SET search_path = public;\n"
        "CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS t_c_key ON t (c);\n"
        "\n-- a second index, on a column the file gets wrong\n"
        "CREATE INDEX CONCURRENTLY t_d_idx\n    ON t (nope);\n",
    )

    retry = migrate(mdir, retry_incomplete=["002"])  # line 3 skips the invalid t_c_key; line 6 fails

    msg = retry.result["msg"]
    assert retry.rc == 2
    assert 'migration 002 failed at 002_index.sql line 6: SQLSTATE 42703: column "nope" does not exist' in msg
    assert "t_c_key" not in msg  # once: "invalid indexes in the database now: public.t_c_key ... drop it"
    assert ("statements before line 6 ran again and stayed applied; what an earlier run of it did stays as that run left it") in msg
    assert db.sql("SELECT error FROM schema_migrations_incomplete")[0][0] == ('line 6: SQLSTATE 42703: column "nope" does not exist')
