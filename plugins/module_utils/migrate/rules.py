# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The statement rules: what a migration file may not hold, read from the statements the splitter returns."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

from ansible_collections.st44.db_deploy.plugins.module_utils.migrate.errors import MigrationError
from ansible_collections.st44.db_deploy.plugins.module_utils.migrate.history import RECORD_STATEMENT
from ansible_collections.st44.db_deploy.plugins.module_utils.migrate.lexer import COMMENT_RE, copy_stream, split_statements
from ansible_collections.st44.db_deploy.plugins.module_utils.migrate.session import UNLOCK_ALL


# SET [SESSION | LOCAL] client_encoding (quoted or not) | NAMES [TO | =] value, comments removed:
# the value, without its quote or the E or U& prefix of a quoted one.
CLIENT_ENCODING_SET_RE = re.compile(
    r'SET\s+(?:(?:SESSION|LOCAL)\s+)?(?:"client_encoding"|client_encoding\b|NAMES\b)'
    r'\s*(?:=|TO\b)?\s*(?:[EU]&?(?=[\'"]))?[\'"]?([^\s\'";]*)',
    re.IGNORECASE,
)


def encoding_switch(statement):
    """The encoding a SET client_encoding / SET NAMES switches the session to when it is not UTF-8, or None."""
    if statement.words.first(1) != ['SET']:
        return None
    m = CLIENT_ENCODING_SET_RE.match(COMMENT_RE.sub(' ', statement.text))
    if not m:
        return None
    value = m.group(1)
    if value.upper().replace('-', '').replace('_', '') in ('UTF8', 'UNICODE', 'DEFAULT', ''):
        return None
    return value


def standard_strings_change(statement):
    """Whether a statement changes standard_conforming_strings in a way the splitter cannot follow
    (set_config, dynamic SQL): psql would read the lines after it otherwise than the module."""
    command = statement.words.first(1)[0]
    if 'standard_conforming_strings' not in statement.text.lower() or not command:
        return False
    if command in ('SET', 'RESET', 'SHOW', 'ALTER'):  # ALTER DATABASE/ROLE: for later sessions
        return False
    return bool(re.search(r'set_config|\bset\b|\breset\b', statement.text, re.IGNORECASE))


def transaction_control(statement):
    """Name the transaction-control command a statement is, or None."""
    w = statement.words.first(3)
    if w[0] in ('BEGIN', 'COMMIT', 'END', 'ABORT'):
        return w[0]
    if w[0] == 'START' and w[1:2] == ['TRANSACTION']:
        return 'START TRANSACTION'
    if w[0] == 'ROLLBACK' and w[1:2] != ['TO'] and w[1:3] != ['TRANSACTION', 'TO'] and w[1:3] != ['WORK', 'TO']:
        return 'ROLLBACK'
    if w[0] == 'PREPARE' and w[1:2] == ['TRANSACTION']:
        return 'PREPARE TRANSACTION'
    return None


def undoes_the_run(statement):
    """Name what a statement would take away from the run's own session, or None: its advisory
    lock (a concurrent run could then start) or its prepared history write."""
    w = statement.words.first(3)
    if w[0] == 'DISCARD' and w[1] == 'ALL':
        return (
            'DISCARD ALL would release the run\'s migration lock, letting a concurrent run in, and drop '
            'its prepared history write; remove it: every migration already starts from the run\'s '
            'settings, without temporary tables'
        )
    if w[0] == 'DEALLOCATE' and (w[2] if w[1] == 'PREPARE' else w[1]) in ('ALL', RECORD_STATEMENT.upper()):
        return 'DEALLOCATE would drop the module\'s prepared history write; deallocate the file\'s own prepared statements by name'
    if UNLOCK_ALL in statement.text.lower():
        return (
            '%s() would release the run\'s migration lock, letting a concurrent run in; release the '
            'file\'s own advisory locks with pg_advisory_unlock(key)' % UNLOCK_ALL
        )
    return None


