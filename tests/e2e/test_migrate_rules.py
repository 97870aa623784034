"""Every promise of postgresql_migrate, one test each, against a real PostgreSQL."""

from __future__ import annotations

import json
import threading
import time
import uuid

import pytest
from tests.support.db_state import catalog_snapshot
from tests.support.migrate_runner import run_migrate

pytestmark = pytest.mark.e2e


def write(directory, name, sql, mode="w"):
    path = directory / name
    if isinstance(sql, bytes):
        path.write_bytes(sql)
    else:
        path.write_text(sql)
    return path


def make_three(mdir):
    write(mdir, "001_one.sql", "CREATE TABLE one (id int PRIMARY KEY);\nINSERT INTO one VALUES (1);\n")
    write(mdir, "002_two.sql", "CREATE TABLE two (id int PRIMARY KEY);\n")
    write(mdir, "010_ten.sql", "CREATE TABLE ten (id int PRIMARY KEY);\n")


def recorded(db, table="schema_migrations"):
    return [v for (v,) in db.sql(f"SELECT version FROM {table} ORDER BY version")]


# --- failures ---------------------------------------------------------------


def test_failure_rolls_back_that_migration_and_stops(db, migrate, mdir):
    make_three(mdir)
    write(
        mdir,
        "003_broken.sql",
        "-- adds a table, then fails\n"
        "CREATE TABLE half_done (id int);\n"
        "\n"
        "INSERT INTO half_done\n"
        "  SELECT id FROM no_such_table;\n"
        "CREATE TABLE after_error (id int);\n",
    )

    run = migrate(mdir)

    assert run.rc == 2
    msg = run.result["msg"]
    assert "migration 003 failed at 003_broken.sql line 5" in msg
    assert "SQLSTATE 42P01" in msg and 'relation "no_such_table" does not exist' in msg
    assert "Applied by this run before it: 001, 002" in msg
    assert run.result["failed_migration"]["line"] == 5
    assert run.result["failed_migration"]["sqlstate"] == "42P01"
    assert run.status_of() == {"001": "applied", "002": "applied", "003": "failed", "010": "skipped"}
    assert run.result["changed"] is True
    # Earlier ones stay, nothing of 003 remains, later ones did not run.
    assert db.tables() == ["one", "schema_migrations", "two"]
    assert recorded(db) == ["001", "002"]
    assert "migration 003 failed" in run.stdout  # what the person at the terminal reads


def test_error_without_position_reports_the_statement_line(db, migrate, mdir):
    write(mdir, "001_dupes.sql", "CREATE TABLE u (id int PRIMARY KEY);\nINSERT INTO u VALUES (1);\nINSERT INTO u\n  VALUES (1);\n")

    run = migrate(mdir)

    assert run.rc == 2
    assert run.result["failed_migration"]["line"] == 3
    assert run.result["failed_migration"]["sqlstate"] == "23505"
    assert db.tables() == []


def test_fixed_file_converges_after_a_failure(db, migrate, mdir):
    make_three(mdir)
    write(mdir, "003_broken.sql", "CREATE TABLE three (id int);\nSELEC 1;\n")
    first = migrate(mdir)
    assert first.rc == 2
    assert first.result["failed_migration"]["line"] == 2
    assert "syntax error" in first.result["msg"]

    write(mdir, "003_broken.sql", "CREATE TABLE three (id int);\nSELECT 1;\n")
    second = migrate(mdir)

    assert second.rc == 0, second.output
    assert second.status_of() == {"001": "already_applied", "002": "already_applied", "003": "applied", "010": "applied"}
    assert recorded(db) == ["001", "002", "003", "010"]


# --- drift, missing, order --------------------------------------------------


def test_changed_applied_file_stops_the_run_before_anything(db, migrate, mdir):
    make_three(mdir)
    assert migrate(mdir).rc == 0
    write(mdir, "002_two.sql", "CREATE TABLE two (id int PRIMARY KEY, extra text);\n")
    write(mdir, "011_new.sql", "CREATE TABLE new_one (id int);\n")

    run = migrate(mdir)

    assert run.rc == 2
    assert "002_two.sql" in run.result["msg"] and 'accept_checksums: ["002"]' in run.result["msg"]
    assert run.result["drifted"] == ["002"]
    assert "new_one" not in db.tables()
    dry = migrate(mdir, check=True)
    assert dry.rc == 2 and dry.result["drifted"] == ["002"]


