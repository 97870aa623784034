"""Unit tests of module_utils/migrate/lexer.py: which statements a file is split into, on which line each starts,
and the leading words kept for the rules."""

import pytest
from ansible_collections.st44.db_deploy.plugins.module_utils.migrate.lexer import copy_stream, split_statements
from ansible_collections.st44.db_deploy.plugins.module_utils.migrate.rules import transaction_control

from tests.support.migrate_units import PG_DUMP_COPY, one_statement, split, texts


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
    statements = split_statements(sql)
    assert [(s.line, s.text.splitlines()[0]) for s in statements] == [(1, "DO $$"), (8, "SELECT 2")]
    assert transaction_control(statements[0]) is None


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
    statements = split_statements(sql)
    assert [s.line for s in statements] == [1, 6, 7]
    assert statements[0].text.endswith("ELSE 'down' END;\nEND")
    assert statements[1].text == "create procedure p() language sql begin atomic insert into t values (1); end"
    assert statements[2].text == "SELECT bump(1)"
    assert [transaction_control(s) for s in statements] == [None, None, None]


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
        split_statements(sql)
    assert str(excinfo.value) == message


def test_meta_command_inside_a_string_or_comment_is_plain_text():
    assert texts("SELECT '\\i x';\n-- \\i y\nSELECT 2;") == ["SELECT '\\i x'", "SELECT 2"]


def split_off(sql, transactional=True):
    return [(s.line, s.text) for s in split_statements(sql, standard_strings=False, transactional=transactional)]


def test_with_standard_conforming_strings_off_a_backslash_escapes_in_plain_literals():
    sql = "INSERT INTO t VALUES ('it\\'s');\nSELECT 'C:\\\\';\nSELECT B'01', U&'d\\0061t\\+000061', 2;\n"
    assert split_off(sql) == [(1, "INSERT INTO t VALUES ('it\\'s')"), (2, "SELECT 'C:\\\\'"), (3, "SELECT B'01', U&'d\\0061t\\+000061', 2")]
    with pytest.raises(ValueError, match="psql meta-command at line 2"):
        split_statements(sql)  # on: 'it\' ends the literal, s' starts one


def test_with_standard_conforming_strings_off_a_commit_in_a_literal_read_on_is_found():
    # Read with the setting on, the COMMIT is inside a literal and the three lines one statement:
    # sent as one query, the server (setting off) would commit the migration's transaction.
    sql = "INSERT INTO t VALUES ('a\\'');\nCOMMIT;\nINSERT INTO t VALUES ('b');  -- '\n"
    assert [text for _, text in split_off(sql)] == ["INSERT INTO t VALUES ('a\\'')", "COMMIT", "INSERT INTO t VALUES ('b')"]
    assert len(split_statements(sql)) == 1


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
    statements = split_statements(sql, standard_strings=True)
    assert [s.escapes for s in statements] == [False, True, True, escapes_after]
    assert statements[-1].text == "SELECT '%s'" % ("c\\'d" if escapes_after else "c\\")


def test_set_local_has_no_effect_in_a_no_transaction_file():
    sql = "-- postgresql_migrate: no-transaction\nSET LOCAL standard_conforming_strings = off;\nSELECT 'c\\';\n"
    assert [s.escapes for s in split_statements(sql, transactional=False)] == [False, False]
    with pytest.raises(ValueError, match="unterminated"):
        split_statements(sql, transactional=True)


def test_more_sql_after_set_standard_conforming_strings_on_its_line_is_refused():
    # psql reads the rest of the line with the old setting, the server with the new one
    with pytest.raises(
        ValueError,
        match="line 1: more SQL follows SET standard_conforming_strings on the same "
        "line, which psql reads with the old setting and the server with the "
        "new one; put it on a line of its own",
    ):
        split_statements("SET standard_conforming_strings = off; SELECT 'x\\'; COMMIT; SELECT '';\n")


def test_split_steps_over_the_rows_of_a_copy_from_stdin_as_psql_does():
    statements = split_statements(PG_DUMP_COPY)
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
    assert copy_stream(one_statement(sql)) == stream


# ---------------------------------------------------------------------------
# Words: what the splitter keeps of a statement for the rules
# ---------------------------------------------------------------------------


def test_the_first_four_words_outside_parentheses_are_kept_of_any_statement():
    words = one_statement("INSERT INTO t (a, b) SELECT b FROM c WHERE d").words
    assert words.first(4) == ["INSERT", "INTO", "T", "SELECT"]
    assert words.first(2) == ["INSERT", "INTO"]
    assert not words.complete


def test_a_rule_cannot_read_words_the_splitter_did_not_keep():
    words = one_statement("INSERT INTO t (a, b) SELECT b FROM c WHERE d").words
    with pytest.raises(ValueError, match="keeps the first 4 words of a statement, not 5"):
        words.first(5)
    with pytest.raises(ValueError, match="keeps every word only of ALTER, COPY statements and routine definitions"):
        words.every()


@pytest.mark.parametrize(
    "sql, every",
    [
        ("ALTER TABLE p DETACH PARTITION c CONCURRENTLY", ["ALTER", "TABLE", "P", "DETACH", "PARTITION", "C", "CONCURRENTLY"]),
        ("COPY t (a, b) FROM STDIN WITH (FORMAT csv)", ["COPY", "T", "FROM", "STDIN", "WITH"]),
        (
            "CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; END",
            ["CREATE", "FUNCTION", "F", "RETURNS", "INT", "LANGUAGE", "SQL", "BEGIN", "ATOMIC", "SELECT", "END"],
        ),
        ("VACUUM (VERBOSE) t", ["VACUUM", "T"]),
    ],
)
def test_every_word_is_kept_of_alter_copy_routines_and_short_statements(sql, every):
    words = one_statement(sql).words
    assert words.complete
    assert words.every() == every
    assert words.first(4) == (every + ["", "", ""])[:4]