def needs_no_transaction(statement):
    """Name why a statement cannot run in a transaction block, or None."""
    w = statement.words.first(4)
    if w[0] == 'VACUUM':
        return 'VACUUM'
    if w[0] == 'CREATE' and w[1:3] == ['INDEX', 'CONCURRENTLY']:
        return 'CREATE INDEX CONCURRENTLY'
    if w[0] == 'CREATE' and w[1:4] == ['UNIQUE', 'INDEX', 'CONCURRENTLY']:
        return 'CREATE UNIQUE INDEX CONCURRENTLY'
    if w[0] == 'DROP' and w[1:3] == ['INDEX', 'CONCURRENTLY']:
        return 'DROP INDEX CONCURRENTLY'
    if w[0] == 'REINDEX' and (w[2] == 'CONCURRENTLY' or w[1] in ('DATABASE', 'SYSTEM', 'SCHEMA')):
        return 'REINDEX %s%s' % (w[1], ' CONCURRENTLY' if w[2] == 'CONCURRENTLY' else '')
    if w[0] == 'ALTER' and 'DETACH' in statement.words.every() and statement.words.every()[-1] == 'CONCURRENTLY':
        return 'DETACH PARTITION CONCURRENTLY'
    if w[0] in ('CREATE', 'DROP') and w[1] in ('DATABASE', 'TABLESPACE'):
        return '%s %s' % (w[0], w[1])
    if w[0] == 'ALTER' and w[1] == 'SYSTEM':
        return 'ALTER SYSTEM'
    return None


def analyze_migration(mig, standard_strings=True):
    """Split a migration into statements and return the problems that keep it from running.

    standard_strings: the session's standard_conforming_strings, which every file starts from."""
    try:
        mig.statements = split_statements(mig.sql, standard_strings, mig.transactional)
    except ValueError as e:
        return ['%s: %s' % (mig.filename, e)]
    problems = []
    if not mig.statements:
        problems.append('%s: contains no SQL statement' % mig.filename)
    for st in mig.statements:
        control = transaction_control(st)
        if control:
            problems.append(
                '%s line %d: top-level %s. The module runs each migration in its own '
                'transaction; remove the transaction control statements' % (mig.filename, st.line, control)
            )
        undone = undoes_the_run(st)
        if undone:
            problems.append('%s line %d: %s' % (mig.filename, st.line, undone))
        stream = copy_stream(st)
        if stream:
            problems.append(
                '%s line %d: COPY ... %s streams rows through the client, which only psql '
                'does (inline data, \\copy); write the rows as INSERT ... VALUES, or COPY %s a '
                'file on the database server' % (mig.filename, st.line, stream, 'from' if stream == 'FROM STDIN' else 'to')
            )
        encoding = encoding_switch(st)
        if encoding and not mig.sql.isascii():  # with ASCII only, the switch changes nothing
            problems.append(
                '%s line %d: SET client_encoding to %s in a file with non-ASCII characters, which '
                'the server would then read as %s and store wrongly. The module reads every file as '
                'UTF-8 and sends it as UTF-8, and the server converts it to the database\'s encoding: '
                'remove the statement' % (mig.filename, st.line, encoding, encoding)
            )
        if standard_strings_change(st):
            problems.append(
                '%s line %d: changes standard_conforming_strings other than by SET or RESET, so the '
                'module cannot tell how psql and the server read the lines after it; use SET '
                'standard_conforming_strings on a line of its own' % (mig.filename, st.line)
            )
        reason = needs_no_transaction(st)
        if reason and mig.transactional:
            problems.append(
                '%s line %d: %s cannot run inside a transaction block; if that is intended, '
                'add the line "-- postgresql_migrate: no-transaction" to the file '
                '(its statements then run one by one, without rollback on failure)' % (mig.filename, st.line, reason)
            )
    return problems


def analyze_migrations(migrations, standard_strings=True):
    """Analyze every migration; raise MigrationError listing every problem found."""
    problems = []
    for mig in migrations:
        if mig.statements is None:
            problems.extend(analyze_migration(mig, standard_strings))
    if problems:
        raise MigrationError(problems)