def test_accept_checksums_records_the_new_checksum_without_rerunning(db, migrate, mdir):
    make_three(mdir)
    assert migrate(mdir).rc == 0
    old = db.sql("SELECT checksum FROM schema_migrations WHERE version = '002'")
    write(mdir, "002_two.sql", "-- a comment added later\nCREATE TABLE two (id int PRIMARY KEY);\n")

    run = migrate(mdir, accept_checksums=["002"])

    assert run.rc == 0, run.output
    entry = [m for m in run.result["migrations"] if m["version"] == "002"][0]
    assert entry["checksum_accepted"] is True and entry["status"] == "already_applied"
    assert db.sql("SELECT checksum FROM schema_migrations WHERE version = '002'") != old
    assert migrate(mdir).result["changed"] is False


def test_line_endings_and_bom_are_not_drift(db, migrate, mdir):
    write(mdir, "001_one.sql", "CREATE TABLE one (id int);\nINSERT INTO one VALUES (1);\n")
    assert migrate(mdir).rc == 0
    write(mdir, "001_one.sql", b"\xef\xbb\xbfCREATE TABLE one (id int);\r\nINSERT INTO one VALUES (1);\r\n")

    run = migrate(mdir)

    assert run.rc == 0, run.output
    assert run.result["changed"] is False


def test_recorded_version_without_file_is_reported_not_fatal(db, migrate, mdir):
    make_three(mdir)
    assert migrate(mdir).rc == 0
    (mdir / "002_two.sql").unlink()

    run = migrate(mdir)

    assert run.rc == 0
    assert run.result["missing"] == ["002"]
    assert "no file in the migrations directory: 002" in run.stderr + run.stdout


def test_out_of_order_version_is_refused_unless_allowed(db, migrate, mdir):
    make_three(mdir)
    assert migrate(mdir).rc == 0
    write(mdir, "005_late.sql", "CREATE TABLE late (id int);\n")

    refused = migrate(mdir)
    assert refused.rc == 2
    assert "005_late.sql is pending but version 010 is already applied" in refused.result["msg"]
    assert "late" not in db.tables()

    allowed = migrate(mdir, allow_out_of_order=True)
    assert allowed.rc == 0
    assert allowed.status_of()["005"] == "applied"
    assert "late" in db.tables()


# --- bad input: refused before anything is written -------------------------


@pytest.mark.parametrize(
    "name,content,expected",
    [
        ("001_a.sql", None, "duplicate version 1"),
        ("1-bad-name.sql", "SELECT 1;", "does not match NNN_description.sql"),
        ("003_latin1.sql", b"SELECT 'caf\xe9';", "not valid UTF-8"),
        ("003_tx.sql", "BEGIN;\nCREATE TABLE t (id int);\nCOMMIT;\n", "line 1: top-level BEGIN"),
        ("003_empty.sql", "-- nothing here\n", "contains no SQL statement"),
        ("003_conc.sql", "CREATE INDEX CONCURRENTLY one_idx ON one (id);\n", "cannot run inside a transaction block"),
        ("003_meta.sql", "\\i other.sql\n", "psql meta-command"),
        (
            "003_seed.sql",
            "CREATE TABLE colours (id int, name text);\nCOPY colours (id, name) FROM stdin;\n1\tred\n\\.\n",
            "003_seed.sql line 2: COPY ... FROM STDIN streams rows through the client",
        ),
        (
            "003_enc.sql",
            "CREATE TABLE cafes (name text);\nSET client_encoding = 'LATIN1';\nINSERT INTO cafes VALUES ('café');\n",
            "003_enc.sql line 2: SET client_encoding to LATIN1 in a file with non-ASCII characters",
        ),
        (
            "003_discard.sql",
            "-- postgresql_migrate: no-transaction\nCREATE INDEX CONCURRENTLY one_idx ON one (id);\nDISCARD ALL;\n",
            "003_discard.sql line 3: DISCARD ALL would release the run's migration lock",
        ),
        (
            "003_unlock.sql",
            "CREATE TABLE t (id int);\nSELECT pg_advisory_unlock_all();\n",
            "003_unlock.sql line 2: pg_advisory_unlock_all() would release the run's migration lock",
        ),
    ],
)
def test_bad_files_are_refused_before_anything_is_written(db, migrate, mdir, name, content, expected):
    make_three(mdir)
    write(mdir, "1_dup.sql" if content is None else name, content if content is not None else "SELECT 1;")
    before = catalog_snapshot(db)

    run = migrate(mdir)

    assert run.rc == 2
    assert expected in run.result["msg"]
    assert "nothing was applied" in run.result["msg"]
    assert catalog_snapshot(db) == before


