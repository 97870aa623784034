# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The session: the run's one connection, its settings and its migration lock (a session advisory lock)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import socket

from ansible_collections.st44.db_deploy.plugins.module_utils.migrate.discovery import os_user
from ansible_collections.st44.db_deploy.plugins.module_utils.migrate.errors import SqlFailure, TaskFailure

try:
    from ansible_collections.community.postgresql.plugins.module_utils.database import pg_quote_identifier
    from ansible_collections.community.postgresql.plugins.module_utils.postgres import pg_cursor_args
except ImportError:  # postgresql_migrate's main() says what to install before anything here runs
    pass


MAX_LOCK_WAIT = 2147483  # seconds: PostgreSQL's largest lock_timeout (2^31 - 1 ms)
# The function that releases every advisory lock of the session, the run's own included.
UNLOCK_ALL = 'pg_advisory_unlock_all'


class Db(object):
    """The one connection of a run: autocommit, explicit BEGIN/COMMIT around each migration."""

    def __init__(self, conn):
        self.conn = conn
        self.cursor = conn.cursor(**pg_cursor_args)

    def run(self, query, params=None, prefix_length=0):
        """Execute; prefix_length is how much text was put before the statement the caller knows."""
        try:
            self.cursor.execute(query, params) if params is not None else self.cursor.execute(query)
        except Exception as e:  # psycopg2.Error and psycopg.Error share no import path here
            failure = SqlFailure(e, connection_closed=bool(self.conn.closed), query=query)
            if failure.position:
                failure.position = max(1, failure.position - prefix_length)
            raise failure

    def rows(self, query, params=None):
        self.run(query, params)
        return self.cursor.fetchall()

    def value(self, query, params=None):
        """The first column of the first row; the query names it v."""
        rows = self.rows(query, params)
        return rows[0]['v'] if rows else None

    def rollback_quietly(self):
        try:
            self.cursor.execute('ROLLBACK')
        except Exception:  # the connection may be gone; PostgreSQL rolls back on disconnect
            pass

    def close(self):
        try:
            self.conn.close()
        except Exception:
            pass


def default_applied_by():
    return '%s@%s' % (os_user(), socket.gethostname())


def default_lock_key(table):
    """Stable 63-bit advisory lock key for a history table."""
    if table.startswith('public.'):  # the same table, so the same lock
        table = table[len('public.') :]
    digest = hashlib.sha256(('postgresql_migrate:' + table).encode('utf-8')).digest()
    return int.from_bytes(digest[:8], 'big') & 0x7FFFFFFFFFFFFFFF


def acquire_lock(db, key, wait_seconds):
    """Take the session advisory lock, waiting at most wait_seconds; return None or the holder."""
    if wait_seconds <= 0:
        if db.value('SELECT pg_try_advisory_lock(%s) AS v', (key,)):
            return None
        return describe_lock_holder(db, key)
    # statement_timeout off: one set for the database or the role must not cut the wait short.
    db.run("SELECT set_config('lock_timeout', %s, false), set_config('statement_timeout', '0', false)", ('%dms' % max(1, int(wait_seconds * 1000)),))
    try:
        db.run('SELECT pg_advisory_lock(%s)', (key,))
        return None
    except SqlFailure as e:
        if e.sqlstate != '55P03':
            raise
        return describe_lock_holder(db, key)


def describe_lock_holder(db, key):
    rows = db.rows(
        "SELECT a.pid, a.usename, a.application_name, a.client_addr::text AS client_addr, "
        "a.backend_start::text AS backend_start, a.state FROM pg_catalog.pg_locks l "
        "JOIN pg_catalog.pg_stat_activity a ON a.pid = l.pid "
        "WHERE l.locktype = 'advisory' AND l.granted AND l.database = "
        "(SELECT oid FROM pg_catalog.pg_database WHERE datname = current_database()) "
        "AND l.classid = %s AND l.objid = %s AND l.objsubid = 1",
        ((key >> 32) & 0xFFFFFFFF, key & 0xFFFFFFFF),
    )
    if not rows:
        return 'a session that has released it since (run again)'
    r = rows[0]
    return 'pid %s, user %s, application "%s", client %s, connected since %s, state %s' % (
        r['pid'],
        r['usename'],
        r['application_name'],
        r['client_addr'] or 'local socket',
        r['backend_start'],
        r['state'],
    )


def run_role(params):
    """The role the run's statements run as: session_role, quoted, or NONE (the login user)."""
    return pg_quote_identifier(params['session_role'], 'role') if params['session_role'] else 'NONE'


