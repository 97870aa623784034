# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The runner: applies the planned migrations in order over the run's session, each in its transaction or statement by statement."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import time

from ansible_collections.st44.db_deploy.plugins.module_utils.migrate.errors import (
    NOT_RECORDED,
    NOTHING_RAN,
    RETRYABLE_SQLSTATES,
    ApplyFailure,
    ModuleCheck,
    SqlFailure,
    TaskFailure,
    error_line,
    failure_message,
    invalid_indexes_refusal,
    kept_before,
)
from ansible_collections.st44.db_deploy.plugins.module_utils.migrate.history import (
    HISTORY_EXTRA_COLUMNS,
    RECORD_STATEMENT,
    ensure_history_table,
    prepare_record_version,
    record_version_and_commit,
    table_columns,
    with_params,
)
from ansible_collections.st44.db_deploy.plugins.module_utils.migrate.indexes import invalid_indexes, invalid_indexes_note, index_scopes
from ansible_collections.st44.db_deploy.plugins.module_utils.migrate.lexer import standard_strings_switch
from ansible_collections.st44.db_deploy.plugins.module_utils.migrate.rules import needs_no_transaction


BEGIN_PREFIX = 'BEGIN; '


class Runner(object):
    """Applies planned migrations over one connection, holding the advisory lock."""

    def __init__(self, db, table_sql, marker_sql, columns, applied_by, lock_retries, setup_sql, own_sql, concurrent_lock_timeout, sleep=time.sleep, retried=()):
        self.db = db
        self.retried = set(retried)  # numbers of the no-transaction versions run again (retry_incomplete)
        # Before each migration: the run's session settings again (session_setup_sql).
        self.setup_sql = setup_sql
        # Inside a migration's transaction, before the module's own writes: the run's role and
        # timeouts again (own_writes_sql).
        self.own_sql = own_sql
        self.table_sql = table_sql
        self.marker_sql = marker_sql
        self.columns = columns
        self.applied_by = applied_by
        self.lock_retries = lock_retries
        self.concurrent_lock_timeout = concurrent_lock_timeout
        self.sleep = sleep
        self.prepared = False
        # The server parses a query string whole before it runs any of it: after a file that set
        # standard_conforming_strings, the next file's first statement, sent with the set-up,
        # would be parsed under that file's setting, not the one it was checked with.
        self.setup_apart = False

    def record_checksums(self, migrations):
        """Fill in adopted and accepted checksums, in one transaction."""
        if not migrations:
            return
        self.db.run('BEGIN')
        try:
            self._ensure_history()
            for mig in migrations:
                self.db.run(
                    'UPDATE %s SET checksum = %%s WHERE version::text = %%s OR '
                    "(version::text ~ '^[0-9]+$' AND version::text::numeric = %%s)" % self.table_sql,
                    (mig.checksum, mig.version, mig.number),
                )
            self.db.run('COMMIT')
        except SqlFailure:
            self._forget_session_state()
            raise

    def apply(self, mig):
        """Apply one migration, retrying lock timeouts; return its duration in ms."""
        attempt = 0
        started = time.monotonic()
        while True:
            attempt += 1
            try:
                if mig.transactional:
                    elapsed = self._apply_in_transaction(mig)
                else:
                    elapsed = self._apply_without_transaction(mig)
                self.setup_apart = any(standard_strings_switch(st, True) is not None for st in mig.statements)
                return elapsed
            except ApplyFailure as failure:
                failure.attempts = attempt
                failure.duration_ms = int(round((time.monotonic() - started) * 1000))
                retryable = failure.failure.sqlstate in RETRYABLE_SQLSTATES and mig.transactional
                if not retryable or attempt > self.lock_retries:
                    raise
                self.sleep(min(2 ** (attempt - 1), 30))

    def _apply_in_transaction(self, mig):
        started = time.monotonic()
        statement = None
        try:
            for index, statement in enumerate(mig.statements):
                if index == 0:  # the set-up and BEGIN travel with the first statement: one round trip
                    prefix = self.setup_sql + BEGIN_PREFIX
                    if self.setup_apart:
                        self.db.run(self.setup_sql)
                        prefix = BEGIN_PREFIX
                    self.db.run(prefix + statement.text, prefix_length=len(prefix))
                else:
                    self.db.run(statement.text)
        except SqlFailure as e:
            self._forget_session_state()
            raise ApplyFailure(mig, statement, e)
        try:
            self._ensure_history()
        except SqlFailure as e:
            self._forget_session_state()
            raise ApplyFailure(mig, None, e, during='preparing the history table %s' % self.table_sql)
        elapsed = int(round((time.monotonic() - started) * 1000))
        try:
            record_version_and_commit(self.db, mig, self.applied_by, elapsed, self.own_sql)
        except SqlFailure as e:
            self._forget_session_state()
            if e.connection_lost:
                # The history row and COMMIT were sent together: the outcome is unknown.
                raise ApplyFailure(mig, None, e, during_commit=True)
            if e.sqlstate and e.sqlstate.startswith(('23', '40')):
                raise ApplyFailure(mig, None, e)  # the file's deferred constraint or a conflict, at COMMIT
            raise ApplyFailure(mig, None, e, during='writing its row to the history table %s' % self.table_sql)
        return elapsed

    def _forget_session_state(self):
        """After a failure: roll back and re-check the history table and statement next time."""
        self.db.rollback_quietly()
        self.columns = None  # the rolled-back migration may have created or changed the table
        if self.prepared:
            self.prepared = False
            try:
                self.db.run('DEALLOCATE %s' % RECORD_STATEMENT)
            except SqlFailure:
                pass  # connection gone: so is the prepared statement

    def _ensure_history(self):
        """Make the history table ready, once per run (a migration may have just created it)."""
        check_columns = self.columns is None or not all(column in self.columns for column, _type in HISTORY_EXTRA_COLUMNS)
        if not check_columns and self.prepared:
            return
        self.db.run(self.own_sql)  # even PREPARE locks the table: under the run's timeouts, not the file's
        if check_columns:
            self.columns = ensure_history_table(self.db, self.table_sql, table_columns(self.db, self.table_sql))
        if not self.prepared:
            prepare_record_version(self.db, self.table_sql)
            self.prepared = True

    def _mark(self, assignment, value, version):
        """Update the incomplete marker between a no-transaction file's statements, in a transaction
        of its own under the run's role and timeouts, read-write: the file may have switched role
        (SET ROLE) since, or made the session's transactions read-only."""
        update = 'UPDATE %s SET %s WHERE version = %%s; COMMIT' % (self.marker_sql, assignment)
        self.db.run(with_params('BEGIN READ WRITE; ' + self.own_sql, update), (value, version))

    def _apply_without_transaction(self, mig):
        started = time.monotonic()
        marker = self.marker_sql
        try:
            self.db.run(self.setup_sql)
            self.db.run(
                'CREATE TABLE IF NOT EXISTS %s (version varchar(50) PRIMARY KEY, name varchar(255) NOT NULL, '
                'checksum text, started_at timestamptz NOT NULL DEFAULT now(), started_by text, '
                'statement integer, error text)' % marker
            )
            self.db.run('DELETE FROM %s WHERE version = %%s' % marker, (mig.version,))
            self.db.run(
                'INSERT INTO %s (version, name, checksum, started_by) VALUES (%%s, %%s, %%s, %%s)' % marker,
                (mig.version, mig.name, mig.checksum, self.applied_by),
            )
        except SqlFailure as e:
            raise ApplyFailure(mig, None, e, during='creating its progress row in %s' % marker, progress=NOTHING_RAN)
        retried = mig.number in self.retried
        watched = []  # (scope, oid, statement): the indexes the file's statements build or rely on
        for index, statement in enumerate(mig.statements, 1):
            progress = kept_before(statement.line, index == 1, retried)
            try:
                self._mark('statement = %s', index, mig.version)
            except SqlFailure as e:
                self.db.rollback_quietly()
                raise ApplyFailure(mig, None, e, during='recording in %s that line %d starts' % (marker, statement.line), progress=progress)
            try:
                self._run_outside_transaction(statement)
            except SqlFailure as e:
                note = invalid_indexes_note(self.db, statement)
                try:
                    error = e.describe(sentence=True) + '. ' + note if note else e.describe()
                    self._mark('error = %s', 'line %d: %s' % (error_line(statement, e.position), error), mig.version)
                except SqlFailure:
                    self.db.rollback_quietly()  # connection gone: the row without an error says "interrupted"
                raise ApplyFailure(mig, statement, e, note=note, progress=progress)
            # Resolved now, in the session the statement ran in (its search_path, its role).
            watched.extend((scope, oid, statement) for scope, oid in index_scopes(self.db, statement))
        self._refuse_invalid_indexes(mig, watched)
        try:
            self.db.run(self.setup_sql + 'BEGIN')
            self._ensure_history()
            self.db.run('DELETE FROM %s WHERE version = %%s' % marker, (mig.version,))
            elapsed = int(round((time.monotonic() - started) * 1000))
            record_version_and_commit(self.db, mig, self.applied_by, elapsed, self.own_sql)
        except SqlFailure as e:
            self._forget_session_state()
            raise ApplyFailure(
                mig, None, e, during_commit=e.connection_lost, during='recording it in the history table %s' % self.table_sql, progress=NOT_RECORDED
            )
        return elapsed

    def _run_outside_transaction(self, statement):
        """Run one statement of a no-transaction file.

        A CONCURRENTLY statement waits for every transaction older than it to end, however
        unrelated (a report, a pg_dump); that wait blocks no application query, so it runs with
        concurrent_lock_timeout instead, and the file's own lock_timeout is put back.
        """
        reason = needs_no_transaction(statement)
        if not reason or 'CONCURRENTLY' not in reason:
            self.db.run(statement.text)
            return
        previous = self.db.value("SELECT current_setting('lock_timeout') AS v")
        self.db.run("SELECT set_config('lock_timeout', %s, false)", (self.concurrent_lock_timeout,))
        try:
            self.db.run(statement.text)
        finally:
            try:
                self.db.run("SELECT set_config('lock_timeout', %s, false)", (previous,))
            except SqlFailure:
                pass  # connection gone; the caller reports the statement's own error

    def _refuse_invalid_indexes(self, mig, watched):
        """Before a no-transaction file is recorded: every index its statements build or rely on must
        be valid. An invalid one enforces nothing (a unique index then accepts duplicates) and no
        query uses it; CREATE INDEX IF NOT EXISTS on a retry skips the invalid index an earlier
        failed build left, and would otherwise get the file recorded as applied."""
        try:
            invalid = invalid_indexes(self.db, watched)
        except SqlFailure as e:
            raise ApplyFailure(mig, None, e, during='checking that the indexes it built are valid', progress=NOT_RECORDED)
        if not invalid:
            return
        message, hint = invalid_indexes_refusal(
            [row['name'] for row, _statement in invalid], [row['name'] for row, _statement in invalid if row['kind'] == 'I'], mig.version
        )
        failure = ModuleCheck(message)
        try:
            self._mark('error = %s', 'line %d: %s. %s' % (invalid[0][1].line, failure.message, hint), mig.version)
        except SqlFailure:
            self.db.rollback_quietly()
        raise ApplyFailure(mig, invalid[0][1], failure, progress=NOT_RECORDED, hint=hint)


