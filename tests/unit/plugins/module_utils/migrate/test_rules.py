"""Unit tests of module_utils/migrate/rules.py: the statements a migration file may not hold, each refused naming its line."""

import pytest
from ansible_collections.st44.db_deploy.plugins.module_utils.migrate.rules import encoding_switch, needs_no_transaction, transaction_control

from tests.support.migrate_units import MIB, PG_DUMP_COPY, migration, one_statement, parse_migration, problems_of_file


@pytest.mark.parametrize(
    "sql, expected",
    [
        ("BEGIN", "BEGIN"),
        ("begin work", "BEGIN"),
        ("BEGIN TRANSACTION ISOLATION LEVEL SERIALIZABLE", "BEGIN"),
        ("START TRANSACTION", "START TRANSACTION"),
        ("COMMIT", "COMMIT"),
        ("commit work", "COMMIT"),
        ("END", "END"),
        ("ROLLBACK", "ROLLBACK"),
        ("ROLLBACK WORK", "ROLLBACK"),
        ("ABORT", "ABORT"),
        ("PREPARE TRANSACTION 'tx1'", "PREPARE TRANSACTION"),
        # not transaction control
        ("ROLLBACK TO SAVEPOINT before_update", None),
        ("ROLLBACK TO before_update", None),
        ("ROLLBACK WORK TO SAVEPOINT before_update", None),
        ("ROLLBACK TRANSACTION TO SAVEPOINT before_update", None),
        ("SAVEPOINT before_update", None),
        ("RELEASE SAVEPOINT before_update", None),
        ("RELEASE before_update", None),
        ("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE", None),
        ("PREPARE q(int) AS SELECT $1", None),
        ("DO $$ BEGIN PERFORM 1; COMMIT; END $$", None),
        ("CREATE TABLE begin_log (started_at timestamptz)", None),
        ("INSERT INTO log VALUES ('COMMIT')", None),
    ],
)
def test_transaction_control(sql, expected):
    assert transaction_control(one_statement(sql)) == expected


@pytest.mark.parametrize(
    "sql, expected",
    [
        ("CREATE INDEX CONCURRENTLY users_email_idx ON users (email)", "CREATE INDEX CONCURRENTLY"),
        ("create unique index concurrently if not exists u ON users (email)", "CREATE UNIQUE INDEX CONCURRENTLY"),
        ("DROP INDEX CONCURRENTLY users_email_idx", "DROP INDEX CONCURRENTLY"),
        ("REINDEX INDEX CONCURRENTLY users_email_idx", "REINDEX INDEX CONCURRENTLY"),
        ("REINDEX (VERBOSE) TABLE CONCURRENTLY users", "REINDEX TABLE CONCURRENTLY"),
        ("VACUUM (ANALYZE) users", "VACUUM"),
        ("vacuum", "VACUUM"),
        ("CREATE DATABASE reporting", "CREATE DATABASE"),
        ("DROP DATABASE reporting", "DROP DATABASE"),
        ("CREATE TABLESPACE fast LOCATION '/ssd'", "CREATE TABLESPACE"),
        ("ALTER SYSTEM SET work_mem = '64MB'", "ALTER SYSTEM"),
        # can run inside a transaction
        ("CREATE INDEX users_email_idx ON users (email)", None),
        ("CREATE INDEX by_flag ON jobs (concurrently)", None),
        ("CREATE TABLE jobs (id int, concurrently boolean)", None),
        ("INSERT INTO notes VALUES ('CONCURRENTLY')", None),
        ("REFRESH MATERIALIZED VIEW CONCURRENTLY stats", None),
        ("ANALYZE users", None),
        ("CREATE TABLE vacuum_log (id int)", None),
        ("ALTER DATABASE app SET timezone = 'UTC'", None),
    ],
)
def test_needs_no_transaction(sql, expected):
    assert needs_no_transaction(one_statement(sql)) == expected


def test_detach_partition_concurrently_needs_no_transaction():
    reason = needs_no_transaction(one_statement("ALTER TABLE events DETACH PARTITION events_2020 CONCURRENTLY"))
    assert reason is not None and reason.endswith("CONCURRENTLY")


def test_column_named_concurrently_outside_parentheses_is_not_flagged():
    assert needs_no_transaction(one_statement("ALTER TABLE jobs ADD COLUMN concurrently boolean")) is None


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT set_config('standard_conforming_strings', 'off', false);",
        "DO $$BEGIN EXECUTE 'SET standard_conforming_strings = off'; END$$;",
    ],
)
def test_changing_standard_conforming_strings_otherwise_than_by_set_is_refused(sql):
    assert problems_of_file("001_x.sql", sql) == [
        "001_x.sql line 1: changes standard_conforming_strings other than by SET or RESET, so the module cannot "
        "tell how psql and the server read the lines after it; use SET standard_conforming_strings on a line of "
        "its own"
    ]


