"""Unit tests of module_utils/migrate/errors.py: the messages a person reads when a migration fails."""

import pytest
from ansible_collections.st44.db_deploy.plugins.module_utils.migrate.errors import (
    NOTHING_RAN,
    ApplyFailure,
    SqlFailure,
    connection_hint,
    error_line,
    failure_message,
    hint_names,
    invalid_indexes_refusal,
    kept_before,
    name_options,
)
from ansible_collections.st44.db_deploy.plugins.module_utils.migrate.lexer import split_statements

from tests.support.migrate_units import migration

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
    statement = split_statements(FAILING_FILE)[1]
    position = statement.text.index("nope") + 1  # PostgreSQL positions are 1-based
    assert error_line(statement, position) == 6
    assert error_line(statement, str(position)) == 6
    assert error_line(statement, 1) == 4
    assert error_line(statement, statement.text.index("WHERE") + 1) == 7


@pytest.mark.parametrize("position", [None, "", 0, "not a number"])
def test_without_position_the_statement_line_is_used(position):
    statement = split_statements(FAILING_FILE)[1]
    assert error_line(statement, position) == 4


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
    assert hint in connection_hint(error)


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
    return SqlFailure(DriverError("ERROR:  " + message, Diag(sqlstate, message, detail, hint, position)))


def test_sql_failure_describes_state_message_detail_and_hint():
    failure = sql_failure(
        "23505", 'duplicate key value violates unique constraint "users_pkey"', detail="Key (id)=(1) already exists.", hint="Use ON CONFLICT."
    )
    assert failure.describe() == (
        'SQLSTATE 23505: duplicate key value violates unique constraint "users_pkey" DETAIL: Key (id)=(1) already exists. HINT: Use ON CONFLICT.'
    )


def test_sql_failure_without_diag_uses_pgcode_and_text():
    failure = SqlFailure(DriverError("  server closed the connection unexpectedly\n", pgcode="08006"))
    assert (failure.sqlstate, failure.message, failure.position) == ("08006", "server closed the connection unexpectedly", None)
    assert failure.describe() == "SQLSTATE 08006: server closed the connection unexpectedly"
    assert SqlFailure(DriverError("boom")).describe() == "boom"


def test_libpq_text_of_a_lost_connection_becomes_one_line_without_final_period():
    # what psycopg2 says when the backend is terminated: the message goes on with ". The run lost ..."
    text = "server closed the connection unexpectedly\n\tThis probably means the server terminated abnormally\n\tbefore or while processing the request.\n"
    assert SqlFailure(DriverError(text)).message == (
        "server closed the connection unexpectedly This probably means the server terminated abnormally before or while processing the request"
    )


def test_failure_details_name_file_line_and_statement(orders):
    statement = orders.statements[1]
    failure = ApplyFailure(orders, statement, sql_failure("42P01", 'relation "nope" does not exist', position=statement.text.index("nope") + 1))
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
    failure = ApplyFailure(orders, statement, sql_failure("42P01", 'relation "nope" does not exist', position=statement.text.index("nope") + 1))
    assert failure_message(failure, ["001", "002"], "Fix the file and rerun.") == (
        'migration 003 failed at 003_orders.sql line 6: SQLSTATE 42P01: relation "nope" does not exist. '
        'Nothing of 003 was applied (its transaction was rolled back). '
        'Applied by this run before it: 001, 002. Fix the file and rerun.'
    )


def test_failure_message_for_lock_timeout_explains_the_lock(orders):
    failure = ApplyFailure(orders, orders.statements[0], sql_failure("55P03", 'canceling statement due to lock timeout'))
    failure.attempts = 4
    message = failure_message(failure, [], "Fix the file and rerun.")
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


def test_a_hint_ending_in_a_period_gives_no_double_period(orders):
    failure = ApplyFailure(
        orders,
        None,
        sql_failure("42883", "operator does not exist: bigint = text", hint="You might need to add explicit type casts."),
        during="preparing the history table public.mig_hist",
    )
    assert "HINT: You might need to add explicit type casts. Nothing of 003 was applied" in failure_message(failure, [], "Fix the file and rerun.")


def test_failure_of_the_history_write_is_not_blamed_on_the_file(orders):
    failure = ApplyFailure(
        orders,
        None,
        sql_failure("22001", "value too long for type character varying(10)"),
        during="writing its row to the history table public.schema_migrations",
    )
    assert failure_message(failure, ["001"], "Fix the file and rerun.") == (
        "migration 003 failed while writing its row to the history table public.schema_migrations: "
        "SQLSTATE 22001: value too long for type character varying(10). Nothing of 003 was applied (its "
        "transaction was rolled back). Applied by this run before it: 001. The file's statements succeeded: "
        "check the table option, that the login user (or session_role) may create and write that table in its "
        "schema, and that the file leaves its transaction writable; then rerun."
    )