def test_check_mode_refuses_the_statements_a_real_run_refuses(db, migrate, mdir):
    """The dry run (and the plan of every deploy) checks the files it would run as a real run
    does: every refused statement named, nothing written."""
    make_three(mdir)
    write(mdir, "003_many.sql", "BEGIN;\nSELECT pg_advisory_unlock_all();\nDISCARD ALL;\nCOPY one FROM stdin;\n1\n\\.\nCOMMIT;\n")
    before = catalog_snapshot(db)

    dry = migrate(mdir, check=True)

    assert dry.rc == 2
    for expected in (
        "003_many.sql line 1: top-level BEGIN",
        "003_many.sql line 2: pg_advisory_unlock_all() would release the run's migration lock",
        "003_many.sql line 3: DISCARD ALL would release the run's migration lock",
        "003_many.sql line 4: COPY ... FROM STDIN streams rows through the client",
        "003_many.sql line 7: top-level COMMIT",
        "nothing was applied",
    ):
        assert expected in dry.result["msg"], expected
    assert catalog_snapshot(db) == before


def test_history_table_name_injection_is_refused(db, migrate, mdir):
    make_three(mdir)
    run = migrate(mdir, table="x; DROP TABLE users; --")
    assert run.rc == 2
    assert "is not a plain identifier" in run.result["msg"]
    assert db.tables() == []


def test_custom_history_table_in_its_own_schema(db, migrate, mdir):
    make_three(mdir)
    db.sql("CREATE SCHEMA deploy")

    run = migrate(mdir, table="deploy.history")

    assert run.rc == 0, run.output
    assert recorded(db, "deploy.history") == ["001", "002", "010"]
    assert migrate(mdir, table="deploy.history").result["changed"] is False


@pytest.mark.parametrize("no_transaction", [False, True], ids=["in-a-transaction", "no-transaction"])
def test_a_migrations_session_settings_do_not_reach_the_next_one_or_the_history(db, migrate, mdir, no_transaction):
    """Each file runs as in a session of its own (like psql -f): a plain SET of a timeout,
    search_path or role in 001 holds neither for 002 nor for the history row of 001."""
    role = "mig_" + db.name[-8:]
    db.sql(f'CREATE ROLE "{role}"')  # may not write schema_migrations
    try:
        header = "-- postgresql_migrate: no-transaction\n" if no_transaction else ""
        write(
            mdir,
            "001_settings.sql",
            header + "CREATE SCHEMA elsewhere;\n"
            "SET lock_timeout = '10min';\nSET statement_timeout = 0;\n"
            "SET search_path = elsewhere, public;\n"
            f'SET ROLE "{role}";\n',
        )
        write(
            mdir,
            "002_look.sql",
            "CREATE TABLE seen AS SELECT current_setting('lock_timeout') AS lock_timeout, "
            "current_setting('statement_timeout') AS statement_timeout, "
            "current_setting('search_path') AS search_path, current_user::text AS who;\n",
        )

        run = migrate(mdir, lock_timeout="4s", statement_timeout="2min")

        assert run.rc == 0, run.output
        assert recorded(db) == ["001", "002"]
        assert db.sql("SELECT * FROM public.seen") == [("4s", "2min", '"$user", public', db.login_params()["login_user"])]
        assert db.sql("SELECT to_regclass('elsewhere.schema_migrations')") == [(None,)]
    finally:
        db.sql(f'DROP OWNED BY "{role}"; DROP ROLE "{role}"')


@pytest.mark.parametrize("prefix", ["owner_", "owner%s 100% "], ids=["plain", "percent-signs"])
def test_session_role_is_the_role_of_every_migration_and_of_the_history(db, migrate, mdir, prefix):
    role = prefix + db.name[-8:]
    db.sql(f'CREATE ROLE "{role}"; GRANT CREATE ON SCHEMA public TO "{role}"')
    try:
        write(mdir, "001_first.sql", "CREATE TABLE first_t (id int);\nRESET ROLE;\n")
        write(mdir, "002_second.sql", "CREATE TABLE second_t AS SELECT current_user::text AS who;\n")

        run = migrate(mdir, session_role=role)

        assert run.rc == 0, run.output
        assert db.sql("SELECT who FROM second_t") == [(role,)]
        assert db.sql("SELECT tableowner FROM pg_tables WHERE tablename IN ('first_t', 'second_t', 'schema_migrations') GROUP BY tableowner") == [(role,)]
        assert recorded(db) == ["001", "002"]
    finally:
        db.sql(f'DROP OWNED BY "{role}"; DROP ROLE "{role}"')


