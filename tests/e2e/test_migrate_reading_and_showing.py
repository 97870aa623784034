"""What the module reads and shows: versions are ASCII digits only, the SQL shown is
the SQL written (only a password's value hidden), and the splitter reads literals as the
session's standard_conforming_strings makes psql read them. Through ansible-playbook, against a
real PostgreSQL."""

from __future__ import annotations

import json
import subprocess

import pytest
from tests.support.st44 import MIGRATIONS

pytestmark = pytest.mark.e2e

VERSION_RULE = 'a version is the digits 0-9 of a migration file name, for example "014"'


def write(directory, name, sql):
    path = directory / name
    path.write_text(sql)
    return path


def recorded(db):
    return [v for (v,) in db.sql("SELECT version FROM schema_migrations ORDER BY version")]


def assert_no_traceback(run):
    for text in (run.output, json.dumps(run.result)):
        assert "Traceback" not in text and "invalid literal" not in text, run.output[-3000:]


# --- versions: ASCII digits only ---------------------------------------------------------


@pytest.fixture
def two(mdir):
    write(mdir, "001_one.sql", "CREATE TABLE one (id int);\n")
    write(mdir, "002_two.sql", "CREATE TABLE two (id int);\n")
    return mdir


@pytest.mark.parametrize("value", ["\u00b2", "\u0661", "1\u00b2"])
def test_a_target_version_of_non_ascii_digits_is_refused_by_name(db, migrate, two, value):
    run = migrate(two, target_version=value)

    assert run.rc == 2
    assert run.result["msg"] == "invalid parameters: target_version %r is not a version number: %s" % (value, VERSION_RULE)
    assert_no_traceback(run)
    assert db.tables() == []  # '١' was not taken as version 1


@pytest.mark.parametrize("option", ["accept_checksums", "retry_incomplete"])
def test_a_version_list_with_non_ascii_digits_is_refused_by_name(db, migrate, two, option):
    assert migrate(two).rc == 0

    run = migrate(two, **{option: ["\u0661"]})

    assert run.rc == 2
    assert run.result["msg"] == "invalid parameters: %s holds '\u0661', not a version number: %s" % (option, VERSION_RULE)
    assert_no_traceback(run)


def test_a_history_row_with_a_non_ascii_digit_stops_the_run_naming_the_row(db, migrate, two):
    assert migrate(two, target_version="001").rc == 0
    db.sql("INSERT INTO schema_migrations (version, name) VALUES ('1\u00b2', 'by_hand')")

    for check in (True, False):
        run = migrate(two, check=check)

        assert run.rc == 2, run.output
        msg = run.result["msg"]
        assert msg.startswith("nothing was applied: the history table ")
        assert "holds 1 row whose version is not digits 0-9: version '1\u00b2' (name 'by_hand')" in msg
        assert VERSION_RULE in msg and "DELETE FROM" in msg
        assert_no_traceback(run)
    assert db.tables() == ["one", "schema_migrations"]  # 002 was not applied
    assert recorded(db) == ["001", "1\u00b2"]


def test_a_file_named_with_arabic_indic_digits_is_not_a_migration_file(db, migrate, two):
    write(two, "\u0660\u0660\u0661_x.sql", "CREATE TABLE x (id int);\n")

    run = migrate(two)

    assert run.rc == 2
    assert "\u0660\u0660\u0661_x.sql: the name does not match NNN_description.sql" in run.result["msg"]
    assert_no_traceback(run)
    assert db.tables() == []


# --- --diff shows the SQL as written, only a password's value hidden ---------------------


def test_diff_shows_the_users_migration_exactly_and_hides_only_a_password(db, migrate, mdir):
    users = (MIGRATIONS / "001_create_users_table.sql").read_text()
    assert "password" in users  # comments and columns that name passwords, no secret
    for name in ("000_create_migrations_table.sql", "001_create_users_table.sql"):
        write(mdir, name, (MIGRATIONS / name).read_text())
    role = "app_" + db.name[-8:]
    roles = (
        f"-- The app's login; its password comes from the vault in production.\n"
        f"CREATE ROLE {role} LOGIN PASSWORD 'Sx-role-1''s' VALID UNTIL 'infinity';\n"
        f"ALTER ROLE {role} SET search_path = public; -- password_encryption stays\n"
        f"CREATE TABLE dblinks (conninfo text DEFAULT 'host=db password=Sx-conn-2 dbname=x', "
        f"uri text DEFAULT 'postgresql://rep:Sx-uri-3@db/x', password_hash text);\n"
    )
    write(mdir, "002_roles.sql", roles)

    dry = migrate(mdir, check=True, diff=True)

    assert dry.rc == 0, dry.output
    after = {d["after_header"]: d["after"] for d in dry.result["diff"]}
    assert after["001_create_users_table.sql (would apply)"] == users
    shown = roles.replace("'Sx-role-1''s'", "********").replace("Sx-conn-2", "********").replace("Sx-uri-3", "********")
    assert after["002_roles.sql (would apply)"] == shown
    # What the person at the terminal reads: every line of both files, as written.
    for line in users.splitlines() + shown.splitlines():
        assert "+" + line in dry.stdout, line
    assert "Sx-" not in dry.output + json.dumps(dry.result)
    assert db.tables() == []
    assert db.sql("SELECT count(*) FROM pg_roles WHERE rolname = %s", params=(role,)) == [(0,)]