def test_failure_before_a_no_transaction_file_starts_says_none_of_it_ran(orders_index):
    failure = ApplyFailure(
        orders_index,
        None,
        sql_failure("42501", "permission denied for schema public"),
        during="creating its progress row in public.schema_migrations_incomplete",
        progress="none of its statements ran",
    )
    message = failure_message(failure, [], "Fix the file and rerun.")
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
    failure = ApplyFailure(orders_index, orders_index.statements[0], sql_failure("55P03", "canceling statement due to lock timeout"))
    assert failure_message(failure, [], "Fix the file and rerun.").endswith(
        "004 is a no-transaction migration: it stopped at its first statement (line 2), so no statement of it "
        "completed in this run; it is marked incomplete and "
        "the next run explains how to retry it. Applied by this run before it: none. The file is not the cause; "
        "retry it (retry_incomplete) when that session is gone."
    )


def test_failure_message_of_a_no_transaction_migration(orders_index):
    statement = orders_index.statements[1]
    failure = ApplyFailure(orders_index, statement, sql_failure("42703", 'column "nope" does not exist'))
    message = failure_message(failure, ["003"], "Fix the file and rerun.")
    assert message == (
        'migration 004 failed at 004_orders_index.sql line 3: SQLSTATE 42703: column "nope" does not exist. '
        '004 is a no-transaction migration: statements before line 3 stayed applied; it is marked incomplete '
        'and the next run explains how to retry it. Applied by this run before it: 003. Fix the file and rerun.'
    )


def test_lost_connection_in_a_transaction_says_the_rerun_applies_it_again(orders):
    failure = ApplyFailure(orders, orders.statements[1], sql_failure("57P01", "terminating connection due to administrator command"))
    assert failure_message(failure, ["001"], "Fix the file and rerun.").endswith(
        "Nothing of 003 was applied (its transaction was rolled back). Applied by this run before it: 001. "
        "Once the server accepts connections, rerun: it applies 003 again."
    )


def test_failure_message_when_commit_failed(orders):
    failure = ApplyFailure(orders, None, sql_failure("08006", "server closed the connection unexpectedly"), during_commit=True)
    assert failure.details()["line"] is None
    assert failure_message(failure, [], "Fix the file and rerun.") == (
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
    failure = ApplyFailure(
        orders_index,
        None,
        sql_failure("57P01", "terminating connection due to administrator command"),
        during="creating its progress row in public.schema_migrations_incomplete",
        progress=None if marked else NOTHING_RAN,
    )
    message = failure_message(failure, [], "Fix the file and rerun.")
    assert message.endswith("Applied by this run before it: none. " + hint)


def test_failure_message_for_statement_that_refuses_a_transaction(orders):
    failure = ApplyFailure(orders, orders.statements[0], sql_failure("25001", "CREATE DATABASE cannot run inside a transaction block"))
    assert ('. Mark the file with the line "-- postgresql_migrate: no-transaction" if it must run outside a transaction') in failure_message(
        failure, [], "Fix the file and rerun."
    )


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
    assert kept_before(2, first, retried) == (text + "it is marked incomplete and the next run explains how to retry it")


def test_hints_name_options_as_the_caller_names_them():
    text = 'rerun with retry_incomplete: ["017"]; set allow_out_of_order: true; SET lock_timeout stays'
    assert hint_names(text, 'db_deploy_') == ('rerun with db_deploy_retry_incomplete: ["017"]; set db_deploy_allow_out_of_order: true; SET lock_timeout stays')
    assert hint_names(text, '') == text
    assert hint_names('db_deploy_allow_empty', 'db_deploy_') == 'db_deploy_allow_empty'
    result = name_options({'msg': 'set allow_empty: true', 'migrations': [{'message': 'beyond target_version 5'}]}, 'db_deploy_')
    assert result == {'msg': 'set db_deploy_allow_empty: true', 'migrations': [{'message': 'beyond db_deploy_target_version 5'}]}


def test_an_invalid_index_is_named_with_the_statement_that_drops_it_and_the_retry():
    message, hint = invalid_indexes_refusal(["users_email_key"], [], "017")
    assert message.startswith("index users_email_key is invalid (pg_index.indisvalid is false): it enforces nothing")
    assert hint == (
        "Drop it (DROP INDEX CONCURRENTLY users_email_key;) and fix what made the build fail (for a unique index, "
        'the duplicate rows); then rerun with retry_incomplete: ["017"].'
    )


def test_a_partitioned_invalid_index_is_told_to_attach_its_partitions_not_to_drop_concurrently():
    message, hint = invalid_indexes_refusal(["a_idx", "p_idx"], ["p_idx"], "020")
    assert message.startswith("indexes a_idx, p_idx are invalid") and "until an index of every partition is attached" in message
    assert "DROP INDEX CONCURRENTLY a_idx;" in hint and "DROP INDEX CONCURRENTLY p_idx" not in hint
    assert "attach an index of every remaining partition to p_idx" in hint and hint.endswith('retry_incomplete: ["020"].')