@pytest.mark.parametrize("no_transaction", [False, True], ids=["in-a-transaction", "no-transaction"])
def test_a_migrations_temporary_table_is_gone_for_the_next_one(db, migrate, mdir, no_transaction):
    """Two data migrations that each stage rows in a temporary table of the same name: applied
    in one run (a fresh database) as in two, the second must not find the first's table."""
    header = "-- postgresql_migrate: no-transaction\n" if no_transaction else ""
    write(mdir, "001_seed_colours.sql", header + "CREATE TEMP TABLE staging AS SELECT 'red'::text AS v;\nCREATE TABLE colours AS SELECT v FROM staging;\n")
    write(mdir, "002_seed_sizes.sql", "CREATE TEMP TABLE staging AS SELECT 'large'::text AS v;\nCREATE TABLE sizes AS SELECT v FROM staging;\n")

    run = migrate(mdir)

    assert run.rc == 0, run.output
    assert recorded(db) == ["001", "002"]
    assert db.sql("SELECT v FROM colours") == [("red",)] and db.sql("SELECT v FROM sizes") == [("large",)]


def test_no_transaction_migration_that_switches_role_keeps_its_progress_marker(db, migrate, mdir):
    """CREATE INDEX CONCURRENTLY must run as the table's owner; a file that SETs that role
    must still have its progress recorded, and its failure reported at its own line."""
    role = "tabowner_" + db.name[-8:]
    db.sql(f'CREATE ROLE "{role}"; GRANT CREATE ON SCHEMA public TO "{role}"; CREATE TABLE things (id int, label text); ALTER TABLE things OWNER TO "{role}"')
    try:
        write(
            mdir,
            "001_index.sql",
            "-- postgresql_migrate: no-transaction\n"
            f'SET ROLE "{role}";\n'
            "CREATE INDEX CONCURRENTLY things_id_idx ON things (id);\n"
            "CREATE INDEX CONCURRENTLY things_bad_idx ON things (no_such_column);\n",
        )

        failed = migrate(mdir)

        assert failed.rc == 2
        assert "001_index.sql line 4" in failed.result["msg"], failed.result["msg"]
        assert 'column "no_such_column" does not exist' in failed.result["msg"]
        assert db.sql("SELECT version, statement, error LIKE 'line 4:%' FROM schema_migrations_incomplete") == [("001", 3, True)]

        write(
            mdir,
            "001_index.sql",
            "-- postgresql_migrate: no-transaction\n"
            f'SET ROLE "{role}";\n'
            "CREATE INDEX CONCURRENTLY IF NOT EXISTS things_id_idx ON things (id);\n"
            "CREATE INDEX CONCURRENTLY things_label_idx ON things (label);\n",
        )
        retried = migrate(mdir, retry_incomplete=["001"])

        assert retried.rc == 0, retried.output
        assert recorded(db) == ["001"]
        assert db.sql("SELECT count(*) FROM schema_migrations_incomplete") == [(0,)]
        assert db.sql("SELECT indexrelid::regclass::text FROM pg_index WHERE indrelid = 'things'::regclass ORDER BY 1") == [
            ("things_id_idx",),
            ("things_label_idx",),
        ]
    finally:
        db.sql(f'DROP OWNED BY "{role}"; DROP ROLE "{role}"')


def test_no_transaction_file_that_makes_the_session_read_only_fails_at_its_own_line(db, migrate, mdir):
    """The file's read-only default reaches its own next statement, which fails where it is
    written; the module's progress marker is still written (its transactions are READ WRITE)."""
    write(mdir, "001_ro.sql", "-- postgresql_migrate: no-transaction\nSET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY;\nCREATE TABLE not_made (id int);\n")

    run = migrate(mdir)

    assert run.rc == 2
    assert run.result["failed_migration"]["line"] == 3
    assert run.result["failed_migration"]["statement"] == "CREATE TABLE not_made (id int)"
    assert "001_ro.sql line 3: SQLSTATE 25006: cannot execute CREATE TABLE in a read-only transaction" in run.result["msg"]
    assert db.sql("SELECT version, statement, error LIKE 'line 3:%' FROM schema_migrations_incomplete") == [("001", 2, True)]
    assert "not_made" not in db.tables()


def test_error_inside_a_do_block_names_the_line_of_the_block(db, migrate, mdir):
    write(mdir, "001_do.sql", "-- backfill\n\nDO $$\nBEGIN\n  PERFORM 1;\n  INSERT INTO no_such_table VALUES (1);\nEND\n$$;\n")

    run = migrate(mdir)

    assert run.rc == 2
    assert "001_do.sql line 3: SQLSTATE 42P01" in run.result["msg"]
    assert "CONTEXT: PL/pgSQL function inline_code_block line 4 at SQL statement" in run.result["msg"]