# --- standard_conforming_strings: the files are read as psql reads them ----------------------

ESCAPED = "CREATE TABLE notes (id int PRIMARY KEY, body text);\nINSERT INTO notes VALUES (1, 'it\\'s');\nINSERT INTO notes VALUES (2, 'C:\\\\temp;');\n"
FAILS_AT_4 = "INSERT INTO notes VALUES (3, 'a\\'b;\nc');\nSELECT 1;\nINSERT INTO no_such_table VALUES (1);\n"
# Read with the setting on, lines 2-4 are one statement whose literal hides the COMMIT; the server,
# with the setting off, would run the COMMIT in the middle of the migration's transaction.
HIDDEN_COMMIT = "CREATE TABLE t2 (v text);\nINSERT INTO t2 VALUES ('a\\'');\nCOMMIT;\nINSERT INTO t2 VALUES ('b');  -- '\n"


def standard_strings_off(pg, db):
    db.sql(f'ALTER DATABASE "{db.name}" SET standard_conforming_strings = off')
    twin = db.name[:50] + "_psql"
    pg.create_database(twin)
    pg.sql(f'ALTER DATABASE "{twin}" SET standard_conforming_strings = off')
    return twin


def psql(pg, dbname, path, *options):
    """What psql -f does with the file, for comparison."""
    return subprocess.run(
        [str(pg.bin_dir / "psql"), "-X", "-v", "ON_ERROR_STOP=1", *options, "-f", str(path), pg.dsn(dbname)], capture_output=True, text=True, check=False
    )


def test_with_standard_conforming_strings_off_a_file_psql_applies_applies_with_its_lines(pg, db, migrate, mdir):
    twin = standard_strings_off(pg, db)
    try:
        first = write(mdir, "001_notes.sql", ESCAPED)
        by_psql = psql(pg, twin, first, "-1")
        assert by_psql.returncode == 0, by_psql.stderr
        rows = pg.sql("SELECT id, body FROM notes ORDER BY id", dbname=twin)
        assert rows == [(1, "it's"), (2, "C:\\temp;")]
        second = write(mdir, "002_fails.sql", FAILS_AT_4)
        by_psql = psql(pg, twin, second, "-1")
        assert by_psql.returncode == 3 and "002_fails.sql:4: ERROR:  relation \"no_such_table\"" in by_psql.stderr

        for check in (True, False):
            run = migrate(mdir, check=check, target_version="001")
            assert run.rc == 0, run.output
        run = migrate(mdir)

        assert db.sql("SELECT id, body FROM notes ORDER BY id") == rows
        assert run.rc == 2
        assert run.result["failed_migration"]["line"] == 4
        assert "migration 002 failed at 002_fails.sql line 4: SQLSTATE 42P01" in run.result["msg"]
        assert recorded(db) == ["001"]
    finally:
        pg.drop_database(twin)


def test_with_standard_conforming_strings_off_a_commit_hidden_from_the_other_reading_is_refused(pg, db, migrate, mdir):
    twin = standard_strings_off(pg, db)
    try:
        path = write(mdir, "001_crafted.sql", HIDDEN_COMMIT)
        by_psql = psql(pg, twin, path, "-e")
        # psql sends the COMMIT on its own: the server runs it
        assert by_psql.returncode == 0, by_psql.stderr
        assert "COMMIT;\n" in by_psql.stdout and "001_crafted.sql:3: WARNING:  there is no transaction in progress" in by_psql.stderr

        for check in (True, False):
            run = migrate(mdir, check=check)

            assert run.rc == 2, run.output
            assert run.result["msg"].startswith("nothing was applied%s: 001_crafted.sql line 3: top-level COMMIT." % (" (check mode)" if check else ""))
        assert db.tables() == []  # nothing ran, nothing was committed
    finally:
        pg.drop_database(twin)