def write_progress(path, mig, index, total):
    """Say which migration is running, for a caller polling an asynchronous run (progress_file)."""
    started = time.time()
    text = json.dumps(
        dict(
            msg='applying %s %s (%d of %d), started %s' % (mig.version, mig.name, index + 1, total, time.strftime('%H:%M:%S', time.localtime(started))),
            version=mig.version,
            started=started,
        )
    )
    tmp = path + '.tmp'
    with open(tmp, 'w') as f:
        f.write(text)
    os.rename(tmp, path)


def execute_plan(runner, plan, entries_by_version, result, progress_file=''):
    """Apply plan['to_apply'] in order; stop at the first failure (raised as TaskFailure)."""
    checksums = plan['adopt'] + plan['accept']
    runner.record_checksums(checksums)
    result['changed'] = bool(checksums)
    applied = []
    try:
        apply_in_order(runner, plan, entries_by_version, result, applied, progress_file)
    finally:
        if progress_file and os.path.exists(progress_file):
            os.unlink(progress_file)


def apply_in_order(runner, plan, entries_by_version, result, applied, progress_file):
    for index, mig in enumerate(plan['to_apply']):
        entry = entries_by_version[mig.version]
        if progress_file:
            write_progress(progress_file, mig, index, len(plan['to_apply']))
        try:
            entry['duration_ms'] = runner.apply(mig)
        except ApplyFailure as failure:
            entry.update(status='failed', message=failure.failure.describe(), duration_ms=failure.duration_ms)
            for later in plan['to_apply'][index + 1 :]:
                entries_by_version[later.version].update(status='skipped', message='not attempted: %s failed' % mig.version)
            raise TaskFailure(failure_message(failure, applied, 'Fix the file and rerun.'), failed_migration=failure.details())
        entry.update(status='applied', changed=True)
        applied.append(mig.version)
        result['changed'] = True
