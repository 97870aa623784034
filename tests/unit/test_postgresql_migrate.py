"""Unit tests of the pure functions of library/postgresql_migrate.py.

Each test states behaviour a user of the module would notice: which statements a
file is split into and on which line each starts, the exact message naming the
file and line of a problem, what a plan applies, adopts, skips or refuses.
No database is involved (tests/e2e covers that).
"""

import hashlib
import os
import pwd

import pytest
import yaml
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

from ansible_collections.st44.db_deploy.plugins.modules import postgresql_migrate as pm

MIB = 1024 * 1024


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------


def split(sql):
    """(line, text) of every statement split_statements finds."""
    return [(s.line, s.text) for s in pm.split_statements(sql)]


def texts(sql):
    return [s.text for s in pm.split_statements(sql)]


def one_statement(sql):
    statements = pm.split_statements(sql)
    assert len(statements) == 1, statements
    return statements[0]


def parse_migration(filename, raw, max_size=MIB):
    """A migration read and split as the module does with a file it is about to run."""
    if isinstance(raw, str):
        raw = raw.encode("utf-8")
    mig = pm.read_migration(filename, raw, max_size)
    pm.analyze_migrations([mig])
    return mig


def migration(filename, sql="SELECT 1;\n"):
    return parse_migration(filename, sql)


def problems_of_file(filename, raw, max_size=MIB):
    """The problems reported for a file that must be refused, when it is read or split."""
    with pytest.raises(pm.MigrationError) as excinfo:
        parse_migration(filename, raw, max_size)
    return excinfo.value.problems


def write(directory, name, content="SELECT 1;\n"):
    path = directory / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, str):
        content = content.encode("utf-8")
    path.write_bytes(content)
    return path


def discover(path, max_size=MIB):
    """Discovered and split, as the module does with files it is about to run."""
    migs = pm.discover_migrations(str(path), max_size)
    pm.analyze_migrations(migs)
    return migs


def discovery_problems(path, max_size=MIB):
    with pytest.raises(pm.MigrationError) as excinfo:
        pm.discover_migrations(str(path), max_size)
    return excinfo.value.problems


def recorded(mig, checksum="same", applied_at="2026-01-01 10:00:00+00"):
    """A history row for mig: checksum 'same' means the file's own checksum."""
    return dict(version=mig.version, name=mig.name, checksum=mig.checksum if checksum == "same" else checksum, applied_at=applied_at)


def history_of(*rows):
    return {int(r["version"]): r for r in rows}


def plan(migrations, history=None, incomplete=None, **kwargs):
    return pm.plan_migrations(migrations, history or {}, incomplete or {}, **kwargs)


def versions(migrations):
    return [m.version for m in migrations]


def statuses(result):
    return {e["version"]: e["status"] for e in result["entries"]}


def module_params(**overrides):
    """Parameters as AnsibleModule would hand them to main(): defaults filled in."""
    args = dict(path="/srv/migrations", db="app")
    args.update(overrides)
    result = ArgumentSpecValidator(pm.argument_spec()).validate(args)
    assert not result.error_messages, result.error_messages
    return result.validated_parameters


def test_collection_is_importable():
    assert pm.HAS_COLLECTION, "community.postgresql is missing: run `make setup`"


# ---------------------------------------------------------------------------
# normalize_sql / checksum_of
# ---------------------------------------------------------------------------


def test_normalize_drops_bom_and_normalizes_line_endings():
    assert pm.normalize_sql("\ufeffSELECT 1;\r\nSELECT 2;\rSELECT 3;\n") == "SELECT 1;\nSELECT 2;\nSELECT 3;\n"


def test_checksum_is_sha256_of_the_lf_text_and_ignores_bom_and_crlf():
    lf = "CREATE TABLE t (id int);\n-- note\n"
    expected = hashlib.sha256(lf.encode("utf-8")).hexdigest()
    for text in (lf, "\ufeff" + lf.replace("\n", "\r\n"), lf.replace("\n", "\r")):
        assert pm.checksum_of(pm.normalize_sql(text)) == expected


def test_checksum_changes_when_a_comment_changes():
    assert pm.checksum_of("SELECT 1; -- a\n") != pm.checksum_of("SELECT 1; -- b\n")


# ---------------------------------------------------------------------------
# redact_secrets
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "sql, shown",
    [
        ("CREATE ROLE app LOGIN PASSWORD 'it''s secret' VALID UNTIL 'infinity'", "CREATE ROLE app LOGIN PASSWORD ******** VALID UNTIL 'infinity'"),
        # every form of literal, with or without space, after a comment, continued on the next line
        ("ALTER ROLE app ENCRYPTED PASSWORD E'a\\'b' LOGIN", "ALTER ROLE app ENCRYPTED PASSWORD ******** LOGIN"),
        ("alter role app password $p$x'y$p$ login", "alter role app password ******** login"),
        ("ALTER ROLE app PASSWORD'x'", "ALTER ROLE app PASSWORD********"),
        ("ALTER ROLE app PASSWORD /* c */ U&'x' LOGIN", "ALTER ROLE app PASSWORD /* c */ ******** LOGIN"),
        ("ALTER ROLE app PASSWORD 'abc'\n'x' LOGIN", "ALTER ROLE app PASSWORD ********\n******** LOGIN"),
        ("ALTER USER app WITH PASSWORD \"pw\" LOGIN", "ALTER USER app WITH PASSWORD ******** LOGIN"),  # a typo
        ("ALTER ROLE app PASSWORD pw", "ALTER ROLE app PASSWORD ********"),
        ("ALTER ROLE app PASSWORD NULL", "ALTER ROLE app PASSWORD NULL"),
        ("ALTER SERVER s OPTIONS (SET password pw)", "ALTER SERVER s OPTIONS (SET password ********)"),
        (
            "CREATE USER MAPPING FOR app SERVER s OPTIONS (user 'u', \"password\" 'pw')",
            "CREATE USER MAPPING FOR app SERVER s OPTIONS (user 'u', \"password\" ********)",
        ),
        (
            "ALTER USER MAPPING FOR app SERVER s OPTIONS (SET password 'pw', ADD sslpassword 'k', sslmode 'require')",
            "ALTER USER MAPPING FOR app SERVER s OPTIONS (SET password ********, ADD sslpassword ********, sslmode 'require')",
        ),
        (
            "CREATE SUBSCRIPTION s CONNECTION 'host=db password=''a b'' dbname=x' PUBLICATION p",
            "CREATE SUBSCRIPTION s CONNECTION 'host=db password=******** dbname=x' PUBLICATION p",
        ),
        ("SELECT dblink_connect('c', 'host=h password = pw dbname=d')", "SELECT dblink_connect('c', 'host=h password = ******** dbname=d')"),
        (
            "CREATE SUBSCRIPTION s CONNECTION 'postgresql://rep:pw@db/x' PUBLICATION p",
            "CREATE SUBSCRIPTION s CONNECTION 'postgresql://rep:********@db/x' PUBLICATION p",
        ),
        ("SELECT 'postgres://:pw@db/x'", "SELECT 'postgres://:********@db/x'"),
        ("SELECT 'postgresql://u:it''s@db/x', 'host=h password=it''s'", "SELECT 'postgresql://u:********@db/x', 'host=h password=********'"),
        # SQL in a literal: dynamic SQL, a DO body
        (
            "DO $$BEGIN EXECUTE E'ALTER ROLE app PASSWORD \\'pw\\''; PERFORM 1; END$$",
            "DO $$BEGIN EXECUTE E'ALTER ROLE app PASSWORD ********'; PERFORM 1; END$$",
        ),
        ("DO $$BEGIN EXECUTE 'ALTER ROLE app PASSWORD ''pw'''; PERFORM 1; END$$", "DO $$BEGIN EXECUTE 'ALTER ROLE app PASSWORD ********'; PERFORM 1; END$$"),
        ("DO $$BEGIN ALTER ROLE app PASSWORD 'pw'; PERFORM 1; END$$", "DO $$BEGIN ALTER ROLE app PASSWORD ********; PERFORM 1; END$$"),
        # the value is not written where the word is: the rest, and the literals of the code around it
        (
            "DO $$DECLARE pw text := 'Sx'; BEGIN EXECUTE format('ALTER ROLE r PASSWORD %L', pw); END$$",
            "DO $$DECLARE pw text := ********; BEGIN EXECUTE format(********",
        ),
        ("SELECT dblink_connect('c', 'host=h password=' || current_setting('x.pw'))", "SELECT dblink_connect('c', 'host=h password********"),
        # not a password: left alone
        ("SET password_encryption = 'scram-sha-256'", "SET password_encryption = 'scram-sha-256'"),
        ("COMMENT ON COLUMN users.password IS 'a bcrypt hash'", "COMMENT ON COLUMN users.password IS 'a bcrypt hash'"),
        ("UPDATE users SET password_hash = 'x'", "UPDATE users SET password_hash = 'x'"),
        ("CREATE TABLE t (password text NOT NULL, b int CHECK (b > 0))", "CREATE TABLE t (password text NOT NULL, b int CHECK (b > 0))"),
        (
            "CREATE ROLE app LOGIN -- its password comes later\n  VALID UNTIL 'infinity'",
            "CREATE ROLE app LOGIN -- its password comes later\n  VALID UNTIL 'infinity'",
        ),
    ],
)
def test_redact_secrets_hides_the_value_that_sets_a_password_and_nothing_else(sql, shown):
    assert pm.redact_secrets(sql) == shown