def test_a_files_own_set_of_standard_conforming_strings_holds_for_the_lines_after_it(db, migrate, mdir):
    write(mdir, "001_off.sql", "SET standard_conforming_strings = off;\n" + HIDDEN_COMMIT)
    write(mdir, "002_notes.sql", "SET standard_conforming_strings = off;\n" + ESCAPED)

    for check in (True, False):
        run = migrate(mdir, check=check)

        assert run.rc == 2, run.output
        assert "001_off.sql line 4: top-level COMMIT" in run.result["msg"]
    assert db.tables() == []
    (mdir / "001_off.sql").unlink()

    run = migrate(mdir)

    assert run.rc == 0, run.output
    assert db.sql("SELECT id, body FROM notes ORDER BY id") == [(1, "it's"), (2, "C:\\temp;")]


def test_a_failed_statement_and_its_context_show_all_but_the_password(db, migrate, mdir):
    role = "no_role_" + db.name[-8:]
    write(mdir, "001_role.sql", f"CREATE ROLE {role} LOGIN PASSWORD 'Sx-fail-1' -- from the vault\n  IN ROLE no_such_group VALID UNTIL 'infinity';\n")

    failed = migrate(mdir)

    assert failed.rc == 2
    assert failed.result["failed_migration"]["statement"] == (
        f"CREATE ROLE {role} LOGIN PASSWORD ******** -- from the vault\n  IN ROLE no_such_group VALID UNTIL 'infinity'"
    )
    assert failed.result["failed_migration"]["message"] == 'role "no_such_group" does not exist'
    write(mdir, "001_role.sql", f"DO $$BEGIN EXECUTE 'ALTER ROLE {role} PASSWORD ''Sx-dyn-2'' VALID UNTIL ''infinity'''; END$$;\n")

    dynamic = migrate(mdir)

    assert dynamic.rc == 2
    assert (
        f"CONTEXT: SQL statement \"ALTER ROLE {role} PASSWORD ******** VALID UNTIL 'infinity'\"; PL/pgSQL function inline_code_block line 1 at EXECUTE"
    ) in dynamic.result["msg"]
    for run in (failed, dynamic):
        assert "Sx-" not in run.output + json.dumps(run.result)


def test_with_standard_conforming_strings_off_diff_hides_the_password_as_the_server_reads_it(pg, db, migrate, mdir):
    db.sql(f'ALTER DATABASE "{db.name}" SET standard_conforming_strings = off')
    role = "app_" + db.name[-8:]
    # Off, the literal is 'Sx-3\' x' (a backslash-escaped quote inside): all of it is the password.
    write(mdir, "001_role.sql", f"CREATE ROLE {role} LOGIN PASSWORD 'Sx-3\\' x-4' VALID UNTIL 'infinity';\n")

    dry = migrate(mdir, check=True, diff=True)

    assert dry.rc == 0, dry.output
    assert dry.result["diff"][0]["after"] == f"CREATE ROLE {role} LOGIN PASSWORD ******** VALID UNTIL 'infinity';\n"
    assert "Sx-3" not in dry.output and "x-4" not in dry.output


def test_a_file_that_sets_standard_conforming_strings_does_not_change_how_the_next_file_is_read(db, migrate, mdir):
    """The server parses a query string whole: the next file's first statement must not be parsed
    under the setting the previous file left, but under the one it was checked with (the session's)."""
    write(mdir, "001_off.sql", "CREATE TABLE t1 (v text);\nSET standard_conforming_strings = off;\n")
    # Read with the setting on (as the module checks it, and as psql reads it in a session of its
    # own) the first statement runs to the last line: a syntax error. Read off, the COMMIT is a
    # statement of its own.
    write(mdir, "002_crafted.sql", "INSERT INTO t1 VALUES ('a\\'');\nCOMMIT;\nINSERT INTO t1 VALUES ('b');  -- '\n")

    run = migrate(mdir)

    assert run.rc == 2, run.output
    assert run.result["failed_migration"]["sqlstate"] == "42601"
    assert "migration 002 failed at 002_crafted.sql line 3: SQLSTATE 42601" in run.result["msg"]
    assert db.sql("SELECT count(*) FROM t1") == [(0,)]  # nothing of 002 was committed
    assert recorded(db) == ["001"]
