# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Errors and messages: what stops a run, and the words a person reads about it."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

from ansible.module_utils.common.text.converters import to_native

from ansible_collections.st44.db_deploy.plugins.module_utils.migrate.redaction import redact_context, redact_quoted, redact_secrets, secret_parts

# ASCII digits only: int() also takes '١', which no server sends as a position.
POSITION_RE = re.compile(r'[0-9]+')
# SQLSTATEs that say "try again later" rather than "this SQL is wrong".
RETRYABLE_SQLSTATES = {
    '55P03': 'lock_not_available',
    '40P01': 'deadlock_detected',
    '40001': 'serialization_failure',
}
# A no-transaction file that failed before its incomplete marker was written.
NOTHING_RAN = 'none of its statements ran'
NOT_RECORDED = 'all its statements ran, but it is not recorded as applied; it stays marked incomplete and the next run explains how to retry it'
# The options a message's hints name, which the caller may know by other names (option_prefix).
HINTED_OPTIONS = re.compile(
    r'(?<![\w.])(accept_checksums|retry_incomplete|allow_out_of_order|allow_empty|'
    r'target_version|max_file_size|lock_wait|lock_retries|login_host|login_port)(?!\w)'
)


class MigrationError(Exception):
    """A problem found before anything was written; carries every problem found."""

    def __init__(self, problems):
        self.problems = list(problems)
        super(MigrationError, self).__init__('; '.join(self.problems))


class TaskFailure(Exception):
    """Ends the task: msg for the person reading it, extra keys for the result."""

    def __init__(self, msg, **extra):
        self.msg = msg
        self.extra = extra
        super(TaskFailure, self).__init__(msg)


class SqlFailure(Exception):
    """A database error with what a person needs to act on it."""

    def __init__(self, exc, connection_closed=True, query=None, message=None):
        """exc: the driver's error; or None and message: a check of the module's own (ModuleCheck)."""
        diag = getattr(exc, 'diag', None)
        self.connection_closed = connection_closed
        if exc is None:
            self.sqlstate = self.detail = self.hint = self.context = self.position = None
            self.message = message
            super(SqlFailure, self).__init__(message)
            return
        self.sqlstate = getattr(diag, 'sqlstate', None) or getattr(exc, 'pgcode', None) or getattr(exc, 'sqlstate', None)
        # Without a server message (a lost connection), libpq's own text: one line, no final period.
        self.message = getattr(diag, 'message_primary', None) or ' '.join(to_native(exc).split()).rstrip('.')
        self.detail = getattr(diag, 'message_detail', None)
        self.hint = getattr(diag, 'message_hint', None)
        hidden = secret_parts(query) if isinstance(query, str) else None
        if hidden:
            self.message, self.detail, self.hint = [redact_quoted(text, hidden) if text else text for text in (self.message, self.detail, self.hint)]
        context = getattr(diag, 'context', None)
        # A PL/pgSQL error's context quotes the statement, which may set a password.
        self.context = redact_context(context) if context else None
        position = getattr(diag, 'statement_position', None)
        self.position = int(position) if position and POSITION_RE.fullmatch(str(position)) else None
        super(SqlFailure, self).__init__(self.message)

    @property
    def connection_lost(self):
        """The server did not answer: a connection/shutdown SQLSTATE, or none and the connection is closed.

        An error without SQLSTATE on an open connection is the driver refusing a statement itself.
        """
        if self.sqlstate:
            return self.sqlstate.startswith(('08', '57P'))
        return self.connection_closed

    def describe(self, sentence=False):
        """SQLSTATE, message, detail, hint and context; sentence: without a final period, to go on from."""
        text = ('SQLSTATE %s: %s' % (self.sqlstate, self.message)) if self.sqlstate else self.message
        if self.detail:
            text += ' DETAIL: %s' % self.detail
        if self.hint:
            text += ' HINT: %s' % self.hint
        if self.context:
            text += ' CONTEXT: %s' % self.context
        return text.rstrip('.') if sentence else text