SECRET = "Sx9"
SECRET_VALUES = [
    "'Sx9'",
    "'a''Sx9'",
    "E'a\\'Sx9'",
    "E'Sx9\\\\'",
    "U&'Sx9'",
    "$$Sx9$$",
    "$t$Sx9'$t$",
    "'Sx9'\n'more'",
    "'a'\n'Sx9'",
    "/* c */ 'Sx9'",
    "\"Sx9\"",
    "Sx9",
    "'Sx9' || 'x'",
]
SECRET_STATEMENTS = [
    "CREATE ROLE r LOGIN PASSWORD {} VALID UNTIL 'infinity'",
    "ALTER USER r WITH ENCRYPTED PASSWORD {}",
    "CREATE USER MAPPING FOR r SERVER s OPTIONS (user 'u', password {})",
    "ALTER SERVER s OPTIONS (SET password {})",
    "DO $do$BEGIN ALTER ROLE r PASSWORD {}; END$do$",
]
SECRET_VALUES_IN_LITERALS = [
    "ALTER ROLE r PASSWORD ''Sx9''",
    "host=h password=Sx9 dbname=d",
    "host=h password=''a Sx9'' x=y",
    "postgresql://u:Sx9@h/d",
    "postgres://h/d?password=Sx9",
    "host=h password = Sx9",
]
SECRET_LITERALS = ["SELECT dblink_connect('{}')", "DO $$BEGIN EXECUTE '{}'; END$$", "CREATE SUBSCRIPTION s CONNECTION '{}' PUBLICATION p"]


@pytest.mark.parametrize("escapes", [False, True])
def test_no_form_of_a_password_value_is_shown(escapes):
    statements = [t.format(v) for t in SECRET_STATEMENTS for v in SECRET_VALUES] + [t.format(v) for t in SECRET_LITERALS for v in SECRET_VALUES_IN_LITERALS]
    shown = [pm.redact_secrets(sql, escapes) for sql in statements]
    assert [sql for sql, text in zip(statements, shown) if SECRET in text] == []


def test_redact_secrets_reads_backslashes_as_standard_conforming_strings_says():
    sql = "ALTER ROLE app PASSWORD 'a\\' LOGIN' VALID UNTIL 'infinity'"
    assert pm.redact_secrets(sql, escapes=True) == "ALTER ROLE app PASSWORD ******** VALID UNTIL 'infinity'"
    assert pm.redact_secrets(sql) == "ALTER ROLE app PASSWORD ******** LOGIN' VALID UNTIL 'infinity'"


def test_redact_file_shows_comments_and_statements_whole_but_for_the_password():
    sql = (
        "-- rotate the password of app (password comes from the vault)\n"
        "CREATE TABLE t (c text DEFAULT '', password_hash text);\n"
        "ALTER ROLE app PASSWORD 'Sx';\n/* password */ CREATE TABLE u (c text DEFAULT '');\n"
        "-- replica: postgresql://rep:Sx@db/x\n"
    )
    assert pm.redact_file(parse_migration("009_roles.sql", sql)) == sql.replace("'Sx'", "********").replace(":Sx@", ":********@")


def test_redact_file_shows_the_repositorys_users_migration_exactly():
    with open(os.path.join(os.path.dirname(__file__), "..", "..", "migrations", "001_create_users_table.sql")) as f:
        sql = f.read()
    assert "password" in sql
    assert pm.redact_file(parse_migration("001_create_users_table.sql", sql)) == sql


def test_redact_context_hides_the_password_of_the_statement_it_quotes():
    context = "SQL statement \"ALTER ROLE app PASSWORD 'Sx-1' VALID UNTIL 'infinity'\"\nPL/pgSQL function inline_code_block line 1 at EXECUTE"
    assert pm.redact_context(context) == (
        "SQL statement \"ALTER ROLE app PASSWORD ******** VALID UNTIL 'infinity'\"; PL/pgSQL function inline_code_block line 1 at EXECUTE"
    )


@pytest.mark.parametrize(
    "sql, message, shown",
    [
        # the token a syntax error stopped at, when it is in the hidden part: hidden, whole
        ("ALTER ROLE app PASSWORD \"pw\"", 'syntax error at or near ""pw""', 'syntax error at or near "********"'),
        ("ALTER ROLE app PASSWORD 'a\" b' 'c'", "syntax error at or near \"'a\" b'\"", 'syntax error at or near "********"'),
        ("CREATE SUBSCRIPTION s CONNECTION 'postgresql://rep:pw@db/x' PUBLICATION p", 'could not parse "pw"', 'could not parse "********"'),
        # what the statement shows stays in the message
        ("ALTER ROLE app PASSWORD 'pw' IN ROLE nope", 'role "app" does not exist', 'role "app" does not exist'),
        ("CREATE TABLE t (password text)", 'relation "t" already exists', 'relation "t" already exists'),
    ],
)
def test_redact_quoted_hides_what_the_message_quotes_of_the_hidden_sql(sql, message, shown):
    assert pm.redact_quoted(message, pm.secret_parts(sql)) == shown


def test_secret_parts_are_what_redact_secrets_hides():
    assert pm.secret_parts("SELECT 'postgresql://u:p@h' AS uri, 1 AS password, 2") == ["p"]
    assert pm.secret_parts("ALTER ROLE a PASSWORD 'x\\' LOGIN'") == ["'x\\'", "'x\\' LOGIN'"]  # read both ways
    assert pm.secret_parts("SELECT password_hash FROM users") == []


def test_redact_quoted_hides_from_the_first_quote_when_a_message_quotes_too_much():
    message = 'near "a" "b" "c" "d" "e"'
    assert pm.redact_quoted(message, ["zzz"]) == 'near "********"'


# ---------------------------------------------------------------------------
# split_statements
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "sql, expected",
    [
        pytest.param("INSERT INTO t VALUES ('a;b'); SELECT 2;", ["INSERT INTO t VALUES ('a;b')", "SELECT 2"], id="semicolon-in-string"),
        pytest.param("SELECT 'it''s; fine'; SELECT 2;", ["SELECT 'it''s; fine'", "SELECT 2"], id="doubled-quote"),
        pytest.param("SELECT E'it''s \\'; here'; SELECT 2;", ["SELECT E'it''s \\'; here'", "SELECT 2"], id="doubled-quote-in-E-string"),
        pytest.param("SELECT E'\\';'; SELECT 2;", ["SELECT E'\\';'", "SELECT 2"], id="E-string-backslash-quote"),
        pytest.param("select e'a\\'b;c', E'\\\\'; select 2;", ["select e'a\\'b;c', E'\\\\'", "select 2"], id="e-string-lowercase-and-escaped-backslash"),
        pytest.param("SELECT 'C:\\'; SELECT 2;", ["SELECT 'C:\\'", "SELECT 2"], id="backslash-is-no-escape-in-plain-string"),
        pytest.param("SELECT name'\\'; SELECT 2;", ["SELECT name'\\'", "SELECT 2"], id="word-ending-in-e-is-no-E-prefix"),
        pytest.param('CREATE TABLE "odd;name" ("a""b;" int); SELECT 2;', ['CREATE TABLE "odd;name" ("a""b;" int)', "SELECT 2"], id="quoted-identifiers"),
        pytest.param(
            "CREATE FUNCTION f() RETURNS int AS $$ SELECT 1; $$ LANGUAGE sql; SELECT 2;",
            ["CREATE FUNCTION f() RETURNS int AS $$ SELECT 1; $$ LANGUAGE sql", "SELECT 2"],
            id="dollar-quote",
        ),
        pytest.param(
            "DO $outer$ BEGIN EXECUTE $q$ SELECT ';'; $q$; PERFORM $$;$$; END $outer$; SELECT 2;",
            ["DO $outer$ BEGIN EXECUTE $q$ SELECT ';'; $q$; PERFORM $$;$$; END $outer$", "SELECT 2"],
            id="tagged-dollar-quote-with-nested-quotes",
        ),
        pytest.param("SELECT $a$ $ab$; $a$; SELECT 2;", ["SELECT $a$ $ab$; $a$", "SELECT 2"], id="only-the-exact-tag-closes"),
        pytest.param("SELECT 1 -- it's; a comment\n; SELECT 2;", ["SELECT 1 -- it's; a comment", "SELECT 2"], id="line-comment"),
        pytest.param(
            "SELECT /* a /* b; */ still 'comment; */ 1; SELECT 2;", ["SELECT /* a /* b; */ still 'comment; */ 1", "SELECT 2"], id="nested-block-comment"
        ),
        pytest.param("PREPARE p(int) AS SELECT $1, $2; EXECUTE p(1);", ["PREPARE p(int) AS SELECT $1, $2", "EXECUTE p(1)"], id="positional-parameters"),
        pytest.param("SELECT a$b, c$$d FROM t$x; SELECT 2;", ["SELECT a$b, c$$d FROM t$x", "SELECT 2"], id="dollar-inside-identifiers"),
        pytest.param("SELECT 1;\nSELECT 2", ["SELECT 1", "SELECT 2"], id="last-statement-without-semicolon"),
        pytest.param(";;SELECT 1;; ;\n;SELECT 2;;;", ["SELECT 1", "SELECT 2"], id="empty-statements-dropped"),
        pytest.param("SELECT 1; -- trailing comment\n/* and a block */\n", ["SELECT 1"], id="trailing-comments-are-no-statement"),
    ],
)
def test_split_respects_quotes_and_comments(sql, expected):
    assert texts(sql) == expected


def test_statement_lines_skip_leading_comments_and_blank_lines():
    sql = (
        "-- 003: accounts\n"  # 1
        "\n"  # 2
        "/* a block\n"  # 3
        "   comment */\n"  # 4
        "CREATE TABLE a (id int);\n"  # 5
        "\n"  # 6
        "-- the next one spans lines\n"  # 7
        "CREATE TABLE b (\n"  # 8
        "  id int\n"  # 9
        ");\n"  # 10
        "SELECT 1; SELECT 2;\n"  # 11
        "   /* x */ SELECT 3\n"  # 12
    )
    assert split(sql) == [
        (5, "CREATE TABLE a (id int)"),
        (8, "CREATE TABLE b (\n  id int\n)"),
        (11, "SELECT 1"),
        (11, "SELECT 2"),
        (12, "SELECT 3"),
    ]


def test_plpgsql_do_block_is_one_statement_and_not_transaction_control():
    sql = "DO $$\nBEGIN\n  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'app') THEN\n    CREATE ROLE app;\n  END IF;\nEND\n$$;\nSELECT 2;\n"
    statements = pm.split_statements(sql)
    assert [(s.line, s.text.splitlines()[0]) for s in statements] == [(1, "DO $$"), (8, "SELECT 2")]
    assert pm.transaction_control(statements[0]) is None