def test_reading_standard_conforming_strings_is_no_change():
    parse_migration(
        "001_x.sql",
        "SELECT current_setting('standard_conforming_strings');\nALTER DATABASE app SET standard_conforming_strings = on;\nSHOW standard_conforming_strings;\n",
    )


@pytest.mark.parametrize("raw", [b"", b"\n\n", b"-- nothing yet\n/* later */\n", b";\n;\n", b"\xef\xbb\xbf"])
def test_file_without_statements_is_refused(raw):
    assert problems_of_file("004_empty.sql", raw) == ["004_empty.sql: contains no SQL statement"]


def test_split_error_is_reported_with_the_file_name():
    assert problems_of_file("005_quote.sql", "SELECT 1;\nSELECT 'oops;\n") == ["005_quote.sql: unterminated string literal starting at line 2"]


def test_psql_include_is_refused_with_the_file_name():
    assert problems_of_file("006_include.sql", "-- load the rest\n\\i 007_rest.sql\n") == [
        "006_include.sql: psql meta-command at line 2 (\\i): only SQL is supported"
    ]


def test_copy_through_the_client_is_refused_naming_the_line_and_what_to_write():
    assert problems_of_file("020_seed.sql", PG_DUMP_COPY + "COPY colours TO STDOUT;\n") == [
        "020_seed.sql line 2: COPY ... FROM STDIN streams rows through the client, which only psql does "
        "(inline data, \\copy); write the rows as INSERT ... VALUES, or COPY from a file on the database server",
        "020_seed.sql line 7: COPY ... TO STDOUT streams rows through the client, which only psql does "
        "(inline data, \\copy); write the rows as INSERT ... VALUES, or COPY to a file on the database server",
    ]


@pytest.mark.parametrize(
    "sql, encoding",
    [
        ("SET client_encoding = 'LATIN1'", "LATIN1"),
        ("set session client_encoding to win1252", "win1252"),
        ("SET LOCAL NAMES 'EUC_JP'", "EUC_JP"),
        ("SET client_encoding\n  TO 'SQL_ASCII'", "SQL_ASCII"),
        ("SET /* names */ \"client_encoding\" TO E'LATIN1'", "LATIN1"),
        ("SET client_encoding TO EUC_JP", "EUC_JP"),
        ("SET client_encoding /* was LATIN1 */ TO 'UTF8' -- pg_dump", None),
        ("SET client_encoding TO U&'UTF8'", None),
        ("SET NAMESPACE = 'x'", None),
        ("SET client_encoding = 'UTF8'", None),  # what pg_dump writes for a UTF-8 database
        ("SET client_encoding TO 'utf-8'", None),
        ("SET NAMES 'unicode'", None),
        ("SET client_encoding TO DEFAULT", None),
        ("SET client_min_messages = warning", None),
        ("ALTER DATABASE app SET client_encoding = 'LATIN1'", None),  # later sessions, not this one
    ],
)
def test_encoding_switch_names_an_encoding_other_than_utf8(sql, encoding):
    assert encoding_switch(one_statement(sql)) == encoding


def test_switching_the_client_encoding_is_refused_only_when_non_ascii_text_follows():
    latin1 = "CREATE TABLE cafes (name text);\nSET client_encoding = 'LATIN1';\nINSERT INTO cafes VALUES ('café');\n"
    assert problems_of_file("021_cafes.sql", latin1) == [
        "021_cafes.sql line 2: SET client_encoding to LATIN1 in a file with non-ASCII characters, which the "
        "server would then read as LATIN1 and store wrongly. The module reads every file as UTF-8 and sends it "
        "as UTF-8, and the server converts it to the database's encoding: remove the statement"
    ]
    ascii_only = parse_migration("021_cafes.sql", latin1.replace("é", "e").encode(), MIB)
    assert [s.text for s in ascii_only.statements][1] == "SET client_encoding = 'LATIN1'"


def test_top_level_transaction_control_is_refused_naming_each_line():
    sql = "BEGIN;\nCREATE TABLE a (id int);\nCOMMIT;\n"
    suffix = ". The module runs each migration in its own transaction; remove the transaction control statements"
    assert problems_of_file("007_tx.sql", sql) == [
        "007_tx.sql line 1: top-level BEGIN" + suffix,
        "007_tx.sql line 3: top-level COMMIT" + suffix,
    ]


