"""Unit tests of module_utils/migrate/redaction.py: a password in SQL or in a server message is never shown."""

import os

import pytest
from ansible_collections.st44.db_deploy.plugins.module_utils.migrate.redaction import redact_context, redact_file, redact_quoted, redact_secrets, secret_parts

from tests.support import REPO_ROOT
from tests.support.migrate_units import parse_migration


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
    assert redact_secrets(sql) == shown


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
    shown = [redact_secrets(sql, escapes) for sql in statements]
    assert [sql for sql, text in zip(statements, shown) if SECRET in text] == []


def test_redact_secrets_reads_backslashes_as_standard_conforming_strings_says():
    sql = "ALTER ROLE app PASSWORD 'a\\' LOGIN' VALID UNTIL 'infinity'"
    assert redact_secrets(sql, escapes=True) == "ALTER ROLE app PASSWORD ******** VALID UNTIL 'infinity'"
    assert redact_secrets(sql) == "ALTER ROLE app PASSWORD ******** LOGIN' VALID UNTIL 'infinity'"


def test_redact_file_shows_comments_and_statements_whole_but_for_the_password():
    sql = (
        "-- rotate the password of app (password comes from the vault)\n"
        "CREATE TABLE t (c text DEFAULT '', password_hash text);\n"
        "ALTER ROLE app PASSWORD 'Sx';\n/* password */ CREATE TABLE u (c text DEFAULT '');\n"
        "-- replica: postgresql://rep:Sx@db/x\n"
    )
    assert redact_file(parse_migration("009_roles.sql", sql)) == sql.replace("'Sx'", "********").replace(":Sx@", ":********@")


def test_redact_file_shows_the_repositorys_users_migration_exactly():
    with open(os.path.join(REPO_ROOT, "migrations", "001_create_users_table.sql")) as f:
        sql = f.read()
    assert "password" in sql
    assert redact_file(parse_migration("001_create_users_table.sql", sql)) == sql


def test_redact_context_hides_the_password_of_the_statement_it_quotes():
    context = "SQL statement \"ALTER ROLE app PASSWORD 'Sx-1' VALID UNTIL 'infinity'\"\nPL/pgSQL function inline_code_block line 1 at EXECUTE"
    assert redact_context(context) == (
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
    assert redact_quoted(message, secret_parts(sql)) == shown


def test_secret_parts_are_what_redact_secrets_hides():
    assert secret_parts("SELECT 'postgresql://u:p@h' AS uri, 1 AS password, 2") == ["p"]
    assert secret_parts("ALTER ROLE a PASSWORD 'x\\' LOGIN'") == ["'x\\'", "'x\\' LOGIN'"]  # read both ways
    assert secret_parts("SELECT password_hash FROM users") == []


def test_redact_quoted_hides_from_the_first_quote_when_a_message_quotes_too_much():
    message = 'near "a" "b" "c" "d" "e"'
    assert redact_quoted(message, ["zzz"]) == 'near "********"'