def test_begin_atomic_routine_body_is_kept_as_one_statement():
    sql = (
        "CREATE OR REPLACE FUNCTION bump(n int) RETURNS text LANGUAGE sql\n"  # 1
        "BEGIN ATOMIC\n"  # 2
        "  UPDATE counters SET value = value + n;\n"  # 3
        "  SELECT CASE WHEN n > 0 THEN 'up' ELSE 'down' END;\n"  # 4
        "END;\n"  # 5
        "create procedure p() language sql begin atomic insert into t values (1); end;\n"  # 6
        "SELECT bump(1);\n"  # 7
    )
    statements = pm.split_statements(sql)
    assert [s.line for s in statements] == [1, 6, 7]
    assert statements[0].text.endswith("ELSE 'down' END;\nEND")
    assert statements[1].text == "create procedure p() language sql begin atomic insert into t values (1); end"
    assert statements[2].text == "SELECT bump(1)"
    assert [pm.transaction_control(s) for s in statements] == [None, None, None]


def test_case_end_outside_a_routine_body_does_not_swallow_semicolons():
    sql = "CREATE FUNCTION sign(n int) RETURNS int LANGUAGE sql RETURN CASE WHEN n > 0 THEN 1 ELSE 0 END;\nSELECT 2;"
    assert [line for line, _ in split(sql)] == [1, 2]


def test_semicolons_inside_parentheses_do_not_end_the_statement():
    sql = "CREATE RULE log_insert AS ON INSERT TO t DO ALSO (INSERT INTO log VALUES (1); INSERT INTO log VALUES (2));\nSELECT 2;"
    assert split(sql) == [
        (1, "CREATE RULE log_insert AS ON INSERT TO t DO ALSO (INSERT INTO log VALUES (1); INSERT INTO log VALUES (2))"),
        (2, "SELECT 2"),
    ]


@pytest.mark.parametrize(
    "sql, message",
    [
        ("SELECT 1;\nSELECT 'abc;\nSELECT 3;\n", "unterminated string literal starting at line 2"),
        ("SELECT 1;\n\nSELECT E'abc\\';\n", "unterminated string literal starting at line 3"),
        ('SELECT 1;\nSELECT "abc;\n', "unterminated quoted identifier starting at line 2"),
        ("SELECT 1;\nDO $body$ BEGIN NULL; END $$;\n", "unterminated dollar-quoted string $body$ starting at line 2"),
        ("SELECT 1;\n/* outer /* inner */\nSELECT 2;\n", "unterminated /* comment starting at line 2"),
        ("SELECT 1;\n\\i other.sql\n", "psql meta-command at line 2 (\\i): only SQL is supported"),
        ("SELECT 1 \\gset\n", "psql meta-command at line 1 (\\gset): only SQL is supported"),
        ("\\set ON_ERROR_STOP on\nSELECT 1;\n", "psql meta-command at line 1 (\\set): only SQL is supported"),
    ],
)
def test_split_errors_name_the_line(sql, message):
    with pytest.raises(ValueError) as excinfo:
        pm.split_statements(sql)
    assert str(excinfo.value) == message


def test_meta_command_inside_a_string_or_comment_is_plain_text():
    assert texts("SELECT '\\i x';\n-- \\i y\nSELECT 2;") == ["SELECT '\\i x'", "SELECT 2"]


# ---------------------------------------------------------------------------
# transaction_control
# ---------------------------------------------------------------------------


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
    assert pm.transaction_control(one_statement(sql)) == expected


# ---------------------------------------------------------------------------
# needs_no_transaction
# ---------------------------------------------------------------------------


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
    assert pm.needs_no_transaction(one_statement(sql)) == expected


def test_detach_partition_concurrently_needs_no_transaction():
    reason = pm.needs_no_transaction(one_statement("ALTER TABLE events DETACH PARTITION events_2020 CONCURRENTLY"))
    assert reason is not None and reason.endswith("CONCURRENTLY")


def test_column_named_concurrently_outside_parentheses_is_not_flagged():
    assert pm.needs_no_transaction(one_statement("ALTER TABLE jobs ADD COLUMN concurrently boolean")) is None


# ---------------------------------------------------------------------------
# standard_conforming_strings
# ---------------------------------------------------------------------------


def split_off(sql, transactional=True):
    return [(s.line, s.text) for s in pm.split_statements(sql, standard_strings=False, transactional=transactional)]


def test_with_standard_conforming_strings_off_a_backslash_escapes_in_plain_literals():
    sql = "INSERT INTO t VALUES ('it\\'s');\nSELECT 'C:\\\\';\nSELECT B'01', U&'d\\0061t\\+000061', 2;\n"
    assert split_off(sql) == [(1, "INSERT INTO t VALUES ('it\\'s')"), (2, "SELECT 'C:\\\\'"), (3, "SELECT B'01', U&'d\\0061t\\+000061', 2")]
    with pytest.raises(ValueError, match="psql meta-command at line 2"):
        pm.split_statements(sql)  # on: 'it\' ends the literal, s' starts one


def test_with_standard_conforming_strings_off_a_commit_in_a_literal_read_on_is_found():
    # Read with the setting on, the COMMIT is inside a literal and the three lines one statement:
    # sent as one query, the server (setting off) would commit the migration's transaction.
    sql = "INSERT INTO t VALUES ('a\\'');\nCOMMIT;\nINSERT INTO t VALUES ('b');  -- '\n"
    assert [text for _, text in split_off(sql)] == ["INSERT INTO t VALUES ('a\\'')", "COMMIT", "INSERT INTO t VALUES ('b')"]
    assert len(pm.split_statements(sql)) == 1


@pytest.mark.parametrize(
    "switch, escapes_after",
    [
        ("SET standard_conforming_strings = off;", True),
        ("set session standard_conforming_strings to 'off';", True),
        ("SET LOCAL \"standard_conforming_strings\" TO false;", True),
        ("SET standard_conforming_strings = of; -- a comment may follow", True),
        ("SET standard_conforming_strings TO DEFAULT;", False),
        ("RESET standard_conforming_strings;", False),
        ("RESET ALL;", False),
        ("SET standard_conforming_strings = on; /* a comment\n that goes on */", False),
    ],
)
def test_the_files_own_set_of_standard_conforming_strings_holds_from_the_next_statement(switch, escapes_after):
    sql = "SET standard_conforming_strings = off;\nSELECT 'a\\'b';\n%s\nSELECT '%s';\n" % (switch, "c\\'d" if escapes_after else "c\\")
    statements = pm.split_statements(sql, standard_strings=True)
    assert [s.escapes for s in statements] == [False, True, True, escapes_after]
    assert statements[-1].text == "SELECT '%s'" % ("c\\'d" if escapes_after else "c\\")


def test_set_local_has_no_effect_in_a_no_transaction_file():
    sql = "-- postgresql_migrate: no-transaction\nSET LOCAL standard_conforming_strings = off;\nSELECT 'c\\';\n"
    assert [s.escapes for s in pm.split_statements(sql, transactional=False)] == [False, False]
    with pytest.raises(ValueError, match="unterminated"):
        pm.split_statements(sql, transactional=True)


def test_more_sql_after_set_standard_conforming_strings_on_its_line_is_refused():
    # psql reads the rest of the line with the old setting, the server with the new one
    with pytest.raises(
        ValueError,
        match="line 1: more SQL follows SET standard_conforming_strings on the same "
        "line, which psql reads with the old setting and the server with the "
        "new one; put it on a line of its own",
    ):
        pm.split_statements("SET standard_conforming_strings = off; SELECT 'x\\'; COMMIT; SELECT '';\n")


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


# ---------------------------------------------------------------------------
# read_migration + analyze_migrations
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "filename, version, name, number",
    [
        ("001_create_users.sql", "001", "create_users", 1),
        ("7_x.sql", "7", "x", 7),
        ("20260101120000_add-index.sql", "20260101120000", "add-index", 20260101120000),
        ("010_V2_Users.sql", "010", "V2_Users", 10),
    ],
)
def test_good_file_names(filename, version, name, number):
    mig = migration(filename)
    assert (mig.version, mig.name, mig.number, mig.filename) == (version, name, number, filename)


@pytest.mark.parametrize(
    "filename",
    [
        "create_users.sql",  # no number
        "001.sql",  # no description
        "001_.sql",  # empty description
        "001_users.SQL",  # extension must be lower-case .sql
        "001 users.sql",  # space instead of _
        "001_add users.sql",  # space in the description
        "001-users.sql",  # - instead of _
        "v001_users.sql",  # prefix
        "001_-users.sql",  # description must start with a letter or digit
        "001_users.sql.txt",
    ],
)
def test_bad_file_names_are_refused(filename):
    assert problems_of_file(filename, "SELECT 1;") == ["%s: the name does not match NNN_description.sql" % filename]


def test_file_larger_than_max_file_size_is_refused():
    assert problems_of_file("001_big.sql", b"SELECT 1;\n", max_size=9) == ["001_big.sql: 10 bytes is larger than max_file_size (9)"]
    assert parse_migration("001_big.sql", b"SELECT 1;\n", 10).version == "001"


def test_non_utf8_file_is_refused_naming_the_line():
    raw = b"SELECT 1;\n-- caf\xe9 (latin-1)\nSELECT 2;\n"
    assert problems_of_file("002_latin1.sql", raw) == ["002_latin1.sql: not valid UTF-8 (byte 0xe9 at line 2); save the file as UTF-8"]


def test_non_utf8_line_with_cr_line_endings():
    raw = b"SELECT 1;\rSELECT 2;\r-- caf\xe9\r"
    assert problems_of_file("002_latin1.sql", raw) == ["002_latin1.sql: not valid UTF-8 (byte 0xe9 at line 3); save the file as UTF-8"]


def test_nul_byte_is_refused():
    assert problems_of_file("003_nul.sql", b"SELECT 1;\x00\n") == ["003_nul.sql: contains a NUL byte; save the file as UTF-8 text"]


@pytest.mark.parametrize("raw", [b"", b"\n\n", b"-- nothing yet\n/* later */\n", b";\n;\n", b"\xef\xbb\xbf"])
def test_file_without_statements_is_refused(raw):
    assert problems_of_file("004_empty.sql", raw) == ["004_empty.sql: contains no SQL statement"]