class ModuleCheck(SqlFailure):
    """A check of the module's own that stops a migration, in the shape of a server error."""

    def __init__(self, message):
        super(ModuleCheck, self).__init__(None, connection_closed=False, message=message)


class ApplyFailure(Exception):
    """A migration that failed: which statement, the server's error, how many attempts."""

    def __init__(self, mig, statement, failure, during_commit=False, during=None, note=None, progress=None, hint=None):
        self.mig = mig
        self.hint = hint  # what to do, when the module knows better than "fix the file"
        self.statement = statement
        self.failure = failure
        self.during_commit = during_commit
        # What the module itself was doing (writing the history, the progress marker); None when
        # a statement of the file, or the COMMIT of its transaction, failed.
        self.during = during
        self.note = note  # what else the person must know (invalid indexes left behind)
        self.progress = progress  # no-transaction file: what of it ran, when not "the statements before"
        self.attempts = 1
        self.duration_ms = None
        super(ApplyFailure, self).__init__(failure.message)

    def details(self):
        return dict(
            version=self.mig.version,
            file=self.mig.filename,
            line=error_line(self.statement, self.failure.position) if self.statement else None,
            sqlstate=self.failure.sqlstate,
            message=self.failure.message,
            detail=self.failure.detail,
            hint=self.failure.hint,
            statement=(redact_secrets(self.statement.text, self.statement.escapes) if self.statement else None),
            attempts=self.attempts,
        )


def error_line(statement, position):
    """Line in the file of a server error: statement start plus the position inside it."""
    if not position:
        return statement.line
    try:
        offset = int(position) - 1
    except (TypeError, ValueError):
        return statement.line
    return statement.line + statement.text.count('\n', 0, max(0, offset))


def kept_before(line, first=False, retried=False):
    """What stays of a no-transaction file stopped at the statement that starts at line."""
    if first:
        kept = 'it stopped at its first statement (line %s), so no statement of it completed in this run' % line
    else:
        kept = 'statements before line %s %s applied' % (line, 'ran again and stayed' if retried else 'stayed')
    if retried:
        kept += '; what an earlier run of it did stays as that run left it'
    return kept + '; it is marked incomplete and the next run explains how to retry it'


def failure_message(failure, applied_versions, check_hint):
    """The task's message for a failed migration: what failed, what stayed, what to do.

    check_hint is what to do when the file is the cause; a lost connection, a lock held by
    another session and a failure of the module's own writes each say something else.
    """
    d = failure.details()
    version, sqlstate = d['version'], failure.failure.sqlstate
    transactional = failure.mig.transactional
    lost = failure.during_commit or failure.failure.connection_lost
    locked = sqlstate in RETRYABLE_SQLSTATES
    if failure.during:
        text = 'migration %s failed while %s: %s' % (version, failure.during, failure.failure.describe(sentence=True))
    else:
        where = '%s line %s' % (d['file'], d['line']) if d['line'] else d['file']
        text = 'migration %s failed at %s: %s' % (version, where, failure.failure.describe(sentence=True))
    if failure.note:
        text += '. ' + failure.note
    if d['attempts'] > 1:
        text += ' (after %d attempts)' % d['attempts']
    if locked:
        text += (
            '. Another session held a lock the migration needed for longer than lock_timeout; find it '
            'with SELECT pid, state, query FROM pg_stat_activity WHERE wait_event_type IS NULL AND '
            'state LIKE \'idle in transaction%\''
        )
    elif sqlstate == '25001':
        text += '. Mark the file with the line "-- postgresql_migrate: no-transaction" if it must run outside a transaction'
    if failure.during_commit:
        text += (
            '. The connection failed while committing, so whether %s was recorded is unknown; rerun: '
            'the next run applies it only if it is not recorded' % version
        )
    elif transactional and lost:
        text += (
            '. The run lost the connection to the database (the server restarted or stopped, or the session '
            'was terminated). Nothing of %s was applied (its transaction was rolled back)' % version
        )
    elif transactional:
        text += '. Nothing of %s was applied (its transaction was rolled back)' % version
    else:
        progress = failure.progress
        if progress is None:
            statement = failure.statement
            progress = kept_before(statement.line, statement is failure.mig.statements[0]) if statement else kept_before(d['line'])
        text += '. %s is a no-transaction migration: %s' % (version, progress)
    # What to do, the most specific cause first.
    retry = not transactional and failure.progress != NOTHING_RAN  # else it is not marked incomplete
    if failure.hint:
        check_hint = failure.hint
    elif lost and transactional and not failure.during_commit:
        check_hint = 'Once the server accepts connections, rerun: it applies %s again.' % version
    elif lost:
        check_hint = 'Once the server accepts connections, rerun%s.' % ('; it says how to retry %s' % version if retry else '')
    elif locked:
        check_hint = 'The file is not the cause; %s when that session is gone.' % ('retry it (retry_incomplete)' if retry else 'rerun')
    elif failure.during:
        check_hint = (
            'The file\'s statements succeeded: check the table option, that the login user (or '
            'session_role) may create and write that table in its schema, and that the file leaves '
            'its transaction writable; then rerun.'
        )
    text += '. Applied by this run before it: %s. %s' % (', '.join(applied_versions) or 'none', check_hint)
    return text