def test_a_password_in_a_migration_is_never_shown(db, migrate, mdir):
    """A failed statement, the context of dynamic SQL and --diff show SQL: never a password in it."""
    role = "no_role_" + uuid.uuid4().hex[:8]
    write(mdir, "001_role.sql", f"CREATE TABLE kept_out (id int);\nALTER ROLE {role} WITH PASSWORD 'Sx-lit-one';\n")

    failed = migrate(mdir)

    assert failed.rc == 2 and failed.result["failed_migration"]["sqlstate"] == "42704"
    assert failed.result["failed_migration"]["statement"] == f"ALTER ROLE {role} WITH PASSWORD ********"
    write(mdir, "001_role.sql", f"DO $$BEGIN EXECUTE 'ALTER ROLE {role} PASSWORD ''Sx-dyn-two'''; END$$;\n")

    dynamic = migrate(mdir)

    assert dynamic.rc == 2
    assert f"CONTEXT: SQL statement \"ALTER ROLE {role} PASSWORD ********" in dynamic.result["msg"]
    # Double quotes for single: the server's message quotes the token it stopped at.
    write(mdir, "001_role.sql", f"ALTER ROLE {role} PASSWORD \"Sx-typo-five\";\n")

    typo = migrate(mdir)

    assert typo.rc == 2 and typo.result["failed_migration"]["sqlstate"] == "42601"
    assert typo.result["failed_migration"]["message"] == 'syntax error at or near "********"'
    assert "001_role.sql line 1: SQLSTATE 42601: syntax error at or near \"********\"" in typo.result["msg"]
    write(
        mdir,
        "001_role.sql",
        f"CREATE ROLE {role} LOGIN ENCRYPTED PASSWORD 'Sx-diff-3';\n"
        f"CREATE SUBSCRIPTION s_{role} CONNECTION 'host=db password=Sx-conninfo-4 dbname=x' PUBLICATION p;\n",
    )

    dry = migrate(mdir, check=True, diff=True)

    assert dry.rc == 0, dry.output
    assert f"CREATE ROLE {role} LOGIN ENCRYPTED PASSWORD ********;" in dry.stdout
    assert "CONNECTION 'host=db password=******** dbname=x' PUBLICATION p;" in dry.stdout
    for run in (failed, dynamic, typo, dry):
        assert "Sx-" not in run.output + json.dumps(run.result)
    assert db.tables() == []


@pytest.mark.parametrize("check", [False, True], ids=["run", "check"])
def test_version_too_long_for_the_apps_history_column_is_refused_before_anything(db, migrate, mdir, repo_root, check):
    """The app's 000 makes version VARCHAR(10); a timestamp-style version does not fit."""
    write(mdir, "000_create_migrations_table.sql", (repo_root / "migrations" / "000_create_migrations_table.sql").read_text())
    assert migrate(mdir).rc == 0
    write(mdir, "001_one.sql", "CREATE TABLE one (id int);\n")
    write(mdir, "20240101120000_stamped.sql", "CREATE TABLE stamped (id int);\n")

    run = migrate(mdir, check=check)

    assert run.rc == 2
    assert "versions 20240101120000 have more than the 10 characters the history table's version column holds" in run.result["msg"]
    assert "nothing was applied" in run.result["msg"]
    assert db.tables() == ["schema_migrations"]


def test_history_table_in_a_schema_that_does_not_exist_is_not_blamed_on_the_file(db, migrate, mdir):
    make_three(mdir)

    run = migrate(mdir, table="audit.schema_migrations")

    assert run.rc == 2
    assert run.result["msg"].startswith(
        "migration 001 failed while preparing the history table \"audit\".\"schema_migrations\": SQLSTATE 3F000: schema \"audit\" does not exist"
    )
    assert run.result["msg"].endswith(
        "The file's statements succeeded: check the table option, that the login "
        "user (or session_role) may create and write that table in its schema, and "
        "that the file leaves its transaction writable; then rerun."
    )
    assert run.status_of()["001"] == "failed"
    assert db.tables() == []


def test_no_transaction_file_whose_progress_table_cannot_be_created_is_reported_as_failed(db, migrate, mdir):
    user = "deployer_" + db.name[-8:]
    db.sql(
        f'CREATE ROLE "{user}" LOGIN; CREATE TABLE schema_migrations (version varchar(50) PRIMARY KEY, '
        f'name varchar(255), applied_at timestamptz DEFAULT now()); ALTER TABLE schema_migrations OWNER TO "{user}"; '
        f'CREATE TABLE t (id int); ALTER TABLE t OWNER TO "{user}"'
    )
    try:
        write(mdir, "001_index.sql", "-- postgresql_migrate: no-transaction\nCREATE INDEX CONCURRENTLY t_id ON t (id);\n")

        run = migrate(mdir, login_user=user)

        assert run.rc == 2
        msg = run.result["msg"]
        assert msg.startswith(
            'migration 001 failed while creating its progress row in public."schema_migrations_incomplete": SQLSTATE 42501: permission denied for schema public'
        )
        assert "001 is a no-transaction migration: none of its statements ran" in msg
        assert run.status_of()["001"] == "failed"
        assert db.sql("SELECT count(*) FROM pg_indexes WHERE indexname = 't_id'") == [(0,)]
    finally:
        db.sql(f'DROP OWNED BY "{user}"; DROP ROLE "{user}"')