def test_bom_and_crlf_are_accepted_with_the_checksum_of_the_lf_file():
    lf = "-- users\nCREATE TABLE users (\n  id int\n);\nSELECT 1;\n"
    windows = parse_migration("001_users.sql", b"\xef\xbb\xbf" + lf.replace("\n", "\r\n").encode(), MIB)
    unix = parse_migration("001_users.sql", lf.encode(), MIB)
    assert windows.checksum == unix.checksum == pm.checksum_of(lf)
    assert windows.sql == lf
    assert [(s.line, s.text) for s in windows.statements] == [(2, "CREATE TABLE users (\n  id int\n)"), (5, "SELECT 1")]


def test_split_error_is_reported_with_the_file_name():
    assert problems_of_file("005_quote.sql", "SELECT 1;\nSELECT 'oops;\n") == ["005_quote.sql: unterminated string literal starting at line 2"]


def test_psql_include_is_refused_with_the_file_name():
    assert problems_of_file("006_include.sql", "-- load the rest\n\\i 007_rest.sql\n") == [
        "006_include.sql: psql meta-command at line 2 (\\i): only SQL is supported"
    ]


PG_DUMP_COPY = (
    "CREATE TABLE colours (id int, name text);\n"
    "COPY public.colours (id, name) FROM stdin;\n"
    "1\tred; or 'crimson'\n"
    "2\t\\N\n"
    "\\.\n"
    "CREATE INDEX colours_name ON colours (name);\n"
)


def test_split_steps_over_the_rows_of_a_copy_from_stdin_as_psql_does():
    statements = pm.split_statements(PG_DUMP_COPY)
    assert [(s.line, s.text) for s in statements] == [
        (1, "CREATE TABLE colours (id int, name text)"),
        (2, "COPY public.colours (id, name) FROM stdin"),
        (6, "CREATE INDEX colours_name ON colours (name)"),
    ]


@pytest.mark.parametrize(
    "sql, stream",
    [
        ("COPY public.colours (id, name) FROM stdin", "FROM STDIN"),
        ("copy colours from STDIN with (format csv, header)", "FROM STDIN"),
        ("COPY (SELECT 1) TO STDOUT", "TO STDOUT"),
        ("COPY colours TO stdout WITH (FORMAT csv)", "TO STDOUT"),
        ("COPY colours FROM '/srv/colours.csv'", None),
        ("COPY stdin FROM '/srv/a_table_named_stdin.csv'", None),
        ("COPY colours TO PROGRAM 'gzip > /tmp/x.gz'", None),
        ("CREATE TABLE stdin (id int)", None),
    ],
)
def test_copy_stream_is_a_copy_through_the_client(sql, stream):
    assert pm.copy_stream(one_statement(sql)) == stream


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
    assert pm.encoding_switch(one_statement(sql)) == encoding


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


# ---------------------------------------------------------------------------
# discover_migrations
# ---------------------------------------------------------------------------


def test_files_are_ordered_by_version_number(tmp_path):
    for name in ("10_c.sql", "2_b.sql", "001_a.sql", "0100_d.sql"):
        write(tmp_path, name)
    assert versions(pm.discover_migrations(str(tmp_path), MIB)) == ["001", "2", "10", "0100"]


def test_duplicate_versions_are_refused(tmp_path):
    write(tmp_path, "001_a.sql")
    write(tmp_path, "1_b.sql")
    write(tmp_path, "2_c.sql")
    assert discovery_problems(tmp_path) == ["001_a.sql and 1_b.sql: duplicate version 1"]


def test_every_bad_file_is_listed_at_once(tmp_path):
    write(tmp_path, "001_good.sql")
    write(tmp_path, "init.sql")
    write(tmp_path, "002_empty.sql", "-- todo\n")
    write(tmp_path, "003_tx.sql", "BEGIN;\nSELECT 1;\n")
    write(tmp_path, "004_latin1.sql", b"SELECT '\xe9';\n")
    write(tmp_path, "5_dup.sql")
    write(tmp_path, "005_dup.sql")
    # Listing: names, encoding and versions of every file, before the database is asked.
    problems = discovery_problems(tmp_path)
    assert problems == [
        "004_latin1.sql: not valid UTF-8 (byte 0xe9 at line 1); save the file as UTF-8",
        "005_dup.sql and 5_dup.sql: duplicate version 5",
        "init.sql: the name does not match NNN_description.sql",
    ]
    # Splitting: the statements of every file that would run.
    for name in ("init.sql", "004_latin1.sql", "5_dup.sql"):
        (tmp_path / name).unlink()
    with pytest.raises(pm.MigrationError) as excinfo:
        discover(tmp_path)
    assert excinfo.value.problems == [
        "002_empty.sql: contains no SQL statement",
        "003_tx.sql line 1: top-level BEGIN. The module runs each migration in its own transaction; remove the transaction control statements",
    ]


def test_other_files_hidden_files_and_subdirectories_are_ignored(tmp_path):
    write(tmp_path, "001_a.sql")
    write(tmp_path, "README.md", "# not SQL\n")
    write(tmp_path, "notes.txt", "BEGIN;")
    write(tmp_path, ".hidden.sql", "garbage '")
    write(tmp_path, ".002_swap.sql", "garbage '")
    write(tmp_path, "003_a.sql.orig", "garbage '")
    write(tmp_path, "archive/004_old.sql", "garbage '")
    assert [m.filename for m in pm.discover_migrations(str(tmp_path), MIB)] == ["001_a.sql"]


def test_every_bad_entry_is_named_at_once_and_none_raises(tmp_path):
    # A symlink loop used to end the run with "[Errno 40]", naming no other bad file.
    write(tmp_path, "001_good.sql")
    os.symlink("loop_b.sql", str(tmp_path / "002_loop.sql"))
    os.symlink("002_loop.sql", str(tmp_path / "loop_b.sql"))
    os.symlink("gone.sql", str(tmp_path / "003_dangling.sql"))
    (tmp_path / "004_dir.sql").mkdir()
    write(tmp_path, "005_latin1.sql", b"SELECT '\xe9';\n")
    write(tmp_path, "006_a.sql")
    write(tmp_path, "6_b.sql")
    write(tmp_path, "007_big.sql", "SELECT 1;\n" * 20)
    write(tmp_path, b"008_caf\xe9.sql".decode("utf-8", "surrogateescape"))
    assert discovery_problems(tmp_path, max_size=100) == [
        "002_loop.sql: a symbolic link to loop_b.sql that loops back on itself; point it at a file or remove it",
        "003_dangling.sql: a symbolic link to gone.sql, which does not exist; point it at a file or remove it",
        "004_dir.sql: a directory, not a file; migrations are NNN_description.sql files directly in path: rename it or move it out",
        "005_latin1.sql: not valid UTF-8 (byte 0xe9 at line 1); save the file as UTF-8",
        "007_big.sql: 200 bytes is larger than max_file_size (100)",
        "008_caf\\xe9.sql: the name is not valid UTF-8; rename the file",
        "006_a.sql and 6_b.sql: duplicate version 6",
        "loop_b.sql: a symbolic link to 002_loop.sql that loops back on itself; point it at a file or remove it",
    ]


def test_path_that_is_a_symlink_loop_is_a_message(tmp_path):
    os.symlink("b", str(tmp_path / "a"))
    os.symlink("a", str(tmp_path / "b"))
    assert discovery_problems(tmp_path / "a") == [
        "%s is a symbolic link that loops: point path at the directory that holds the NNN_description.sql files" % (tmp_path / "a")
    ]


# ---------------------------------------------------------------------------
# describe_path: a directory without migration files
# ---------------------------------------------------------------------------


def test_diesel_layout_is_described_with_what_to_do(tmp_path):
    write(tmp_path, "2024-01-01-000000_create_users/up.sql")
    write(tmp_path, "2024-01-01-000000_create_users/down.sql")
    write(tmp_path, "2024-02-01-000000_add_tasks/up.sql")
    write(tmp_path, "README.md")
    text = pm.describe_path(str(tmp_path))
    assert text.startswith(
        "%s holds no migration file (NNN_description.sql, directly in it): 2 subfolders with an "
        "up.sql (2024-01-01-000000_create_users/up.sql, 2024-02-01-000000_add_tasks/up.sql), the "
        "layout of diesel and similar tools; other files: README.md. Nothing was applied; " % tmp_path
    )
    assert "(for example 2024-01-01-000000_create_users/up.sql -> 001_create_users.sql)" in text
    assert text.endswith("If a directory without migrations is expected here, set allow_empty: true")


def test_migrations_one_level_down_are_pointed_at(tmp_path):
    write(tmp_path, "db/migrations/001_a.sql")
    write(tmp_path, "migrations/001_a.sql")
    (tmp_path / "src").mkdir()
    text = pm.describe_path(str(tmp_path))
    assert "subfolder holding NNN_description.sql files: migrations; other subfolders: db" in text
    assert "point path at the subfolder that holds them (for example %s/migrations)" % tmp_path in text


@pytest.mark.parametrize("hidden, says", [(False, "it is empty."), (True, "it is empty but for hidden entries.")])
def test_empty_directory_is_described(tmp_path, hidden, says):
    if hidden:
        write(tmp_path, ".gitkeep")
    text = pm.describe_path(str(tmp_path))
    assert says in text
    assert "point path at the directory that holds the NNN_description.sql files" in text


def test_upper_case_extension_is_reported_not_ignored(tmp_path):
    write(tmp_path, "001_a.SQL")
    assert discovery_problems(tmp_path) == ["001_a.SQL: the name does not match NNN_description.sql"]


def test_unreadable_file_is_reported(tmp_path):
    # a dangling symbolic link cannot be read, even by root
    write(tmp_path, "001_a.sql")
    os.symlink("gone.sql", str(tmp_path / "002_gone.sql"))
    assert discovery_problems(tmp_path) == ["002_gone.sql: a symbolic link to gone.sql, which does not exist; point it at a file or remove it"]