def connection_hint(error):
    lowered = error.lower()
    if 'password authentication failed' in lowered or 'no password supplied' in lowered:
        return 'check login_user and login_password (the vault variable) for this host'
    if 'peer authentication failed' in lowered:
        return 'run the task as the database OS user (become_user: postgres) or connect over TCP with a password'
    if 'does not exist' in lowered and 'database' in lowered:
        return 'check the db parameter: the database must exist before migrations run'
    if 'no such file' in lowered or 'could not connect' in lowered or 'connection refused' in lowered:
        return 'check that PostgreSQL runs and that login_host, login_port or login_unix_socket point at it'
    return 'check the connection parameters'


def hint_names(text, prefix):
    """text with the options its hints name as the caller names them (option_prefix)."""
    if not prefix or not isinstance(text, str):
        return text
    return HINTED_OPTIONS.sub(lambda m: prefix + m.group(1), text)


def name_options(result, prefix):
    """The result, its messages naming options as the caller names them."""
    if 'msg' in result:
        result['msg'] = hint_names(result['msg'], prefix)
    if isinstance(result.get('problems'), list):
        result['problems'] = [hint_names(text, prefix) for text in result['problems']]
    for entry in result.get('migrations') or []:
        if 'message' in entry:
            entry['message'] = hint_names(entry['message'], prefix)
    return result


def invalid_indexes_refusal(names, partitioned, version):
    """The message and the hint of a no-transaction file refused because indexes it built or relies
    on are invalid: names, every such index; partitioned, those of them that are partitioned."""
    plain = [n for n in names if n not in partitioned]
    message = (
        '%s %s %s invalid (pg_index.indisvalid is false): %s enforces nothing and no query uses '
        '%s. A failed CREATE INDEX or REINDEX CONCURRENTLY (in this run or an earlier one) '
        'leaves its index invalid, and CREATE INDEX IF NOT EXISTS keeps an existing one as it '
        'is%s'
        % (
            'index' if len(names) == 1 else 'indexes',
            ', '.join(names),
            'is' if len(names) == 1 else 'are',
            'it' if len(names) == 1 else 'them',
            'it' if len(names) == 1 else 'them',
            '; a partitioned index stays invalid until an index of every partition is attached to it' if partitioned else '',
        )
    )
    todo = []
    if plain:
        todo.append(
            'drop %s (%s) and fix what made the build fail (for a unique index, the duplicate rows)'
            % ('it' if len(plain) == 1 else 'them', ' '.join('DROP INDEX CONCURRENTLY %s;' % n for n in plain))
        )
    if partitioned:
        todo.append(
            'attach an index of every remaining partition to %s (ALTER INDEX ... ATTACH PARTITION), '
            'or drop it (DROP INDEX %s;)' % (', '.join(partitioned), ', '.join(partitioned))
        )
    todo = '; '.join(todo)
    hint = '%s%s; then rerun with retry_incomplete: ["%s"].' % (todo[0].upper(), todo[1:], version)
    return message, hint