def test_set_session_authorization_in_a_file_does_not_reach_the_history(db, migrate, mdir):
    user = "someone_" + db.name[-8:]
    db.sql(f'CREATE ROLE "{user}"; GRANT CREATE ON SCHEMA public TO "{user}"')
    try:
        write(mdir, "001_as_someone.sql", f'SET SESSION AUTHORIZATION "{user}";\nCREATE TABLE theirs (id int);\n')

        run = migrate(mdir)

        assert run.rc == 0, run.output
        owners = dict(db.sql("SELECT tablename, tableowner FROM pg_tables WHERE schemaname = 'public'"))
        assert owners == {"theirs": user, "schema_migrations": db.login_params()["login_user"]}
        assert recorded(db) == ["001"]
    finally:
        db.sql(f'DROP OWNED BY "{user}"; DROP ROLE "{user}"')


# --- no-transaction migrations ----------------------------------------------


def test_no_transaction_migration_runs_outside_a_transaction(db, migrate, mdir):
    make_three(mdir)
    write(mdir, "011_index.sql", "-- postgresql_migrate: no-transaction\nCREATE INDEX CONCURRENTLY IF NOT EXISTS one_id_idx ON one (id);\n")

    run = migrate(mdir)

    assert run.rc == 0, run.output
    entry = run.result["migrations"][-1]
    assert entry["status"] == "applied" and entry["no_transaction"] is True
    assert db.sql("SELECT indisvalid FROM pg_index WHERE indexrelid = 'one_id_idx'::regclass") == [(True,)]
    assert "schema_migrations_incomplete" in db.tables()
    assert db.sql("SELECT count(*) FROM schema_migrations_incomplete") == [(0,)]


def test_failed_no_transaction_migration_is_reported_until_retried(db, migrate, mdir):
    make_three(mdir)
    write(
        mdir,
        "011_index.sql",
        "-- postgresql_migrate: no-transaction\n"
        "CREATE INDEX CONCURRENTLY IF NOT EXISTS one_id_idx ON one (id);\n"
        "CREATE INDEX CONCURRENTLY two_bad_idx ON two (no_such_column);\n",
    )
    write(mdir, "012_after.sql", "CREATE TABLE after_index (id int);\n")
    first = migrate(mdir)
    assert first.rc == 2
    assert "011_index.sql line 3" in first.result["msg"]
    assert "statements before line 3 stayed applied" in first.result["msg"]

    second = migrate(mdir)
    assert second.rc == 2
    assert "left incomplete" in second.result["msg"] and 'retry_incomplete: ["011"]' in second.result["msg"]
    assert second.result["incomplete"][0]["version"] == "011"
    assert "after_index" not in db.tables()

    write(
        mdir,
        "011_index.sql",
        "-- postgresql_migrate: no-transaction\n"
        "CREATE INDEX CONCURRENTLY IF NOT EXISTS one_id_idx ON one (id);\n"
        "CREATE INDEX CONCURRENTLY IF NOT EXISTS two_id_idx ON two (id);\n",
    )
    third = migrate(mdir, retry_incomplete=["011"])
    assert third.rc == 0, third.output
    assert third.status_of()["011"] == "applied" and third.status_of()["012"] == "applied"
    assert db.sql("SELECT count(*) FROM schema_migrations_incomplete") == [(0,)]


# --- locks ------------------------------------------------------------------


def test_lock_held_by_another_run_fails_after_the_wait_naming_the_holder(db, migrate, mdir):
    make_three(mdir)
    holder = db.connect()
    try:
        cur = holder.cursor()
        cur.execute("SET application_name = 'release-41 deploy'")
        cur.execute("SELECT pg_advisory_lock(77)")
        (pid,) = cur.execute("SELECT pg_backend_pid()") or cur.fetchone()
        started = time.monotonic()

        run = migrate(mdir, lock_key=77, lock_wait=2)

        elapsed = time.monotonic() - started
        assert run.rc == 2
        assert "another migration run holds the migration lock" in run.result["msg"]
        assert f"pid {pid}" in run.result["msg"] and "release-41 deploy" in run.result["msg"]
        assert "Nothing was applied; wait for it to finish and rerun" in run.result["msg"]
        assert 2 <= elapsed < 2 + 30  # bounded: lock_wait plus Ansible's own start-up
        assert db.tables() == []
    finally:
        holder.close()


