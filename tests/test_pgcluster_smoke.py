"""The test PostgreSQL itself works: the other tests stand on it."""

import psycopg2
import psycopg2.errors
import pytest


def test_server_answers_on_socket_and_on_tcp_with_password(pg):
    assert pg.sql("SELECT 1") == [(1,)]

    pg.create_role("smoke_app", password="s3cret pass")
    try:
        conn = psycopg2.connect(pg.dsn(user="smoke_app", password="s3cret pass", tcp=True))
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT current_user, inet_server_addr()::text")
                assert cur.fetchone() == ("smoke_app", "127.0.0.1/32")
        finally:
            conn.close()

        with pytest.raises(psycopg2.OperationalError, match="password authentication failed"):
            psycopg2.connect(pg.dsn(user="smoke_app", password="wrong", tcp=True))
    finally:
        pg.sql("DROP ROLE smoke_app")
    assert 'password authentication failed for user "smoke_app"' in pg.log_text()


def test_fresh_db_is_empty_and_separate(db, pg):
    assert db.tables() == []
    assert db.sql(
        "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')"
    ) == [(0,)]
    db.sql("CREATE TABLE t (id int)")
    assert db.tables() == ["t"]
    assert pg.sql("SELECT to_regclass('public.t')") == [(None,)]


def test_standby_is_in_recovery_read_only_and_follows(pg, standby, db):
    assert standby.sql("SELECT pg_is_in_recovery()") == [(True,)]
    assert pg.sql("SELECT pg_is_in_recovery()") == [(False,)]

    db.sql("CREATE TABLE replicated (id int)")
    db.sql("INSERT INTO replicated VALUES (42)")
    pg.wait_for_replay(standby)
    assert standby.sql("SELECT id FROM replicated", dbname=db.name) == [(42,)]

    with pytest.raises(psycopg2.errors.ReadOnlySqlTransaction):
        standby.sql("CREATE TABLE not_here (id int)", dbname=db.name)