def test_fifo_is_refused_instead_of_read(tmp_path):
    # opening a named pipe for reading blocks until a writer comes: the run would hang
    write(tmp_path, "001_a.sql")
    os.mkfifo(str(tmp_path / "002_pipe.sql"))
    assert discovery_problems(tmp_path) == ["002_pipe.sql: not a regular file"]


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root reads mode-000 files")
def test_file_without_read_permission_is_reported(tmp_path):
    path = write(tmp_path, "001_secret.sql")
    path.chmod(0)
    try:
        assert discovery_problems(tmp_path) == ["001_secret.sql: cannot be read (Permission denied)"]
    finally:
        path.chmod(0o644)


def test_symlink_leading_outside_the_directory_is_refused(tmp_path):
    migrations = tmp_path / "migrations"
    outside = write(tmp_path, "elsewhere/secret.sql", "SELECT 1;")
    write(migrations, "001_a.sql")
    os.symlink(str(outside), str(migrations / "002_link.sql"))
    os.symlink("../elsewhere/secret.sql", str(migrations / "003_relative.sql"))
    real = os.path.realpath(str(outside))
    assert discovery_problems(migrations) == [
        "002_link.sql: a symbolic link to %s, outside the migrations directory" % real,
        "003_relative.sql: a symbolic link to %s, outside the migrations directory" % real,
    ]


def test_symlink_inside_the_directory_is_accepted(tmp_path):
    write(tmp_path, "shared/base.sql", "CREATE TABLE base (id int);\n")
    os.symlink("shared/base.sql", str(tmp_path / "001_base.sql"))
    (mig,) = discover(tmp_path)
    assert (mig.filename, mig.name, mig.statements[0].text) == ("001_base.sql", "base", "CREATE TABLE base (id int)")


def test_directory_reached_through_a_symlink_is_accepted(tmp_path):
    write(tmp_path, "release-42/001_a.sql")
    os.symlink("release-42", str(tmp_path / "current"))
    assert versions(pm.discover_migrations(str(tmp_path / "current"), MIB)) == ["001"]


@pytest.mark.parametrize(
    "make_path, says",
    [
        (lambda tmp: write(tmp, "001_a.sql"), "is not a directory"),
        (lambda tmp: tmp / "does-not-exist", "does not exist"),
    ],
    ids=["a-file", "missing"],
)
def test_path_must_be_a_directory(tmp_path, make_path, says):
    path = make_path(tmp_path)
    (problem,) = discovery_problems(path)
    assert problem.startswith("%s %s" % (path, says))
    assert problem.endswith("point path at the directory that holds the NNN_description.sql files")


def test_directory_the_user_cannot_list_is_named_with_the_user_and_what_to_do(tmp_path):
    path = tmp_path / "m"
    write(path, "001_a.sql")
    path.chmod(0o700)  # root's: nobody may not list it
    if os.geteuid() != 0:
        path.chmod(0o000)
        problems = discovery_problems(path)
        path.chmod(0o700)
    else:
        os.seteuid(65534)  # nobody, for the permission checks of this process
        try:
            problems = discovery_problems(path)
        finally:
            os.seteuid(0)
    user = pwd.getpwuid(65534 if os.geteuid() == 0 else os.geteuid()).pw_name
    assert problems == [
        "%s cannot be listed as %s (Permission denied); give that user read and search permission "
        "on it and search permission on its parent directories" % (path, user)
    ]


def test_empty_directory_has_no_migrations(tmp_path):
    assert pm.discover_migrations(str(tmp_path), MIB) == []


def test_file_larger_than_max_file_size_is_refused_in_discovery(tmp_path):
    write(tmp_path, "001_big.sql", "SELECT 1;\n" * 10)
    problems = discovery_problems(tmp_path, max_size=50)
    assert len(problems) == 1 and problems[0].startswith("001_big.sql: ")
    assert problems[0].endswith("is larger than max_file_size (50)")


def test_too_large_message_states_the_file_size(tmp_path):
    write(tmp_path, "001_big.sql", "SELECT 1;\n" * 10)  # 100 bytes
    assert discovery_problems(tmp_path, max_size=50) == ["001_big.sql: 100 bytes is larger than max_file_size (50)"]


# ---------------------------------------------------------------------------
# version_number
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [
        ("007", 7),
        ("14", 14),
        (" 14 ", 14),
        (3, 3),
        ("v1", None),
        ("", None),
        ("1.2", None),
        ("-1", None),
        ("1_a", None),
        # digits to Python (isdigit, int(), \\d), never a version: 1² would crash int(), ١ would be 1
        ("\u00b2", None),
        ("1\u00b2", None),
        ("\u0661", None),
        ("\u0660\u0660\u0661", None),
        ("\uff11", None),
    ],
)
def test_version_number(text, expected):
    assert pm.version_number(text) == expected


# ---------------------------------------------------------------------------
# plan_migrations
# ---------------------------------------------------------------------------


@pytest.fixture
def four():
    """001..004, each creating a table; 003 is a no-transaction migration."""
    return [
        migration("001_users.sql", "CREATE TABLE users (id int);"),
        migration("002_orders.sql", "CREATE TABLE orders (id int);"),
        migration("003_index.sql", "-- postgresql_migrate: no-transaction\nCREATE INDEX CONCURRENTLY i ON orders (id);"),
        migration("004_items.sql", "CREATE TABLE items (id int);"),
    ]


def test_empty_history_applies_everything(four):
    result = plan(four)
    assert versions(result["to_apply"]) == ["001", "002", "003", "004"]
    assert set(statuses(result).values()) == {"pending"}
    assert (result["problems"], result["warnings"], result["missing"], result["adopt"], result["accept"]) == ([], [], [], [], [])
    assert [e["file"] for e in result["entries"]] == [m.filename for m in four]
    assert result["entries"][2]["transactional"] is False


def test_recorded_versions_with_same_checksum_are_already_applied(four):
    result = plan(four, history_of(recorded(four[0]), recorded(four[1])))
    assert statuses(result) == {"001": "already_applied", "002": "already_applied", "003": "pending", "004": "pending"}
    assert result["entries"][0]["applied_at"] == "2026-01-01 10:00:00+00"
    assert versions(result["to_apply"]) == ["003", "004"]
    assert result["problems"] == [] and result["adopt"] == []


@pytest.mark.parametrize("checksum", [None, ""])
def test_recorded_version_without_checksum_is_adopted(four, checksum):
    result = plan(four, history_of(recorded(four[0], checksum=checksum), recorded(four[1])))
    entry = result["entries"][0]
    assert (entry["status"], entry["adopted"], entry["changed"]) == ("already_applied", True, False)
    assert versions(result["adopt"]) == ["001"]
    assert versions(result["to_apply"]) == ["003", "004"]
    assert result["problems"] == []


def test_history_version_written_differently_matches_by_number(four):
    row = dict(recorded(four[1]), version="2")
    result = plan(four, history_of(recorded(four[0]), row))
    assert statuses(result)["002"] == "already_applied"
    assert result["missing"] == []


def test_changed_applied_file_is_drift(four):
    result = plan(four, history_of(recorded(four[0]), recorded(four[1], checksum="0123456789abcdef" * 4)))
    entry = result["entries"][1]
    assert entry["drift"] is True
    assert entry["message"] == "file changed since it was applied (recorded checksum 0123456789ab)"
    assert result["problems"] == [
        'applied migrations changed on disk: 002_orders.sql. An applied migration is never run again: restore '
        'the file as it was applied and put the change in a new migration, or, if the edit is deliberate and '
        'harmless, rerun with accept_checksums: ["002"]'
    ]


def test_several_drifted_files_are_named_in_one_problem(four):
    result = plan(four, history_of(recorded(four[0], checksum="a" * 64), recorded(four[1], checksum="b" * 64)))
    assert len(result["problems"]) == 1
    assert "changed on disk: 001_users.sql, 002_orders.sql." in result["problems"][0]
    assert result["problems"][0].endswith('accept_checksums: ["001", "002"]')


@pytest.mark.parametrize("accepted", ["002", "2"])
def test_accept_checksums_accepts_drift(four, accepted):
    result = plan(four, history_of(recorded(four[0]), recorded(four[1], checksum="b" * 64)), accept_checksums=[accepted])
    entry = result["entries"][1]
    assert (entry["status"], entry["drift"], entry["checksum_accepted"]) == ("already_applied", False, True)
    assert versions(result["accept"]) == ["002"]
    assert result["problems"] == [] and result["warnings"] == []
    assert versions(result["to_apply"]) == ["003", "004"]


def test_unused_accept_checksums_is_a_warning(four):
    result = plan(four, history_of(recorded(four[0])), accept_checksums=["001", "004"])
    assert result["problems"] == []
    assert result["warnings"] == ["accept_checksums lists 1, 4, which did not change"]


@pytest.mark.parametrize("option", ["accept_checksums", "retry_incomplete"])
@pytest.mark.parametrize("value", ["latest", "\u0661", "1\u00b2"])
def test_non_numeric_version_lists_are_refused(four, option, value):
    result = plan(four, **{option: ["002", value]})
    assert result["problems"] == [
        '%s holds %r, not a version number: a version is the digits 0-9 of a migration file name, for example "014"' % (option, value)
    ]


def test_pending_version_below_an_applied_one_is_refused(four):
    result = plan(four, history_of(recorded(four[0]), recorded(four[2])))
    assert result["problems"] == [
        "002_orders.sql is pending but version 003 is already applied: applying it out of order could run it "
        "against a newer schema than it was written for. Renumber it above 003, or set allow_out_of_order: "
        "true if it is safe"
    ]
    assert result["entries"][1]["message"] == "out of order: lower than the highest applied version"
    assert "002" not in versions(result["to_apply"])


def test_allow_out_of_order_applies_the_lower_version(four):
    result = plan(four, history_of(recorded(four[0]), recorded(four[2])), allow_out_of_order=True)
    assert result["problems"] == []
    assert versions(result["to_apply"]) == ["002", "004"]


def test_target_version_skips_later_migrations(four):
    result = plan(four, history_of(recorded(four[0])), target_version="002")
    assert statuses(result) == {"001": "already_applied", "002": "pending", "003": "skipped", "004": "skipped"}
    assert result["entries"][3]["message"] == "beyond target_version 002"
    assert versions(result["to_apply"]) == ["002"]
    assert result["problems"] == [] and result["warnings"] == []