def test_statement_timeout_of_the_database_does_not_cut_the_lock_wait_short(db, migrate, mdir):
    make_three(mdir)
    db.sql(f'ALTER DATABASE "{db.name}" SET statement_timeout = \'500ms\'')
    holder = db.connect()
    try:
        holder.cursor().execute("SELECT pg_advisory_lock(78)")
        started = time.monotonic()

        run = migrate(mdir, lock_key=78, lock_wait=2)

        assert time.monotonic() - started >= 2
        assert run.rc == 2
        assert "another migration run holds the migration lock" in run.result["msg"], run.result["msg"]
        assert db.tables() == []
    finally:
        holder.close()


def test_create_index_concurrently_waits_for_an_unrelated_old_transaction(db, migrate, mdir):
    """CREATE INDEX CONCURRENTLY waits for every older snapshot (a report, a pg_dump); that blocks
    no app query, so lock_timeout must not fail it."""
    write(mdir, "001_big.sql", "CREATE TABLE big (id int);\nCREATE TABLE other (id int);\n")
    assert migrate(mdir).rc == 0
    write(mdir, "002_index.sql", "-- postgresql_migrate: no-transaction\nCREATE INDEX CONCURRENTLY big_id ON big (id);\n")
    with db.open_transaction("SELECT count(*) FROM other", isolation_level="REPEATABLE READ") as report:
        threading.Timer(2.5, report.rollback).start()  # the report ends after 2.5 s

        run = migrate(mdir, lock_timeout="500ms")

        assert run.rc == 0, run.output
        assert db.sql("SELECT indisvalid FROM pg_index WHERE indexrelid = 'big_id'::regclass") == [(True,)]
        assert db.sql("SELECT current_setting('lock_timeout')") == [("0",)]  # the server's, untouched


def test_create_index_concurrently_gives_up_after_concurrent_lock_timeout(db, migrate, mdir):
    """An abandoned transaction must not hang an unattended deploy forever."""
    write(mdir, "001_t.sql", "CREATE TABLE t (id int);\n")
    assert migrate(mdir).rc == 0
    write(mdir, "002_index.sql", "-- postgresql_migrate: no-transaction\nCREATE INDEX CONCURRENTLY t_id ON t (id);\n")
    with db.open_transaction("INSERT INTO t VALUES (1)"):  # abandoned: idle in transaction
        started = time.monotonic()

        run = migrate(mdir, concurrent_lock_timeout="1s", lock_retries=0)

        assert time.monotonic() - started < 30
        assert run.rc == 2
        assert "002_index.sql line 2: SQLSTATE 55P03" in run.result["msg"]
        assert "invalid index left: public.t_id." in run.result["msg"]
        assert "retry it (retry_incomplete) when that session is gone" in run.result["msg"]


def test_failed_create_index_concurrently_names_the_invalid_index_to_drop(db, migrate, mdir):
    write(mdir, "001_t.sql", "CREATE TABLE t (id int);\nINSERT INTO t VALUES (1), (1);\n")
    write(mdir, "002_index.sql", "-- postgresql_migrate: no-transaction\nCREATE UNIQUE INDEX CONCURRENTLY t_id ON t (id);\n")

    run = migrate(mdir)

    assert run.rc == 2
    msg = run.result["msg"]
    assert "002_index.sql line 2: SQLSTATE 23505" in msg
    assert (
        "invalid index left: public.t_id. A failed CREATE UNIQUE INDEX CONCURRENTLY (this attempt or an earlier "
        "one) leaves its new index invalid: drop it with DROP INDEX CONCURRENTLY public.t_id; before the retry"
    ) in msg
    assert db.sql("SELECT error FROM schema_migrations_incomplete")[0][0].startswith(
        "line 2: SQLSTATE 23505: could not create unique index \"t_id\" DETAIL: Key (id)=(1) is duplicated. invalid index left: public.t_id."
    )

    write(mdir, "002_index.sql", f"-- postgresql_migrate: no-transaction\nREINDEX DATABASE not_{db.name[:40]};\n")
    other = migrate(mdir, retry_incomplete=["002"])
    assert other.rc == 2 and "SQLSTATE 0A000" in other.result["msg"]
    assert "invalid indexes" not in other.result["msg"]  # REINDEX DATABASE builds nothing concurrently


def test_table_lock_held_by_the_app_times_out_retries_then_fails(db, migrate, mdir):
    write(mdir, "001_one.sql", "CREATE TABLE one (id int);\n")
    assert migrate(mdir).rc == 0
    write(mdir, "002_alter.sql", "ALTER TABLE one ADD COLUMN name text;\n")
    with db.open_transaction("LOCK TABLE one IN ACCESS SHARE MODE"):  # the app's open read transaction
        run = migrate(mdir, lock_timeout="200ms", lock_retries=1)

        assert run.rc == 2
        assert run.result["failed_migration"]["sqlstate"] == "55P03"
        assert run.result["failed_migration"]["attempts"] == 2
        assert "held a lock the migration needed for longer than lock_timeout" in run.result["msg"]
    assert db.sql("SELECT count(*) FROM information_schema.columns WHERE table_name = 'one' AND column_name = 'name'") == [(0,)]
    assert migrate(mdir).rc == 0