@pytest.mark.parametrize(
    "sql, refused",
    [
        ("CREATE TABLE a (id int);\ndiscard all;\n", "line 2: DISCARD ALL would release the run's migration lock"),
        ("DEALLOCATE ALL;\n", "line 1: DEALLOCATE would drop the module's prepared history write"),
        ("DEALLOCATE PREPARE all;\n", "line 1: DEALLOCATE would drop the module's prepared history write"),
        ("DEALLOCATE postgresql_migrate_record;\n", "line 1: DEALLOCATE would drop the module's prepared history write"),
        (
            "DO $$BEGIN\n  PERFORM PG_ADVISORY_UNLOCK_ALL();\nEND$$;\n",
            "line 1: pg_advisory_unlock_all() would release the run's migration lock, letting a concurrent run in",
        ),
    ],
)
def test_statements_that_undo_the_runs_lock_or_history_write_are_refused(sql, refused):
    problems = problems_of_file("009_undo.sql", sql)
    assert len(problems) == 1 and problems[0].startswith("009_undo.sql " + refused), problems


def test_statements_that_leave_the_run_alone_are_not_refused():
    sql = "PREPARE mine AS SELECT 1;\nDEALLOCATE mine;\nDEALLOCATE PREPARE allx;\nDISCARD TEMP;\nSELECT pg_advisory_lock(1);\nSELECT pg_advisory_unlock(1);\n"
    assert len(migration("009_fine.sql", sql).statements) == 6


CONCURRENT_INDEX = "CREATE TABLE t (a int);\n\nCREATE INDEX CONCURRENTLY t_a ON t (a);\n"


def test_concurrently_without_marker_is_refused_telling_to_add_the_marker():
    assert problems_of_file("008_index.sql", CONCURRENT_INDEX) == [
        '008_index.sql line 3: CREATE INDEX CONCURRENTLY cannot run inside a transaction block; if that is '
        'intended, add the line "-- postgresql_migrate: no-transaction" to the file (its statements then run '
        'one by one, without rollback on failure)'
    ]


@pytest.mark.parametrize(
    "marker",
    [
        "-- postgresql_migrate: no-transaction",
        "-- POSTGRESQL_MIGRATE: No-Transaction",
        "--postgresql_migrate:no-transaction",
        "--   postgresql_migrate :  no-transaction   ",
    ],
)
def test_no_transaction_marker_allows_concurrently(marker):
    mig = migration("008_index.sql", marker + "\n" + CONCURRENT_INDEX)
    assert mig.transactional is False
    assert [s.line for s in mig.statements] == [2, 4]


@pytest.mark.parametrize(
    "sql",
    [
        CONCURRENT_INDEX.replace("t_a ON t (a);", "t_a ON t (a); -- postgresql_migrate: no-transaction"),
        "-- postgresql_migrate: no-transaction please\n" + CONCURRENT_INDEX,
        "-- postgresql_migrate: no_transaction\n" + CONCURRENT_INDEX,
        "-- postgresql_migrate: transaction\n" + CONCURRENT_INDEX,
        "/* postgresql_migrate: no-transaction */\n" + CONCURRENT_INDEX,
    ],
    ids=["after-a-statement", "extra-words", "underscore", "other-value", "block-comment"],
)
def test_marker_must_be_a_whole_line_comment(sql):
    problems = problems_of_file("008_index.sql", sql)
    assert len(problems) == 1 and "CREATE INDEX CONCURRENTLY cannot run inside a transaction block" in problems[0]


def test_marker_counts_anywhere_in_the_leading_comments_indented_or_not():
    sql = "-- 008: index the orders\n\n   -- postgresql_migrate: no-transaction\n" + CONCURRENT_INDEX
    assert migration("008_index.sql", sql).transactional is False


def test_marker_below_the_first_statement_does_not_count():
    sql = "SELECT 1;\n-- postgresql_migrate: no-transaction\n" + CONCURRENT_INDEX
    problems = problems_of_file("008_index.sql", sql)
    assert len(problems) == 1 and "CREATE INDEX CONCURRENTLY cannot run inside a transaction block" in problems[0]


def test_files_without_marker_are_transactional():
    assert migration("009_plain.sql", "CREATE TABLE x (id int);").transactional is True


def test_no_transaction_file_still_refuses_top_level_commit():
    sql = "-- postgresql_migrate: no-transaction\nCREATE INDEX CONCURRENTLY i ON t (a);\nCOMMIT;\n"
    assert problems_of_file("010_x.sql", sql) == [
        "010_x.sql line 3: top-level COMMIT. The module runs each migration in its own transaction; remove the transaction control statements"
    ]


def test_every_problem_of_a_file_is_reported():
    problems = problems_of_file("011_x.sql", "COMMIT;\nCREATE INDEX CONCURRENTLY i ON t (a);\nVACUUM;\n")
    assert [p.split(":")[0] for p in problems] == ["011_x.sql line 1", "011_x.sql line 2", "011_x.sql line 3"]