def test_target_version_matches_by_number():
    migs = [migration("013_a.sql"), migration("014_b.sql"), migration("015_c.sql")]
    result = plan(migs, target_version="14")
    assert versions(result["to_apply"]) == ["013", "014"]
    assert result["problems"] == []


@pytest.mark.parametrize("target", ["5", "abc"])
def test_unknown_target_version_is_refused_listing_versions(four, target):
    assert plan(four, target_version=target)["problems"] == ["target_version %s does not match any migration file (versions: 001, 002, 003, 004)" % target]


def test_unknown_target_version_without_files():
    assert plan([], target_version="1")["problems"] == ["target_version 1 does not match any migration file (versions: none)"]


def test_target_below_applied_versions_warns_and_applies_nothing(four):
    result = plan(four, history_of(*[recorded(m) for m in four[:3]]), target_version="1")
    assert result["to_apply"] == []
    assert result["problems"] == []
    assert result["warnings"] == ["target_version 1 is below the highest applied version 003; migrations are never rolled back"]


def test_recorded_versions_without_file_are_missing_not_a_problem(four):
    gone = dict(version="000", name="bootstrap", checksum="c" * 64, applied_at=None)
    result = plan(four[1:], history_of(gone, recorded(four[0]), recorded(four[1])))
    assert result["missing"] == ["000", "001"]
    assert result["problems"] == []
    assert result["warnings"] == ["versions recorded in the history table have no file in the migrations directory: 000, 001"]
    assert versions(result["to_apply"]) == ["003", "004"]


INCOMPLETE_003 = {
    3: dict(version="003", started_at="2026-01-02 03:04:05+00", started_by="ci@runner", error='line 2: SQLSTATE 42P01: relation "orders" does not exist')
}


def test_incomplete_no_transaction_version_stops_the_run(four):
    result = plan(four, history_of(recorded(four[0]), recorded(four[1])), INCOMPLETE_003)
    assert result["problems"] == [
        '003_index.sql is a no-transaction migration that an earlier run left incomplete (started '
        '2026-01-02 03:04:05+00 by ci@runner, error: line 2: SQLSTATE 42P01: relation "orders" does not exist). '
        'Some of its statements may have run. Inspect the database (for an interrupted CREATE INDEX '
        'CONCURRENTLY: SELECT indexrelid::regclass FROM pg_index WHERE NOT indisvalid; drop the invalid index), '
        'then rerun with retry_incomplete: ["003"]'
    ]
    entry = result["entries"][2]
    assert entry["status"] == "pending"
    assert entry["message"] == (
        'left incomplete by an earlier run (started 2026-01-02 03:04:05+00, error: line 2: SQLSTATE 42P01: relation "orders" does not exist)'
    )
    assert "003" not in versions(result["to_apply"])


def test_interrupted_no_transaction_version_says_so(four):
    incomplete = {3: dict(version="003", started_at="2026-01-02 03:04:05+00", started_by=None, error=None)}
    (problem,) = plan(four, history_of(recorded(four[0]), recorded(four[1])), incomplete)["problems"]
    assert "(started 2026-01-02 03:04:05+00 by unknown, the run was interrupted)" in problem


@pytest.mark.parametrize("retry", ["003", "3"])
def test_retry_incomplete_applies_it_again(four, retry):
    result = plan(four, history_of(recorded(four[0]), recorded(four[1])), INCOMPLETE_003, retry_incomplete=[retry])
    assert result["problems"] == [] and result["warnings"] == []
    assert versions(result["to_apply"]) == ["003", "004"]


def test_incomplete_version_with_its_own_history_row_is_still_incomplete(four):
    """A no-transaction file that registers itself (INSERT INTO schema_migrations ...) and then
    stops: its row must not make it count as applied."""
    own_row = dict(recorded(four[2]), checksum=None)  # written by the file: no checksum
    history = history_of(recorded(four[0]), recorded(four[1]), own_row)
    stopped = plan(four, history, INCOMPLETE_003)
    assert [p.split(" is a ")[0] for p in stopped["problems"]] == ["003_index.sql"]
    assert "003" not in versions(stopped["adopt"]) + versions(stopped["to_apply"])
    retried = plan(four, history, INCOMPLETE_003, retry_incomplete=["003"])
    assert retried["problems"] == []
    assert versions(retried["to_apply"]) == ["003", "004"] and versions(retried["adopt"]) == []


def test_unused_retry_incomplete_is_a_warning(four):
    result = plan(four, retry_incomplete=["2"])
    assert result["problems"] == []
    assert result["warnings"] == ["retry_incomplete lists 2, which is not incomplete"]


def test_several_problems_are_reported_together(four):
    result = plan(four, history_of(recorded(four[0], checksum="a" * 64), recorded(four[2])), target_version="9")
    assert len(result["problems"]) == 3
    assert result["problems"][0].startswith("target_version 9 does not match")
    assert result["problems"][1].startswith("002_orders.sql is pending but version 003 is already applied")
    assert result["problems"][2].startswith("applied migrations changed on disk: 001_users.sql.")


# ---------------------------------------------------------------------------
# error_line
# ---------------------------------------------------------------------------

FAILING_FILE = (
    "-- orders\n"  # 1
    "CREATE TABLE orders (id int);\n"  # 2
    "\n"  # 3
    "INSERT INTO orders\n"  # 4
    "SELECT id\n"  # 5
    "FROM nope\n"  # 6
    "WHERE id > 0;\n"  # 7
)


def test_error_position_maps_to_the_line_of_the_file():
    statement = pm.split_statements(FAILING_FILE)[1]
    position = statement.text.index("nope") + 1  # PostgreSQL positions are 1-based
    assert pm.error_line(statement, position) == 6
    assert pm.error_line(statement, str(position)) == 6
    assert pm.error_line(statement, 1) == 4
    assert pm.error_line(statement, statement.text.index("WHERE") + 1) == 7


@pytest.mark.parametrize("position", [None, "", 0, "not a number"])
def test_without_position_the_statement_line_is_used(position):
    statement = pm.split_statements(FAILING_FILE)[1]
    assert pm.error_line(statement, position) == 4


# ---------------------------------------------------------------------------
# validate_params / argument_spec
# ---------------------------------------------------------------------------


def test_defaults_are_valid():
    params = module_params()
    assert pm.validate_params(params) == []
    assert (params["table"], params["lock_timeout"], params["statement_timeout"], params["lock_wait"], params["lock_retries"], params["max_file_size"]) == (
        "schema_migrations",
        "5s",
        None,
        60,
        3,
        52428800,
    )


@pytest.mark.parametrize(
    "table",
    [
        "x; DROP TABLE users",
        'a"b',
        "a.b.c",
        "",
        "1abc",
        "users ",
        "schema.",
        ".users",
        "a-b",
        "a" * 64,
        "users; --",
    ],
)
def test_unsafe_table_names_are_refused(table):
    assert pm.validate_params(module_params(table=table)) == [
        "table %r is not a plain identifier or schema.identifier (letters, digits, _; at most 52 characters for the table)" % table
    ]


@pytest.mark.parametrize("table", ["schema_migrations", "public.schema_migrations", "_x", "Ops.History2", "a" * 52, "s" * 63 + "." + "t" * 52])
def test_plain_table_names_are_accepted(table):
    assert pm.validate_params(module_params(table=table)) == []


def test_table_name_with_trailing_newline_is_refused():
    assert pm.validate_params(module_params(table="users\n")) != []


def test_incomplete_marker_table_never_collides_with_the_history_table():
    table = "m" * 63
    accepted = pm.validate_params(module_params(table=table)) == []
    marker = pm.incomplete_table_name(table)
    # PostgreSQL keeps the first NAMEDATALEN-1 = 63 bytes of an identifier
    assert not accepted or marker.encode()[:63] != table.encode()[:63]


@pytest.mark.parametrize("option", ["lock_timeout", "statement_timeout"])
@pytest.mark.parametrize("value", ["5 seconds", "-1s", "5S", "abc", "", "1e3", "5s; SELECT 1"])
def test_bad_durations_are_refused(option, value):
    assert pm.validate_params(module_params(**{option: value})) == ["%s %r is not a PostgreSQL duration such as 5s, 500ms or 0" % (option, value)]


@pytest.mark.parametrize("value", ["5s", "500ms", "0", "1.5s", "2min", "1h", "1d", "250us", "100", " 5 s "])
def test_durations_are_accepted(value):
    assert pm.validate_params(module_params(lock_timeout=value, statement_timeout=value)) == []


@pytest.mark.parametrize(
    "overrides, problem",
    [
        (dict(lock_wait=-1), "lock_wait must be 0 to 2147483 seconds, not -1"),
        (dict(lock_wait=float("nan")), "lock_wait must be 0 to 2147483 seconds, not nan"),
        (dict(lock_wait=float("inf")), "lock_wait must be 0 to 2147483 seconds, not inf"),
        (dict(lock_wait=1e12), "lock_wait must be 0 to 2147483 seconds, not 1e+12"),
        (dict(db=""), "db is empty: name the database to migrate (with no name the driver would connect to a default database)"),
        (dict(db="  "), "db is empty: name the database to migrate (with no name the driver would connect to a default database)"),
        (dict(path=""), "path is empty: give the directory of the migration files"),
        (dict(lock_retries=-1), "lock_retries must be 0 or more"),
        (dict(max_file_size=0), "max_file_size must be a positive number of bytes"),
        (dict(target_version="v2"), "target_version 'v2' is not a version number: a version is the digits 0-9 of a migration file name, for example \"014\""),
        (
            dict(target_version="\u00b2"),
            "target_version '\u00b2' is not a version number: a version is the digits 0-9 of a migration file name, for example \"014\"",
        ),
        (
            dict(accept_checksums=["\u0661", "2", "x"]),
            "accept_checksums holds '\u0661', 'x', not version numbers: a version is the digits 0-9 of a migration file name, for example \"014\"",
        ),
        (
            dict(retry_incomplete=["\u0661"]),
            "retry_incomplete holds '\u0661', not a version number: a version is the digits 0-9 of a migration file name, for example \"014\"",
        ),
    ],
)
def test_bad_numbers_are_refused(overrides, problem):
    assert pm.validate_params(module_params(**overrides)) == [problem]