def session_setup_sql(params, server_version_num):
    """The statements that give the session the run's settings, again before every migration.

    Each file runs as if in a session of its own, like psql -f: a migration's plain SET (a timeout,
    search_path, a role) and its temporary tables must not reach the migrations after it.
    """
    settings = run_timeouts(params)
    if server_version_num >= 140000:
        # If this process dies (a killed container or CI job), the server notices within a second, even
        # in the middle of a long statement: it rolls the migration back and frees the lock at once.
        settings.append(('client_connection_check_interval', '1s'))
    return 'SET SESSION AUTHORIZATION DEFAULT; RESET ALL; DISCARD TEMP; SET ROLE %s; %s; ' % (run_role(params), set_config_sql(settings, local=False))


def own_writes_sql(params):
    """What goes before the module's own writes inside a migration's transaction (its history row,
    a progress marker): the run's role and timeouts again, for that transaction only. The file may
    have switched role, or set a tight lock_timeout or statement_timeout for its own statements
    (SET lock_timeout = '2s' at the top of a file is common practice); neither applies to the
    module's writes."""
    return 'SET LOCAL SESSION AUTHORIZATION DEFAULT; SET LOCAL ROLE %s; SET LOCAL statement_timeout TO DEFAULT; %s; ' % (
        run_role(params),
        set_config_sql(run_timeouts(params), local=True),
    )


def run_timeouts(params):
    """(name, value) of the run's timeouts; without statement_timeout, the session's own stays."""
    settings = [('lock_timeout', params['lock_timeout'].strip())]
    if params['statement_timeout'] is not None:
        settings.append(('statement_timeout', params['statement_timeout'].strip()))
    return settings


def set_config_sql(settings, local):
    """One SELECT of set_config for each (name, value); local: for the transaction only."""
    scope = 'true' if local else 'false'
    return 'SELECT ' + ', '.join("set_config('%s', '%s', %s)" % (name, value.replace("'", "''"), scope) for name, value in settings)


def prepare_session(db, params, check_mode):
    """Refuse a standby; make a check-mode session read-only, or take the lock and set timeouts.

    Returns the session set-up to repeat before each migration (None in check mode).
    """
    server = db.rows(
        "SELECT pg_is_in_recovery() AS standby, current_setting('server_version_num')::int AS version, "
        "current_setting('default_transaction_read_only') AS read_only"
    )[0]
    if server['standby']:
        raise TaskFailure(
            'the server is a hot standby (pg_is_in_recovery() is true) and cannot be migrated; point login_host/login_port at the primary. Nothing was applied'
        )
    if server['read_only'] == 'on':
        raise TaskFailure(
            'database %s is read-only for this session (default_transaction_read_only is on, set for '
            'the server, the database or the login role); find where with SELECT * FROM '
            'pg_db_role_setting, or SHOW default_transaction_read_only. Nothing was applied' % params['db']
        )
    version = server['version']
    if version >= 140000:  # see session_setup_sql; from now on, the lock wait included
        db.run("SELECT set_config('client_connection_check_interval', '1s', false)")
    if check_mode:
        db.run("SELECT set_config('default_transaction_read_only', 'on', false)")
        return None
    key = params['lock_key'] if params['lock_key'] is not None else default_lock_key(params['table'])
    holder = acquire_lock(db, key, params['lock_wait'])
    if holder is not None:
        raise TaskFailure(
            'another migration run holds the migration lock of %s (advisory lock %d) after '
            'waiting %s s: %s. Nothing was applied; wait for it to finish and rerun, or raise '
            'lock_wait' % (params['db'], key, params['lock_wait'], holder)
        )
    setup = session_setup_sql(params, version)
    db.run(setup)
    return setup


def describe_server(db):
    """What the server is (a path-less call): a hot standby is refused, as a migration run refuses it."""
    server = dict(
        db.rows(
            "SELECT current_setting('server_version_num')::int / 10000 AS major, "
            "current_setting('server_version') AS version, pg_is_in_recovery() AS standby, "
            "pg_database_size(current_database()) AS size_bytes, "
            "(SELECT system_identifier::text FROM pg_catalog.pg_control_system()) AS system_id"
        )[0]
    )
    if server.pop('standby'):
        raise TaskFailure(
            'the server is a hot standby (pg_is_in_recovery() is true); migrations and backups must '
            'run against the primary: point login_host/login_port at the primary. Nothing was changed'
        )
    return server