# --- server roles and connections -------------------------------------------


@pytest.mark.parametrize("check", [False, True], ids=["run", "check"])
def test_read_only_database_is_refused_in_check_mode_too(db, migrate, mdir, check):
    make_three(mdir)
    db.sql(f'ALTER DATABASE "{db.name}" SET default_transaction_read_only = on')

    run = migrate(mdir, check=check)

    assert run.rc == 2
    assert f"database {db.name} is read-only for this session (default_transaction_read_only is on" in run.result["msg"]
    assert db.tables() == []


def test_empty_database_name_is_refused_and_the_default_database_untouched(pg, migrate, mdir):
    make_three(mdir)

    run = migrate(mdir, db="")

    assert run.rc == 2
    assert "db is empty: name the database to migrate" in run.result["msg"]
    assert pg.sql("SELECT count(*) FROM pg_tables WHERE tablename IN ('one', 'schema_migrations')") == [(0,)]


def test_latin1_database_gets_the_servers_word_for_a_character_it_cannot_store(pg, mdir):
    name = "latin1_" + uuid.uuid4().hex[:8]
    pg.sql(f"CREATE DATABASE {name} ENCODING 'LATIN1' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0")
    try:
        write(mdir, "001_cafe.sql", "CREATE TABLE cafe (name text);\nINSERT INTO cafe VALUES ('caf\u00e9');\n")
        write(mdir, "002_price.sql", "-- a comment is not sent: \u20ac\nCREATE TABLE price (eur numeric);\nCOMMENT ON TABLE price IS 'in \u20ac';\n")

        run = run_migrate(dict(pg.login_params(name), path=str(mdir)))

        assert run.rc == 2
        assert "migration 002 failed at 002_price.sql line 3" in run.result["msg"]
        assert "SQLSTATE 22P05" in run.result["msg"] and 'has no equivalent in encoding "LATIN1"' in run.result["msg"]
        assert pg.sql("SELECT name FROM cafe", dbname=name) == [("caf\u00e9",)]  # stored right, 1 character
        assert pg.sql("SELECT length(name) FROM cafe", dbname=name) == [(4,)]
    finally:
        pg.drop_database(name)


def test_hot_standby_is_refused(standby, mdir, tmp_path):
    make_three(mdir)
    args = dict(standby.login_params("postgres"), path=str(mdir))

    run = run_migrate(args)

    assert run.rc == 2
    assert "hot standby" in run.result["msg"] and "primary" in run.result["msg"]
    dry = run_migrate(args, check=True)
    assert dry.rc == 2 and "hot standby" in dry.result["msg"]


def test_wrong_password_is_clear_and_never_shown(db, pg, mdir):
    make_three(mdir)
    secret = "S3cr3t-Pa55-%d" % time.time_ns()
    role = "deployer_%d" % (time.time_ns() % 100000)
    pg.create_role(role, password=secret)
    db.sql(f'GRANT ALL ON SCHEMA public TO "{role}"')
    args = dict(path=str(mdir), db=db.name, login_host="127.0.0.1", login_port=pg.port, login_user=role)

    wrong = run_migrate(args, secret_args={"login_password": secret + "x"}, verbosity=3)
    right = run_migrate(args, secret_args={"login_password": secret}, verbosity=3)

    assert wrong.rc == 2
    assert "password authentication failed" in wrong.result["msg"]
    assert "check login_user and login_password" in wrong.result["msg"]
    assert right.rc == 0, right.output
    assert recorded(db) == ["001", "002", "010"]
    for run in (wrong, right):
        assert secret not in run.output
        assert secret not in str(run.result)


def test_unknown_database_is_clear(pg, mdir):
    make_three(mdir)
    run = run_migrate(dict(pg.login_params("no_such_db"), path=str(mdir)))
    assert run.rc == 2
    assert 'database "no_such_db" does not exist' in run.result["msg"]
    assert "check the db parameter" in run.result["msg"]


def test_statement_timeout_stops_a_runaway_migration(db, migrate, mdir):
    write(mdir, "001_slow.sql", "CREATE TABLE slow (id int);\nSELECT pg_sleep(5);\n")

    run = migrate(mdir, statement_timeout="300ms")

    assert run.rc == 2
    assert run.result["failed_migration"]["sqlstate"] == "57014"
    assert run.result["failed_migration"]["line"] == 2
    assert "statement timeout" in run.result["msg"]
    assert db.tables() == []