def test_edge_values_are_accepted():
    assert pm.validate_params(module_params(lock_wait=0, lock_retries=0, max_file_size=1, target_version="014")) == []
    assert pm.validate_params(module_params(lock_wait=2147483)) == []


def test_all_parameter_problems_are_reported_at_once():
    params = module_params(table="a.b.c", lock_timeout="soon", lock_wait=-1, target_version="x")
    assert len(pm.validate_params(params)) == 4


def _options(documentation):
    return yaml.safe_load(documentation)["options"]


def test_documentation_is_valid_yaml():
    # ansible-doc and ansible-test sanity read these; a stray ': ' in a plain scalar breaks them.
    for block in (pm.DOCUMENTATION, pm.EXAMPLES, pm.RETURN):
        assert yaml.safe_load(block)


def test_documented_options_match_argument_spec():
    from ansible_collections.community.postgresql.plugins.module_utils.postgres import (
        postgres_common_argument_spec,
    )

    spec = pm.argument_spec()
    documented = _options(pm.DOCUMENTATION)
    own = set(spec) - set(postgres_common_argument_spec())
    assert own == set(documented)
    for name in own:
        for key, missing in (("type", None), ("default", None), ("required", False), ("aliases", None), ("elements", None)):
            assert spec[name].get(key, missing) == documented[name].get(key, missing), (name, key)


# ---------------------------------------------------------------------------
# default_lock_key / incomplete_table_name
# ---------------------------------------------------------------------------


def test_default_lock_key_is_stable_and_fits_a_positive_bigint():
    # Pinned: runs of different module versions against one database must share the key.
    assert pm.default_lock_key("schema_migrations") == 2670252943535968100
    for table in ("schema_migrations", "public.schema_migrations", "ops.history", "x"):
        key = pm.default_lock_key(table)
        assert key == pm.default_lock_key(table)
        assert 0 < key < 2**63


def test_default_lock_key_differs_per_table():
    tables = ["schema_migrations", "ops.history", "schema_migrations2"]
    assert len(set(pm.default_lock_key(t) for t in tables)) == len(tables)


def test_default_lock_key_is_the_same_for_the_same_table():
    assert pm.default_lock_key("public.schema_migrations") == pm.default_lock_key("schema_migrations")


@pytest.mark.parametrize(
    "table, marker",
    [
        ("schema_migrations", "schema_migrations_incomplete"),
        ("ops.history", "ops.history_incomplete"),
    ],
)
def test_incomplete_table_name(table, marker):
    assert pm.incomplete_table_name(table) == marker


# ---------------------------------------------------------------------------
# summarize / build_diff
# ---------------------------------------------------------------------------


def test_summarize_counts_every_status():
    entries = [dict(status=s) for s in ("applied", "applied", "already_applied", "skipped")]
    assert pm.summarize(entries) == dict(applied=2, already_applied=1, would_apply=0, failed=0, skipped=1, pending=0)
    assert pm.summarize([]) == dict((s, 0) for s in pm.STATUSES)


@pytest.mark.parametrize("check_mode, status, label", [(False, "applied", "applied"), (True, "would_apply", "would apply")])
def test_diff_shows_the_sql_of_applied_migrations_only(check_mode, status, label):
    migs = [migration("001_a.sql", "SELECT 1;\n"), migration("002_b.sql", "SELECT 2;\n"), migration("003_c.sql", "SELECT 3;\n")]
    entries = [pm.new_entry(m) for m in migs]
    entries[0]["status"] = "already_applied"
    entries[1]["status"] = status
    entries[2]["status"] = "skipped"
    assert pm.build_diff(entries, dict((m.filename, m) for m in migs), check_mode) == [
        dict(before_header="002_b.sql (not applied)", after_header="002_b.sql (%s)" % label, before="", after="SELECT 2;\n")
    ]


# ---------------------------------------------------------------------------
# connection_hint
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "error, hint",
    [
        ('FATAL:  password authentication failed for user "app"', "check login_user and login_password"),
        ("fe_sendauth: no password supplied", "check login_user and login_password"),
        ('FATAL:  Peer authentication failed for user "postgres"', "become_user: postgres"),
        ('FATAL:  database "st44" does not exist', "check the db parameter"),
        ('connection to server on socket "/run/postgresql/.s.PGSQL.5432" failed: No such file or directory', "login_unix_socket"),
        ('connection to server at "db" (10.0.0.5), port 5432 failed: Connection refused', "login_host"),
        ("could not connect to server", "login_host"),
        ("SSL error: certificate verify failed", "check the connection parameters"),
        ('FATAL:  role "nobody" does not exist', "check the connection parameters"),
    ],
)
def test_connection_hint(error, hint):
    assert hint in pm.connection_hint(error)


# ---------------------------------------------------------------------------
# SqlFailure / ApplyFailure / failure_message
# ---------------------------------------------------------------------------


class Diag(object):
    def __init__(self, sqlstate=None, message_primary=None, message_detail=None, message_hint=None, statement_position=None):
        self.sqlstate = sqlstate
        self.message_primary = message_primary
        self.message_detail = message_detail
        self.message_hint = message_hint
        self.statement_position = statement_position


class DriverError(Exception):
    """Stand-in for a psycopg error: str() is the full server text, diag the fields."""

    def __init__(self, text, diag=None, pgcode=None):
        super(DriverError, self).__init__(text)
        if diag is not None:
            self.diag = diag
        self.pgcode = pgcode


@pytest.fixture
def orders():
    return migration("003_orders.sql", FAILING_FILE)


@pytest.fixture
def orders_index():
    return migration(
        "004_orders_index.sql",
        "-- postgresql_migrate: no-transaction\nCREATE INDEX CONCURRENTLY a ON orders (id);\nCREATE INDEX CONCURRENTLY b ON orders (nope);\n",
    )


def sql_failure(sqlstate, message, position=None, detail=None, hint=None):
    return pm.SqlFailure(DriverError("ERROR:  " + message, Diag(sqlstate, message, detail, hint, position)))


def test_sql_failure_describes_state_message_detail_and_hint():
    failure = sql_failure(
        "23505", 'duplicate key value violates unique constraint "users_pkey"', detail="Key (id)=(1) already exists.", hint="Use ON CONFLICT."
    )
    assert failure.describe() == (
        'SQLSTATE 23505: duplicate key value violates unique constraint "users_pkey" DETAIL: Key (id)=(1) already exists. HINT: Use ON CONFLICT.'
    )


def test_sql_failure_without_diag_uses_pgcode_and_text():
    failure = pm.SqlFailure(DriverError("  server closed the connection unexpectedly\n", pgcode="08006"))
    assert (failure.sqlstate, failure.message, failure.position) == ("08006", "server closed the connection unexpectedly", None)
    assert failure.describe() == "SQLSTATE 08006: server closed the connection unexpectedly"
    assert pm.SqlFailure(DriverError("boom")).describe() == "boom"


def test_libpq_text_of_a_lost_connection_becomes_one_line_without_final_period():
    # what psycopg2 says when the backend is terminated: the message goes on with ". The run lost ..."
    text = "server closed the connection unexpectedly\n\tThis probably means the server terminated abnormally\n\tbefore or while processing the request.\n"
    assert pm.SqlFailure(DriverError(text)).message == (
        "server closed the connection unexpectedly This probably means the server terminated abnormally before or while processing the request"
    )


def test_a_statement_the_driver_refuses_is_no_lost_connection_but_a_terminated_session_is(pm, db):
    """Only a closed connection makes the run say so (and the commit outcome unknown)."""
    conn = db.connect()
    try:
        session = pm.Db(conn)
        with pytest.raises(pm.SqlFailure) as refused:
            session.run("SELECT %s, %s", (1,))  # one parameter for two placeholders: psycopg refuses
        assert refused.value.sqlstate is None and not refused.value.connection_lost
        pid = session.value("SELECT pg_backend_pid() AS v")
        db.sql("SELECT pg_terminate_backend(%s)", (pid,))
        with pytest.raises(pm.SqlFailure) as lost:
            session.run("SELECT 1")
        assert lost.value.connection_lost
    finally:
        conn.close()


def test_failure_details_name_file_line_and_statement(orders):
    statement = orders.statements[1]
    failure = pm.ApplyFailure(orders, statement, sql_failure("42P01", 'relation "nope" does not exist', position=statement.text.index("nope") + 1))
    assert failure.details() == dict(
        version="003",
        file="003_orders.sql",
        line=6,
        sqlstate="42P01",
        message='relation "nope" does not exist',
        detail=None,
        hint=None,
        statement="INSERT INTO orders\nSELECT id\nFROM nope\nWHERE id > 0",
        attempts=1,
    )


def test_failure_message_of_a_transactional_migration(orders):
    statement = orders.statements[1]
    failure = pm.ApplyFailure(orders, statement, sql_failure("42P01", 'relation "nope" does not exist', position=statement.text.index("nope") + 1))
    assert pm.failure_message(failure, ["001", "002"], "Fix the file and rerun.") == (
        'migration 003 failed at 003_orders.sql line 6: SQLSTATE 42P01: relation "nope" does not exist. '
        'Nothing of 003 was applied (its transaction was rolled back). '
        'Applied by this run before it: 001, 002. Fix the file and rerun.'
    )


def test_failure_message_for_lock_timeout_explains_the_lock(orders):
    failure = pm.ApplyFailure(orders, orders.statements[0], sql_failure("55P03", 'canceling statement due to lock timeout'))
    failure.attempts = 4
    message = pm.failure_message(failure, [], "Fix the file and rerun.")
    assert message.startswith(
        "migration 003 failed at 003_orders.sql line 2: SQLSTATE 55P03: canceling "
        "statement due to lock timeout (after 4 attempts). Another session held a lock "
        "the migration needed for longer than lock_timeout; find it with SELECT pid, "
        "state, query FROM pg_stat_activity"
    )
    assert "idle in transaction" in message
    assert message.endswith(
        "Nothing of 003 was applied (its transaction was rolled back). "
        "Applied by this run before it: none. The file is not the cause; rerun when that "
        "session is gone."
    )


def test_versions_wider_than_the_history_column_are_named():
    migrations = [migration("016_tasks.sql"), migration("20240101120000_timestamped.sql")]
    assert pm.versions_too_wide(migrations, None) == []
    assert pm.versions_too_wide(migrations, 50) == []
    assert pm.versions_too_wide(migrations, 10) == [
        "versions 20240101120000 have more than the 10 characters the history table's version column holds; "
        "widen it in a migration of its own (ALTER TABLE ... ALTER COLUMN version TYPE varchar(50)) or keep "
        "version numbers short"
    ]


def test_a_hint_ending_in_a_period_gives_no_double_period(orders):
    failure = pm.ApplyFailure(
        orders,
        None,
        sql_failure("42883", "operator does not exist: bigint = text", hint="You might need to add explicit type casts."),
        during="preparing the history table public.mig_hist",
    )
    assert "HINT: You might need to add explicit type casts. Nothing of 003 was applied" in pm.failure_message(failure, [], "Fix the file and rerun.")


def test_failure_of_the_history_write_is_not_blamed_on_the_file(orders):
    failure = pm.ApplyFailure(
        orders,
        None,
        sql_failure("22001", "value too long for type character varying(10)"),
        during="writing its row to the history table public.schema_migrations",
    )
    assert pm.failure_message(failure, ["001"], "Fix the file and rerun.") == (
        "migration 003 failed while writing its row to the history table public.schema_migrations: "
        "SQLSTATE 22001: value too long for type character varying(10). Nothing of 003 was applied (its "
        "transaction was rolled back). Applied by this run before it: 001. The file's statements succeeded: "
        "check the table option, that the login user (or session_role) may create and write that table in its "
        "schema, and that the file leaves its transaction writable; then rerun."
    )


def test_failure_before_a_no_transaction_file_starts_says_none_of_it_ran(orders_index):
    failure = pm.ApplyFailure(
        orders_index,
        None,
        sql_failure("42501", "permission denied for schema public"),
        during="creating its progress row in public.schema_migrations_incomplete",
        progress="none of its statements ran",
    )
    message = pm.failure_message(failure, [], "Fix the file and rerun.")
    assert message.startswith(
        "migration 004 failed while creating its progress row in "
        "public.schema_migrations_incomplete: SQLSTATE 42501: permission denied for schema "
        "public. 004 is a no-transaction migration: none of its statements ran. "
    )
    assert message.endswith(
        "The file's statements succeeded: check the table option, that the login user (or "
        "session_role) may create and write that table in its schema, and that the file "
        "leaves its transaction writable; then rerun."
    )


def test_lock_timeout_of_a_no_transaction_file_says_retry_it(orders_index):
    failure = pm.ApplyFailure(orders_index, orders_index.statements[0], sql_failure("55P03", "canceling statement due to lock timeout"))
    assert pm.failure_message(failure, [], "Fix the file and rerun.").endswith(
        "004 is a no-transaction migration: it stopped at its first statement (line 2), so no statement of it "
        "completed in this run; it is marked incomplete and "
        "the next run explains how to retry it. Applied by this run before it: none. The file is not the cause; "
        "retry it (retry_incomplete) when that session is gone."
    )


def test_failure_message_of_a_no_transaction_migration(orders_index):
    statement = orders_index.statements[1]
    failure = pm.ApplyFailure(orders_index, statement, sql_failure("42703", 'column "nope" does not exist'))
    message = pm.failure_message(failure, ["003"], "Fix the file and rerun.")
    assert message == (
        'migration 004 failed at 004_orders_index.sql line 3: SQLSTATE 42703: column "nope" does not exist. '
        '004 is a no-transaction migration: statements before line 3 stayed applied; it is marked incomplete '
        'and the next run explains how to retry it. Applied by this run before it: 003. Fix the file and rerun.'
    )


def test_lost_connection_in_a_transaction_says_the_rerun_applies_it_again(orders):
    failure = pm.ApplyFailure(orders, orders.statements[1], sql_failure("57P01", "terminating connection due to administrator command"))
    assert pm.failure_message(failure, ["001"], "Fix the file and rerun.").endswith(
        "Nothing of 003 was applied (its transaction was rolled back). Applied by this run before it: 001. "
        "Once the server accepts connections, rerun: it applies 003 again."
    )


def test_failure_message_when_commit_failed(orders):
    failure = pm.ApplyFailure(orders, None, sql_failure("08006", "server closed the connection unexpectedly"), during_commit=True)
    assert failure.details()["line"] is None
    assert pm.failure_message(failure, [], "Fix the file and rerun.") == (
        "migration 003 failed at 003_orders.sql: SQLSTATE 08006: server closed the connection unexpectedly. "
        "The connection failed while committing, so whether 003 was recorded is unknown; rerun: the next run "
        "applies it only if it is not recorded. Applied by this run before it: none. Once the server accepts "
        "connections, rerun."
    )


@pytest.mark.parametrize(
    "marked, hint",
    [
        (True, "Once the server accepts connections, rerun; it says how to retry 004."),
        (False, "Once the server accepts connections, rerun."),
    ],
    ids=["after-its-marker", "before-its-marker"],
)
def test_lost_connection_in_a_no_transaction_file_says_to_rerun_not_to_check_the_table(orders_index, marked, hint):
    failure = pm.ApplyFailure(
        orders_index,
        None,
        sql_failure("57P01", "terminating connection due to administrator command"),
        during="creating its progress row in public.schema_migrations_incomplete",
        progress=None if marked else pm.NOTHING_RAN,
    )
    message = pm.failure_message(failure, [], "Fix the file and rerun.")
    assert message.endswith("Applied by this run before it: none. " + hint)


def test_failure_message_for_statement_that_refuses_a_transaction(orders):
    failure = pm.ApplyFailure(orders, orders.statements[0], sql_failure("25001", "CREATE DATABASE cannot run inside a transaction block"))
    assert ('. Mark the file with the line "-- postgresql_migrate: no-transaction" if it must run outside a transaction') in pm.failure_message(
        failure, [], "Fix the file and rerun."
    )


# ---------------------------------------------------------------------------
# foreign_history_table: another tool's table where the history table should be
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "columns, looks_like",
    [
        (
            ["installed_rank", "version", "description", "type", "script", "checksum", "installed_by", "installed_on", "execution_time", "success"],
            "Flyway's (flyway_schema_history)",
        ),
        (["version", "dirty"], "golang-migrate's"),
        (["id", "version_id", "is_applied", "tstamp"], "goose's (goose_db_version)"),
        (["version", "description", "installed_on", "success", "checksum", "execution_time"], "sqlx's (_sqlx_migrations)"),
        (["version"], "Rails' or dbmate's"),
        (["id", "app", "name", "applied"], "Django's (django_migrations)"),
    ],
)
def test_another_tools_history_table_is_recognised(columns, looks_like):
    text = pm.foreign_history_table("public.schema_migrations", [(c, "text") for c in columns])
    assert "its columns are %s, without" % ", ".join("%s text" % c for c in columns) in text
    assert "It looks like %s history table, which this tool must not write to" % looks_like in text
    assert "the table option (the role variable db_deploy_table)" in text


# ---------------------------------------------------------------------------
# index_targets: what a no-transaction statement builds or relies on
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "sql, target",
    [
        ("CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS idx ON t (c)", dict(kind="create", index="idx", table=["t"])),
        ("create index concurrently on \"App\".\"T\" using btree (c)", dict(kind="create", index=None, table=["App", "T"])),
        ("CREATE INDEX /* why */ CONCURRENTLY \"Big\" -- note\n ON ONLY s.Orders(c)", dict(kind="create", index="Big", table=["s", "orders"])),
        ("CREATE INDEX \"on\" ON t (c)", dict(kind="create", index="on", table=["t"])),
        ("REINDEX (VERBOSE) INDEX CONCURRENTLY s.idx", dict(kind="reindex", what="INDEX", name=["s", "idx"])),
        ("REINDEX TABLE CONCURRENTLY t", dict(kind="reindex", what="TABLE", name=["t"])),
        ("REINDEX SCHEMA CONCURRENTLY app", dict(kind="reindex", what="SCHEMA", name=["app"])),
        ("ALTER INDEX IF EXISTS app.p_idx ATTACH PARTITION app.p1_idx", dict(kind="attach", index=["app", "p_idx"])),
        ("REINDEX INDEX idx", None),  # one transaction: leaves nothing invalid
        ("ALTER INDEX idx RENAME TO other", None),
        ("CREATE TABLE t (id int)", None),
        ("VACUUM t", None),
    ],
)
def test_index_targets(sql, target):
    (statement,) = pm.split_statements(sql)
    assert pm.index_targets(statement) == target


@pytest.mark.parametrize(
    "first, retried, text",
    [
        (True, False, "it stopped at its first statement (line 2), so no statement of it completed in this run; "),
        (False, False, "statements before line 2 stayed applied; "),
        (False, True, "statements before line 2 ran again and stayed applied; what an earlier run of it did stays as that run left it; "),
        (
            True,
            True,
            "it stopped at its first statement (line 2), so no statement of it completed in this run; what "
            "an earlier run of it did stays as that run left it; ",
        ),
    ],
)
def test_what_stays_of_a_stopped_no_transaction_file(first, retried, text):
    assert pm.kept_before(2, first, retried) == (text + "it is marked incomplete and the next run explains how to retry it")


def test_hints_name_options_as_the_caller_names_them():
    text = 'rerun with retry_incomplete: ["017"]; set allow_out_of_order: true; SET lock_timeout stays'
    assert pm.hint_names(text, 'db_deploy_') == (
        'rerun with db_deploy_retry_incomplete: ["017"]; set db_deploy_allow_out_of_order: true; SET lock_timeout stays'
    )
    assert pm.hint_names(text, '') == text
    assert pm.hint_names('db_deploy_allow_empty', 'db_deploy_') == 'db_deploy_allow_empty'
    result = pm.name_options({'msg': 'set allow_empty: true', 'migrations': [{'message': 'beyond target_version 5'}]}, 'db_deploy_')
    assert result == {'msg': 'set db_deploy_allow_empty: true', 'migrations': [{'message': 'beyond db_deploy_target_version 5'}]}
