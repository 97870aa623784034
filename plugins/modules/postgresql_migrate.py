#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: postgresql_migrate
short_description: Apply versioned SQL migrations to a PostgreSQL database, once each
description:
  - Applies the C(NNN_description.sql) files of a directory to a database in numeric
    version order, each file and its history row in one transaction, and records every
    applied version in a history table (C(schema_migrations) by default).
  - Idempotent. A version recorded in the history table is never run again, whether this
    module, the file itself (C(INSERT ... ON CONFLICT DO NOTHING)) or a person with C(psql)
    recorded it. Versions recorded without a checksum are adopted, their checksum filled in.
  - Safe under concurrent runs. A session advisory lock serializes runs against the same
    database and history table; a run waits for it at most O(lock_wait) seconds and then
    fails with an error that names the session holding it.
  - Honest in check mode. Nothing is written, no lock is taken and no migration SQL runs (the
    session is read-only); the result lists exactly the versions a real run would apply and
    fails for the same reasons a real run would fail (drift, out-of-order, bad files).
  - Every file is read and checked before anything is written. Duplicate versions, names that
    do not match C(NNN_description.sql), unreadable, empty or non-UTF-8 files, files that are
    not regular files (a FIFO would hang the run), symbolic links leading out of O(path),
    top-level C(BEGIN)/C(COMMIT)/C(ROLLBACK), C(psql) meta-commands, and statements that would
    release the run's lock or drop its prepared history write (C(DISCARD ALL),
    C(DEALLOCATE ALL), a call of C(pg_advisory_unlock_all)) stop the run with a message naming every
    offending file.
  - "A file whose statements cannot run inside a transaction block (for example
    C(CREATE INDEX CONCURRENTLY)) must say so with the line
    C(-- postgresql_migrate: no-transaction). Its statements then run one by one outside a
    transaction. While it runs, a row in the C(<table>_incomplete) table marks it; if it fails
    or the run dies, the next run stops and explains how to inspect and retry it
    (O(retry_incomplete)). Such a file is recorded only when every index its statements build or
    rely on (C(CREATE INDEX), C(REINDEX ... CONCURRENTLY) and its C(_ccnew) copies, C(ALTER INDEX
    ... ATTACH PARTITION)) is valid: an invalid index, which a failed C(CONCURRENTLY) build leaves
    and C(IF NOT EXISTS) keeps, enforces nothing, so the migration fails unrecorded and names the
    index to drop."
  - A failed migration is rolled back as a whole; the run stops there. The task fails with the
    version, file, SQLSTATE, message and the line of the file; migrations applied earlier in
    the run stay applied and are reported as such.
  - Runs where the files are, on the database host or on any host that reaches the database.
version_added: '1.0.0'
author:
  - st44 platform team
options:
  path:
    description:
      - Directory holding the migration files, named C(NNN_description.sql) (C(NNN) any number
        of digits, C(description) letters, digits, C(_) and C(-)).
      - Other files (C(README.md), hidden files) and subdirectories are ignored. A subdirectory or
        anything else named C(*.sql) that is not a readable regular file in O(path) (a directory, a
        link that loops, dangles or leads out of O(path)) stops the run, named with every other bad file.
      - A directory without any migration file is an error that says what it holds instead (subfolders
        with an C(up.sql) of another tool's layout, subfolders holding migration files, other files, or
        nothing), unless O(allow_empty) is set; a O(path) that does not exist or is not a directory is
        always an error, in check mode too.
      - Without O(path), the module only connects, refuses a hot standby and returns RV(server), which
        is what a deploy checks before it ships anything.
    type: path
  option_prefix:
    description:
      - Put before the option names that hints in messages tell the reader to set (O(accept_checksums),
        O(retry_incomplete), O(allow_out_of_order), O(allow_empty), O(target_version), O(max_file_size),
        O(lock_wait), O(lock_retries)), for a caller that sets them through variables of its own. The
        C(db_deploy) role passes C(db_deploy_), so its users read C(db_deploy_retry_incomplete).
    type: str
    default: ''
  progress_file:
    description:
      - A file the module rewrites before each migration it applies, with a JSON object whose C(msg)
        names the version running, its place in the run and the time it started; removed when the
        module ends. A caller that runs this module asynchronously reads it to show how far a long
        run is. Empty for none.
    type: path
    default: ''
  describe_schema:
    description:
      - Return RV(schema) as the database is when the module ends (after the migrations, or as it is
        in check mode), that is the versions the history table records and every table, foreign key and index,
        so that a caller verifies the result without another connection.
    type: bool
    default: false
  allow_empty:
    description:
      - Accept a O(path) directory that holds no migration file (nothing is applied; the history is
        still read and reported). Off by default, since an empty or wrong directory is how
        migrations silently never run.
    type: bool
    default: false
  db:
    description:
      - Name of the database to migrate.
    type: str
    required: true
    aliases: [login_db]
  session_role:
    description:
      - Switch to this role after connecting; migrations then run and own objects as this role.
    type: str
  table:
    description:
      - History table, optionally schema-qualified (C(schema.table)). Letters, digits and C(_)
        only. Created by the first migration (C(000_create_migrations_table.sql)) or, when no
        migration creates it, by the module. The module adds the nullable columns C(checksum),
        C(applied_by) and C(execution_ms) when they are missing.
    type: str
    default: schema_migrations
  target_version:
    description:
      - Apply pending migrations up to and including this version; later ones are reported as
        C(skipped). Must be the version of a migration file. Migrations are never rolled back;
        a target below the applied versions applies nothing.
    type: str
  allow_out_of_order:
    description:
      - Apply a pending version lower than the highest recorded version. Off by default, since
        such a migration was usually written against an older schema.
    type: bool
    default: false
  accept_checksums:
    description:
      - Versions whose applied file has deliberately changed (for example an edited comment).
        Their recorded checksum is replaced with the file's; the SQL is not run again.
    type: list
    elements: str
    default: []
  retry_incomplete:
    description:
      - Versions of C(no-transaction) migrations that an earlier run left incomplete, to run
        again from their first statement. Inspect the database first; such a file should be
        written to be re-runnable (C(IF NOT EXISTS)).
      - A retry whose C(CREATE INDEX) names an index that an earlier failed build left invalid is
        refused before anything runs, in check mode too; drop that index first (C(DROP INDEX
        CONCURRENTLY)), as the message says.
    type: list
    elements: str
    default: []
  lock_wait:
    description:
      - Seconds to wait for the advisory lock held by another run before failing. C(0) fails at
        once when the lock is taken. At most 2147483 (PostgreSQL's largest C(lock_timeout)). A
        C(statement_timeout) set for the database or role does not shorten this wait.
    type: float
    default: 60
  lock_key:
    description:
      - Advisory lock key (a 64-bit integer). Defaults to a stable key derived from O(table), so
        every run that migrates the same database and history table shares it.
    type: int
  lock_timeout:
    description:
      - PostgreSQL C(lock_timeout) for migration statements (for example C(5s), C(500ms)). A
        migration waiting longer than this for a lock that an application session holds fails
        instead of queueing every later application query behind it.
      - C(0) waits forever; not recommended on a live database.
      - Not applied to the C(CONCURRENTLY) statements of a no-transaction file; see
        O(concurrent_lock_timeout).
    type: str
    default: 5s
  concurrent_lock_timeout:
    description:
      - C(lock_timeout) for the C(CONCURRENTLY) statements of a no-transaction file (C(CREATE
        INDEX CONCURRENTLY) and the like). They wait for every transaction older than them to
        end, however unrelated (a report, a C(pg_dump)), and that wait blocks no application
        query, so they get a longer bound than O(lock_timeout). A file's own C(SET lock_timeout)
        is put back after each such statement.
      - C(0) waits forever, which an abandoned idle-in-transaction session turns into a deploy
        that never ends.
    type: str
    default: 15min
  lock_retries:
    description:
      - How many times a migration that failed only because of O(lock_timeout), a deadlock or
        a serialization failure is retried, with a growing pause (1, 2, 4... seconds), before
        the task fails.
    type: int
    default: 3
  statement_timeout:
    description:
      - PostgreSQL C(statement_timeout) for migration statements, for example C(15min); C(0)
        disables it.
      - Unset, the setting of the server, database or role applies.
    type: str
  applied_by:
    description:
      - Recorded in the C(applied_by) column of every version this run applies (for example a
        release or pipeline identifier). Defaults to C(<os user>@<host name>).
    type: str
  max_file_size:
    description:
      - Largest accepted migration file, in bytes. A larger file stops the run before anything
        is written.
    type: int
    default: 52428800
extends_documentation_fragment:
  - community.postgresql.postgres
attributes:
  check_mode:
    support: full
    description: Read-only session; reports what a real run would apply and fails where it would fail.
  diff_mode:
    support: full
    description: Shows the SQL of every migration applied, or that would be applied in check mode, exactly
      as written, comments included, except the values that set a password, each shown as C(********)
      (the literal after C(PASSWORD) or a C(password) option, C(password=) in a connection string, a
      URI's password).
notes:
  - The migration SQL runs statement by statement, as C(psql) runs a file; C(psql)
    meta-commands (lines starting with a backslash) are refused, and so is C(COPY ... FROM STDIN)
    (pg_dump's inline rows) or C(TO STDOUT), which only C(psql) can stream. Write seed rows as
    C(INSERT ... VALUES).
  - Files are split into statements as C(psql) splits them under the session's
    C(standard_conforming_strings) (read from the server; set off for the database or role, a
    backslash escapes in every C('...') literal), and a file's own C(SET standard_conforming_strings)
    or C(RESET) holds for the statements after it (C(SET LOCAL) in a transactional file only). Other
    SQL on the same line after such a C(SET), and a change by C(set_config) or dynamic SQL, are
    refused, since C(psql) and the server would then read the file differently.
  - Files are read and sent as UTF-8; the server converts them to the database's encoding. A
    C(SET client_encoding) (or C(SET NAMES)) to another encoding in a file with non-ASCII text
    is refused, since the server would read that text in the wrong encoding.
  - Each file starts from the run's session settings (I(lock_timeout), I(statement_timeout),
    I(session_role), the server's defaults for the rest), as if in a session of its own. A plain
    C(SET) of a timeout, C(search_path) or C(ROLE) in one file does not hold for the next, nor
    for the history row, which goes to the history table's schema as found when the run started.
    Temporary tables a file creates are dropped before the next file runs (C(DISCARD TEMP)).
  - The module connects with C(client_encoding=UTF8), so the server converts the files to the
    database's encoding, and a character the database cannot store fails the migration with
    SQLSTATE 22P05.
  - A database that is read-only for the session (C(default_transaction_read_only)) is refused
    before anything, in check mode too.
  - Checksums are SHA-256 of the file with a leading byte order mark removed and line endings
    normalized to LF, so converting a file between CRLF and LF is not drift.
  - Versions are compared as numbers, so C(7_x.sql) and C(007_y.sql) are duplicates; the
    history row keeps the digits as written in the file name.
requirements:
  - psycopg2 >= 2.5.1 or psycopg >= 3.1.8
seealso:
  - module: community.postgresql.postgresql_script
  - module: community.postgresql.postgresql_query
'''

EXAMPLES = r'''
- name: Apply the pending migrations over the local socket as postgres
  postgresql_migrate:
    path: /var/lib/st44/migrations/release-42
    db: st44
  become: true
  become_user: postgres

- name: Apply migrations over TLS with a password from the vault, up to version 014
  postgresql_migrate:
    path: "{{ release_dir }}/migrations"
    db: st44
    login_host: db.internal.example
    login_user: st44_owner
    login_password: "{{ vault_st44_db_password }}"
    ssl_mode: verify-full
    ca_cert: /etc/ssl/certs/internal-ca.pem
    target_version: "014"
    applied_by: "release {{ release_id }}"

- name: Show what would be applied, and the SQL
  postgresql_migrate:
    path: /var/lib/st44/migrations/release-42
    db: st44
  check_mode: true
  diff: true
  register: st44_plan

- name: Accept a deliberate comment-only edit of an applied migration
  postgresql_migrate:
    path: /var/lib/st44/migrations/release-43
    db: st44
    accept_checksums: ["012"]
'''

RETURN = r'''
migrations:
  description:
    - One entry per migration file, in version order.
    - Optional keys appear only when they carry information, which keeps the result small when
      there are thousands of migrations.
  returned: always
  type: list
  elements: dict
  sample:
    - version: "000"
      name: create_migrations_table
      status: already_applied
      changed: false
      applied_at: "2026-11-23 10:00:00.123456+00"
    - version: "001"
      name: create_users_table
      status: applied
      changed: true
      duration_ms: 12
  contains:
    version:
      description: Version digits as written in the file name.
      type: str
      returned: always
      sample: "001"
    name:
      description: Description part of the file name (C(NNN_<name>.sql)).
      type: str
      returned: always
      sample: create_users_table
    status:
      description:
        - C(applied) by this run; C(already_applied) before it; C(would_apply) in check mode;
          C(failed); C(skipped) when beyond O(target_version) or not reached because an earlier
          migration failed; C(pending) when the run stopped before applying anything.
      type: str
      returned: always
      sample: applied
    changed:
      description: True when this run applied the version (or would, in check mode).
      type: bool
      returned: always
      sample: true
    duration_ms:
      description: Time the migration took in this run, in milliseconds.
      type: int
      returned: when this run applied the version or it failed
      sample: 12
    applied_at:
      description: When the version was recorded, for versions applied before this run.
      type: str
      returned: when already applied and the history table has an applied_at column
      sample: "2026-11-23 10:00:00.123456+00"
    adopted:
      description: The version was recorded without a checksum (by the file itself or by hand)
        and this run filled in the file's checksum (would, in check mode).
      type: bool
      returned: when true
      sample: true
    checksum_accepted:
      description: The recorded checksum was replaced because of O(accept_checksums).
      type: bool
      returned: when true
      sample: true
    drift:
      description: The file changed since the version was applied.
      type: bool
      returned: when true
      sample: true
    no_transaction:
      description: The file is marked C(-- postgresql_migrate no-transaction) and runs outside a transaction.
      type: bool
      returned: when true
      sample: true
    message:
      description: Why the version was skipped or failed, or what is wrong with it.
      type: str
      returned: when there is something to say
      sample: beyond target_version 014
applied:
  description: Versions applied by this run (or that would be, in check mode).
  returned: always
  type: list
  elements: str
  sample: ["011", "012"]
pending:
  description: Versions still not applied when the module finished.
  returned: always
  type: list
  elements: str
  sample: []
drifted:
  description: Applied versions whose file has changed since, and were not accepted.
  returned: always
  type: list
  elements: str
  sample: []
missing:
  description: Versions recorded in the history table with no file in O(path) (reported, not fatal).
  returned: always
  type: list
  elements: str
  sample: ["010"]
incomplete:
  description: C(no-transaction) versions left incomplete by an earlier run.
  returned: always
  type: list
  elements: dict
  sample: [{"version": "017", "started_at": "2026-11-23 10:00:00+00", "error": "..."}]
current_version:
  description: Highest version recorded once the module finished (null when none).
  returned: always
  type: str
  sample: "016"
failed_migration:
  description: Details of the migration that failed; in I(statement) and the server's message, a value
    that sets a password is shown as C(********).
  returned: when a migration failed
  type: dict
  sample:
    version: "017"
    file: 017_add_index.sql
    line: 4
    sqlstate: 42P01
    message: relation "nope" does not exist
    statement: ALTER TABLE nope ADD COLUMN x int
summary:
  description: Counts per status.
  returned: always
  type: dict
  sample: {"applied": 2, "already_applied": 6, "would_apply": 0, "failed": 0, "skipped": 0, "pending": 0}
server:
  description: Without O(path), what the server is; C(system_id) is the cluster's system_identifier.
  returned: success, when path is not given
  type: dict
  sample: {"major": 16, "version": "16.4", "size_bytes": 7631663, "system_id": "7381205736474528013"}
schema:
  description: With O(describe_schema), the database when the module ended, C(schema.table) names.
  returned: success, when describe_schema is set
  type: dict
  sample: {"versions": ["000", "001"], "tables": ["public.users"], "foreign_keys": ["user_sessions.fk_user"],
           "indexes": ["users_pkey"]}
'''

import errno
import hashlib
import json
import os
import pwd
import re
import socket
import stat
import time

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.converters import to_native

try:
    from ansible_collections.community.postgresql.plugins.module_utils.database import (
        SQLParseError,
        pg_quote_identifier,
    )
    from ansible_collections.community.postgresql.plugins.module_utils.postgres import (
        connect_to_db,
        ensure_required_libs,
        get_conn_params,
        pg_cursor_args,
        postgres_common_argument_spec,
    )

    HAS_COLLECTION = True
except ImportError:  # reported by main() with what to install
    HAS_COLLECTION = False


FILENAME_RE = re.compile(r'^(?P<version>[0-9]+)_(?P<name>[A-Za-z0-9][A-Za-z0-9_-]*)\.sql$')
NO_TRANSACTION_RE = re.compile(r'^[ \t]*--\s*postgresql_migrate\s*:\s*no-transaction\s*$', re.IGNORECASE | re.MULTILINE)
# The blank and -- comment lines at the top of a file, where the no-transaction marker goes.
HEADER_RE = re.compile(r'(?:[ \t\f\v]*(?:--[^\n]*)?\n)*')
# The table part stops at 52 characters so that "<table>_incomplete" fits PostgreSQL's 63.
TABLE_RE = re.compile(r'(?:[A-Za-z_][A-Za-z0-9_]{0,62}\.)?[A-Za-z_][A-Za-z0-9_]{0,51}')
PG_INTERVAL_RE = re.compile(r'^\s*[0-9]+(\.[0-9]+)?\s*(us|ms|s|min|h|d)?\s*$')
WHITESPACE = ' \t\n\r\f\v'
# Character classes as PostgreSQL's lexer has them: a letter, "_" or any non-ASCII character
# starts an identifier; digits and "$" may follow. They are written as "everything but these
# ASCII characters", which compiles in microseconds where a range up to U+10FFFF takes
# milliseconds: the module pays for compiling its patterns on every run.
_IDENT_START = r'[^\x00-\x40\x5b-\x5e\x60\x7b-\x7f]'
_IDENT_CONT = r'[^\x00-\x23\x25-\x2f\x3a-\x40\x5b-\x5e\x60\x7b-\x7f]'
_TAG_CONT = r'[^\x00-\x2f\x3a-\x40\x5b-\x5e\x60\x7b-\x7f]'
_IDENT = _IDENT_START + _IDENT_CONT + '*'
# ASCII characters that matter to nobody: not whitespace, ; ' " $ ( ) \\ / -, letters or "_".
_INERT = r'[\x00-\x08\x0e-\x1f!#%&*+,.0-9:<=>?@\[\]^\x60{|}~\x7f]'
# One lexical token at a time, after the whitespace before it; the group that matched tells its
# kind: a -- comment, the start of a /* comment, a word, a run of characters that matter to
# nobody (digits, operators, commas), or a single other character (whitespace only at the very
# end of the text).
TOKEN_RE = re.compile(r'[ \t\n\r\f\v]*(?:(--[^\n]*)|(/\*)|(' + _IDENT + ')|(' + _INERT + '+)|(.))', re.DOTALL)
LINE_COMMENT = 1  # the numbers of TOKEN_RE's groups
BLOCK_COMMENT = 2
WORD = 3
INERT = 4
# Once a statement's leading keywords are known, everything up to the next character that can
# end it, open a literal, a comment or a parenthesis is skipped in one match: whitespace, inert
# characters, a "-" or "/" that does not open a comment, and whole identifiers (so that the "$"
# inside one is not taken for a dollar quote) except one right before a quote, which the token
# loop reads (E'...' takes backslash escapes).
SKIP_RE = re.compile(r'(?:[ \t\n\r\f\v]|' + _INERT + '|' + _IDENT + "(?!'|" + _IDENT_CONT + r')|-(?!-)|/(?!\*))+')
DOLLAR_TAG = re.compile(r'\$(?:' + _IDENT_START + _TAG_CONT + r'*)?\$')
# SET [SESSION | LOCAL] client_encoding (quoted or not) | NAMES [TO | =] value, comments removed:
# the value, without its quote or the E or U& prefix of a quoted one.
CLIENT_ENCODING_SET_RE = re.compile(
    r'SET\s+(?:(?:SESSION|LOCAL)\s+)?(?:"client_encoding"|client_encoding\b|NAMES\b)'
    r'\s*(?:=|TO\b)?\s*(?:[EU]&?(?=[\'"]))?[\'"]?([^\s\'";]*)',
    re.IGNORECASE,
)
COMMENT_RE = re.compile(r'--[^\n]*|/\*.*?\*/', re.DOTALL)
# SET [SESSION | LOCAL] standard_conforming_strings TO | = value, and RESET of it or of ALL,
# comments removed: the scope and the value, without quotes.
STANDARD_STRINGS_SET_RE = re.compile(
    r'SET\s+(?:(SESSION|LOCAL)\s+)?(?:"standard_conforming_strings"|'
    r'standard_conforming_strings\b)\s*(?:=|TO\b)\s*[\'"]?([^\s\'";]*)',
    re.IGNORECASE,
)
STANDARD_STRINGS_RESET_RE = re.compile(r'RESET\s+(?:"standard_conforming_strings"|standard_conforming_strings\b|ALL\b)', re.IGNORECASE)
# The line that ends the rows of a COPY ... FROM STDIN in a psql script.
COPY_DATA_END_RE = re.compile(r"^\\\.\r?$", re.M)
BOM = '\ufeff'
# What is hidden of SQL shown to a person (--diff, a failed statement, the server's messages): the
# value that sets a password, nothing else. The value is the literal after a word ending in
# "password" (a role's PASSWORD, a user mapping's password or sslpassword option, UPDATE ... SET
# password = '...'), the value of password= in a connection string inside a literal, and the
# password of a URI; comments are shown whole (one that holds a URI loses its password). The
# literals of SQL that is itself in a literal (EXECUTE '...', a DO body) are read the same way.
# Where the value is not written in the statement (PASSWORD %L, PASSWORD ' || ...), the rest of
# the statement and the literals of the code around it are hidden, as the value may be any of them.
URI_SECRET_RE = re.compile(r'''(://[^/:@\s'"]{0,256}:)[^@\s'"]{1,256}@''')
# In a literal's value, where a quote is no delimiter any more: 'postgresql://u:it''s@h'.
URI_SECRET_IN_VALUE_RE = re.compile(r'''(://[^/:@\s]{0,256}:)[^@\s]{1,256}@''')
SECRET_KEY_RE = re.compile(r'[A-Za-z0-9_]*password', re.IGNORECASE)
CONNINFO_SECRET_RE = re.compile(
    r'''(?<![\w$.])[A-Za-z0-9_]*password[ \t\n\r\f\v]*=[ \t\n\r\f\v]*'''
    r'''((?:'(?:[^'\\]|\\.)*'?)|[^ \t\n\r\f\v]*)''',
    re.IGNORECASE,
)
# One token for showing SQL: a -- comment, the start of a /* comment, a word, a $n parameter, a
# number, or one other character. Never fails, so unterminated or mangled text (an error context)
# is still read to its end.
SHOW_TOKEN_RE = re.compile(r'[ \t\n\r\f\v]*(?:(--[^\n]*)|(/\*)|(' + _IDENT + r')|(\$[0-9]+)|([0-9][0-9.]*)|(.))', re.DOTALL)
SHOW_LITERAL_END = {
    'std': re.compile(r"(?:[^']|'')*'"),
    'esc': re.compile(r"(?:[^'\\]|''|\\.)*'", re.DOTALL),
    'ident': re.compile(r'(?:[^"]|"")*"'),
}
MAX_SECRET_DEPTH = 4  # SQL in a literal in a literal...: deeper than that, the whole literal is hidden
REDACTED = '********'

# SQLSTATEs that say "try again later" rather than "this SQL is wrong".
RETRYABLE_SQLSTATES = {
    '55P03': 'lock_not_available',
    '40P01': 'deadlock_detected',
    '40001': 'serialization_failure',
}
HISTORY_EXTRA_COLUMNS = (
    ('checksum', 'text'),
    ('applied_by', 'text'),
    ('execution_ms', 'integer'),
)
BEGIN_PREFIX = 'BEGIN; '
MAX_LOCK_WAIT = 2147483  # seconds: PostgreSQL's largest lock_timeout (2^31 - 1 ms)
STATUSES = ('applied', 'already_applied', 'would_apply', 'failed', 'skipped', 'pending')


class MigrationError(Exception):
    """A problem found before anything was written; carries every problem found."""

    def __init__(self, problems):
        self.problems = list(problems)
        super(MigrationError, self).__init__('; '.join(self.problems))


class Statement(object):
    """One SQL statement of a file: its text, the line it starts on and its leading keywords.

    words holds the first four words outside parentheses and literals, upper-cased, which is all
    that transaction_control and needs_no_transaction look at; every such word for ALTER (DETACH
    PARTITION ... CONCURRENTLY ends the statement) and for routine definitions (BEGIN ATOMIC).
    """

    __slots__ = ('text', 'line', 'words', 'escapes')

    def __init__(self, text, line, words, escapes=False):
        self.text = text
        self.line = line
        self.words = words
        self.escapes = escapes  # a backslash escapes in its '' literals (standard_conforming_strings off)

    def __repr__(self):
        return 'Statement(line=%d, %r)' % (self.line, self.text[:40])


class Migration(object):
    """A migration file, read and checked."""

    __slots__ = ('version', 'number', 'name', 'filename', 'sql', 'checksum', 'statements', 'transactional')

    def __init__(self, version, name, filename, sql, checksum, statements, transactional):
        self.version = version
        self.number = int(version)
        self.name = name
        self.filename = filename
        self.sql = sql
        self.checksum = checksum
        self.statements = statements
        self.transactional = transactional


# ---------------------------------------------------------------------------
# Reading files (pure)
# ---------------------------------------------------------------------------


def normalize_sql(text):
    """Drop a leading BOM and turn CRLF / CR line endings into LF."""
    if text.startswith(BOM):
        text = text[1:]
    return text.replace('\r\n', '\n').replace('\r', '\n')


def checksum_of(sql):
    """SHA-256 hex digest of text that normalize_sql returned: stable across a BOM and line endings."""
    return hashlib.sha256(sql.encode('utf-8')).hexdigest()


def quotes_hidden_sql(fragment, hidden):
    """Whether a fragment a message quotes is a token (or run of tokens) of the hidden SQL: not
    merely inside a longer word, so the table t of `(password text)` is still named."""
    pattern = re.compile(
        ('(?<![\\w$])' if re.match(r'[\w$]', fragment) else '') + re.escape(fragment) + ('(?![\\w$])' if re.search(r'[\w$]\Z', fragment) else '')
    )
    return any(pattern.search(part) for part in hidden)


def redact_quoted(text, hidden):
    """A server message, detail or hint with each "quoted" fragment that comes from the hidden
    parts of the SQL hidden: a syntax error quotes the token it stopped at, which may be the
    password. The longest fragment wins, so a token holding a quote is hidden whole. A hidden part
    found anywhere else in the text is hidden too, unless it is too short to tell (1-3 characters)."""
    quotes = [i for i, c in enumerate(text) if c == '"']
    if len(quotes) > 8:  # no message of the server quotes that much: hide from the first quote on
        return text[: quotes[0]] + '"%s"' % REDACTED
    out, pos, k = [], 0, 0
    while k < len(quotes) - 1:
        start = quotes[k]
        for m in range(len(quotes) - 1, k, -1):
            end = quotes[m]
            if end > start + 1 and quotes_hidden_sql(text[start + 1 : end], hidden):
                out += [text[pos:start], '"%s"' % REDACTED]
                pos, k = end + 1, m + 1
                break
        else:
            k += 1
    text = ''.join(out) + text[pos:]
    for part in sorted(hidden, key=len, reverse=True):  # quoted or not, with more around it
        if len(part) >= 4:
            text = text.replace(part, REDACTED)
    return text


def _line_of(text, offset):
    return text.count('\n', 0, offset) + 1


# The rest of a quoted literal after its opening quote, up to and including the closing one: a
# doubled quote stands for itself; in E'' strings a backslash escapes the next character.
QUOTED_REST = {
    ("'", False): re.compile(r"(?:[^']|'')*'"),
    ("'", True): re.compile(r"(?:[^'\\]|''|\\.)*'", re.DOTALL),
    ('"', False): re.compile(r'(?:[^"]|"")*"'),
}


def _skip_quoted(sql, i, quote, backslash_escapes):
    """Return the index just past the quoted literal that starts at sql[i] (the quote)."""
    m = QUOTED_REST[quote, backslash_escapes].match(sql, i + 1)
    # A match that ends just before another quote took the first half of a doubled quote as the
    # end: the regex found it by backtracking because the literal is not terminated.
    if m is None or sql.startswith(quote, m.end()):
        raise ValueError('unterminated %s starting at line %d' % ('quoted identifier' if quote == '"' else 'string literal', _line_of(sql, i)))
    return m.end()


def _skip_block_comment(sql, i):
    depth = 0
    n = len(sql)
    j = i
    while j < n:
        if sql.startswith('/*', j):
            depth += 1
            j += 2
        elif sql.startswith('*/', j):
            depth -= 1
            j += 2
            if depth == 0:
                return j
        else:
            j += 1
    raise ValueError('unterminated /* comment starting at line %d' % _line_of(sql, i))


def _show_tokens(text, escapes):
    """(kind, start, end, body_start, body_end, mode) of each token of text, comments included.

    kind: comment, word, param, number, other, string, dollar or ident; a string's mode is esc when
    a backslash escapes in it (E'', or every '' when escapes: standard_conforming_strings off).
    """
    tokens, i, n = [], 0, len(text)
    while i < n:
        m = SHOW_TOKEN_RE.match(text, i)
        kind = m.lastindex
        start = m.start(kind)
        if kind == 1:
            tokens.append(('comment', start, m.end(), start, m.end(), None))
            i = m.end()
            continue
        if kind == 2:
            try:
                end = _skip_block_comment(text, start)
            except ValueError:
                end = n
            tokens.append(('comment', start, end, start, end, None))
            i = end
            continue
        if kind == 3:
            word, end = m.group(3), m.end()
            prefix = word.upper()
            if end < n and text[end] == "'" and prefix in ('E', 'B', 'X', 'N'):
                # B'' and X'' never take backslash escapes; N'' does as '' does
                mode, quote_at = 'esc' if prefix == 'E' or (escapes and prefix == 'N') else 'std', end
            elif prefix == 'U' and text.startswith("&'", end):
                mode, quote_at = 'std', end + 1
            elif prefix == 'U' and text.startswith('&"', end):
                mode, quote_at = 'ident', end + 1
            else:
                tokens.append(('word', start, end, start, end, None))
                i = end
                continue
        elif kind in (4, 5):
            tokens.append(('param' if kind == 4 else 'number', start, m.end(), start, m.end(), None))
            i = m.end()
            continue
        else:
            c = text[start]
            quote_at = start
            if c == "'":
                mode = 'esc' if escapes else 'std'
            elif c == '"':
                mode = 'ident'
            elif c == '$' and DOLLAR_TAG.match(text, start):
                tag = DOLLAR_TAG.match(text, start).group()
                close = text.find(tag, start + len(tag))
                body_end = close if close >= 0 else n
                end = close + len(tag) if close >= 0 else n
                tokens.append(('dollar', start, end, start + len(tag), body_end, None))
                i = end
                continue
            else:
                if c not in WHITESPACE:  # whitespace only at the very end of the text
                    tokens.append(('other', start, m.end(), start, m.end(), None))
                i = m.end()
                continue
        body = SHOW_LITERAL_END[mode].match(text, quote_at + 1)
        end = body.end() if body else n
        tokens.append(('ident' if mode == 'ident' else 'string', start, end, quote_at + 1, end - 1 if body else n, mode))
        i = end
    return tokens


def _decoded(text, token):
    """A literal's value and, for each of its characters, where it starts in text."""
    _, _, _, i, end, mode = token
    if mode is None:  # dollar quoting: the body as written
        return text[i:end], list(range(i, end))
    quote = '"' if mode == 'ident' else "'"
    out, at = [], []
    while i < end:
        c = text[i]
        step = 2 if (c == quote and text.startswith(quote, i + 1)) or (c == '\\' and mode == 'esc') else 1
        out.append(text[i + step - 1] if i + step <= end else c)
        at.append(i)
        i += step
    return ''.join(out), at


def _in_role_statement(words):
    """CREATE/ALTER ROLE|USER|GROUP or an OPTIONS list among the words so far: there a password is
    whatever follows the word (a value left unquoted by mistake, which the server's error quotes)."""
    return 'OPTIONS' in words or any(a in ('CREATE', 'ALTER') and b in ('ROLE', 'USER', 'GROUP') for a, b in zip(words, words[1:]))


def _secrets_in(text, escapes, depth):
    """(spans, unwritten): spans of text that hold a secret; unwritten is where a password word
    is followed by no value (it is built elsewhere), or None."""
    tokens = _show_tokens(text, escapes)
    spans, unwritten, words = [], None, []
    n = len(tokens)

    def after(j):
        while j < n and tokens[j][0] == 'comment':
            j += 1
        return j

    i = 0
    while i < n:
        kind, start, end = tokens[i][:3]
        if kind == 'other' and text[start] == ';':
            words = []
        elif kind in ('word', 'ident'):
            name = text[start:end] if kind == 'word' else _decoded(text, tokens[i])[0]
            words.append(name.upper())
            if SECRET_KEY_RE.fullmatch(name):
                j = after(i + 1)
                if j < n and tokens[j][0] == 'other' and text[tokens[j][1]] == '=':
                    j = after(j + 1)
                value = tokens[j] if j < n else None
                if value is None:
                    if depth:
                        unwritten = end if unwritten is None else min(unwritten, end)
                elif value[0] in ('string', 'dollar'):
                    while j < n and tokens[j][0] in ('string', 'dollar'):  # continued literals
                        spans.append(tokens[j][1:3])
                        i, j = j, after(j + 1)
                elif value[0] == 'ident' or (value[0] in ('word', 'number') and _in_role_statement(words) and text[value[1] : value[2]].upper() != 'NULL'):
                    spans.append(value[1:3])
                    i = j
                elif value[0] == 'param' or (value[0] == 'other' and text[value[1]] in '%?'):
                    unwritten = end if unwritten is None else min(unwritten, end)
        elif kind in ('string', 'dollar'):
            inner, inner_unwritten = _secrets_in_literal(text, tokens[i], escapes, depth)
            spans.extend(inner)
            if inner_unwritten is not None:
                unwritten = inner_unwritten if unwritten is None else min(unwritten, inner_unwritten)
        i += 1
    if unwritten is not None and depth:
        spans.extend(t[1:3] for t in tokens if t[0] in ('string', 'dollar'))
    return spans, unwritten


def _secrets_in_literal(text, token, escapes, depth):
    """The spans of text that a literal's value holds secret: as SQL, as a connection string, a URI."""
    raw = text[token[3] : token[4]].lower()
    if 'password' not in raw.replace('\\', '') and '://' not in raw:
        return [], None
    value, at = _decoded(text, token)
    if depth >= MAX_SECRET_DEPTH:
        return [token[1:3]], None
    inner, unwritten = _secrets_in(value, escapes, depth + 1)
    for m in CONNINFO_SECRET_RE.finditer(value):
        if m.group(1):
            inner.append(m.span(1))
        elif m.end() == len(value):
            unwritten = m.end() if unwritten is None else min(unwritten, m.end())
    inner.extend((m.start() + len(m.group(1)), m.end() - 1) for m in URI_SECRET_IN_VALUE_RE.finditer(value))

    def raw_at(k):
        return at[k] if k < len(at) else token[4]

    spans = [(raw_at(a), raw_at(b)) for a, b in inner if b > a]
    return spans, None if unwritten is None else raw_at(unwritten)


def secret_spans(text, escapes=False):
    """Sorted, merged (start, end) spans of text that hold a secret (see the comment above URI_SECRET_RE).

    escapes: a backslash escapes in '' literals (standard_conforming_strings off).
    """
    spans = [(m.start() + len(m.group(1)), m.end() - 1) for m in URI_SECRET_RE.finditer(text)]
    if 'password' in text.lower().replace('\\', ''):
        found, unwritten = _secrets_in(text, escapes, 0)
        spans.extend(found)
        if unwritten is not None:  # text is one statement: the rest of it
            spans.append((unwritten, len(text)))
    return _merged(spans)


def _merged(spans):
    merged = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        elif end > start:
            merged.append((start, end))
    return merged


def _hide(text, spans):
    out, pos = [], 0
    for start, end in spans:
        out += [text[pos:start], REDACTED]
        pos = end
    return ''.join(out) + text[pos:]


def redact_secrets(text, escapes=False):
    """Text of SQL to show: each secret value (secret_spans) is ********, the rest as written.
    The SQL that runs is untouched."""
    return _hide(text, secret_spans(text, escapes))


def secret_parts(sql):
    """The secret values of sql, read with and without backslash escapes: a server message may
    quote any of them, and which reading the server made is not known here."""
    return sorted(set(sql[a:b] for escapes in (False, True) for a, b in secret_spans(sql, escapes)))


def redact_context(context):
    """A server error's CONTEXT lines, one line: each quotes SQL between its first and last double
    quote (SQL statement "ALTER ROLE ... PASSWORD '...'"), whose secrets are hidden read either way."""
    lines = []
    for line in context.splitlines():
        line = line.strip()
        first, last = line.find('"'), line.rfind('"')
        if 0 <= first < last:
            quoted = line[first + 1 : last]
            hidden = _merged(secret_spans(quoted, False) + secret_spans(quoted, True))
            line = line[: first + 1] + _hide(quoted, hidden) + line[last:]
        if line:
            lines.append(redact_secrets(line))
    return '; '.join(lines)


def redact_file(mig):
    """A split migration's SQL to show (--diff): as written, each statement's secret values hidden.
    Between statements are only comments, shown whole but for a URI's password."""
    sql, out, pos = mig.sql, [], 0
    for st in mig.statements or []:
        at = sql.find(st.text, pos)  # the statement's text is a slice of the file's
        if at < 0:
            break
        out += [redact_secrets(sql[pos:at]), redact_secrets(st.text, st.escapes)]
        pos = at + len(st.text)
    out.append(redact_secrets(sql[pos:]))
    return ''.join(out)


def _is_routine_definition(words):
    """CREATE [OR REPLACE] FUNCTION|PROCEDURE: may hold a BEGIN ATOMIC ... END body."""
    if words[0] != 'CREATE':
        return False
    w = words[1:4]
    if w[:1] in (['FUNCTION'], ['PROCEDURE']):
        return True
    return w[:2] == ['OR', 'REPLACE'] and w[2:3] in (['FUNCTION'], ['PROCEDURE'])


def split_statements(sql, standard_strings=True, transactional=True):
    """Split SQL text into statements the way psql does.

    Knows single-quoted strings (E'' with backslash escapes), quoted identifiers, dollar
    quoting, -- and nested /* */ comments, semicolons inside parentheses, and SQL-standard
    routine bodies (BEGIN ATOMIC ... END). Returns a list of Statement; raises ValueError for
    unterminated literals and psql meta-commands.

    standard_strings is the session's standard_conforming_strings: off, a backslash escapes in
    every '' literal, as psql and the server then read it. The file's own SET (or RESET)
    standard_conforming_strings changes it for the statements after it, as psql follows the
    server; SET LOCAL only in a transactional file (in a no-transaction file it has no effect).
    """
    statements = []
    std = standard_strings
    n = len(sql)
    i = 0
    start = None  # offset of the first token of the current statement
    words = []  # top-level keywords/identifiers of the current statement
    routine = False  # CREATE [OR REPLACE] FUNCTION|PROCEDURE
    paren_depth = begin_depth = 0
    line, line_pos = 1, 0  # line number at offset line_pos, advanced incrementally
    all_words = False  # ALTER, COPY: needs_no_transaction and copy_stream look at every word
    prev_word, prev_word_end = None, -1

    def meta_command(at):
        return ValueError('psql meta-command at line %d (%s): only SQL is supported' % (_line_of(sql, at), sql[at:].split(None, 1)[0][:20]))

    while i < n:
        if start is not None and (paren_depth or (len(words) >= 4 and not routine and not all_words)):
            # The leading keywords are known: jump to the next character that matters.
            skipped = SKIP_RE.match(sql, i)
            if skipped is not None:
                i = skipped.end()
                if i >= n:
                    break
        m = TOKEN_RE.match(sql, i)
        kind = m.lastindex
        i = m.start(kind)
        end = m.end()
        if kind == WORD:  # the most frequent: checked first
            if start is None:
                start = i
            token = m.group(kind)
            prev_word, prev_word_end = token, end
            if paren_depth == 0:
                upper = token.upper()
                words.append(upper)
                if len(words) == 1:
                    all_words = upper in ('ALTER', 'COPY')
                elif len(words) in (2, 4):
                    routine = _is_routine_definition(words)
                if routine:
                    if upper == 'BEGIN' or (upper == 'CASE' and begin_depth > 0):
                        begin_depth += 1
                    elif upper == 'END' and begin_depth > 0:
                        begin_depth -= 1
            i = end
            continue
        if kind == LINE_COMMENT:
            i = end
            continue
        if kind == BLOCK_COMMENT:
            i = _skip_block_comment(sql, i)
            continue
        c = sql[i]
        if c in WHITESPACE:  # at the end of the text
            i = end
            continue
        if start is None:
            if c == ';':
                i = end
                continue
            start = i
        if kind == INERT:
            i = end
        elif c == ';':
            if paren_depth == 0 and begin_depth == 0:
                line += sql.count('\n', line_pos, start)
                line_pos = start
                statements.append(Statement(sql[start:i].strip(), line, tuple(words), not std))
                start, words, routine, all_words, paren_depth, begin_depth = None, [], False, False, 0, 0
                i = end
                switched = standard_strings_switch(statements[-1], transactional)
                if switched is not None:
                    # psql reads the rest of the line as before and the server as after: only a
                    # comment may follow on it, so that both read the file alike.
                    line_end = sql.find('\n', i)
                    rest = COMMENT_RE.sub('', sql[i : line_end if line_end >= 0 else n]).strip()
                    if rest and not rest.startswith('/*'):
                        raise ValueError(
                            'line %d: more SQL follows SET standard_conforming_strings on the same line, '
                            'which psql reads with the old setting and the server with the new one; '
                            'put it on a line of its own' % line
                        )
                    std = standard_strings if switched == 'DEFAULT' else switched
                if copy_stream(statements[-1]) == 'FROM STDIN':
                    # psql reads the rows that follow, up to a line \. (pg_dump's format): not SQL
                    data_end = COPY_DATA_END_RE.search(sql, i)
                    i = data_end.end() if data_end else n
            else:
                i = end
        elif c == "'":
            if prev_word_end == i and prev_word in ('E', 'e', 'B', 'b', 'X', 'x'):
                escapes = prev_word in ('E', 'e')  # bit strings never take backslash escapes
            elif i >= 2 and sql[i - 2 : i] in ('U&', 'u&') and (i < 3 or not re.match(_IDENT_CONT, sql[i - 3])):
                escapes = False
            else:
                escapes = not std
            i = _skip_quoted(sql, i, "'", escapes)
        elif c == '"':
            i = _skip_quoted(sql, i, '"', False)
        elif c == '$':
            tag = DOLLAR_TAG.match(sql, i)
            if tag is None:  # a positional parameter such as $1
                i = end
                continue
            close = sql.find(tag.group(), tag.end())
            if close < 0:
                raise ValueError('unterminated dollar-quoted string %s starting at line %d' % (tag.group(), _line_of(sql, i)))
            i = close + len(tag.group())
        elif c == '\\':
            raise meta_command(i)
        elif c == '(':
            paren_depth += 1
            i = end
        elif c == ')':
            paren_depth = max(0, paren_depth - 1)
            i = end
        else:
            i = end
    if start is not None:
        text = sql[start:].strip()
        if text:
            statements.append(Statement(text, line + sql.count('\n', line_pos, start), tuple(words), not std))
    return statements


def copy_stream(statement):
    """'FROM STDIN' or 'TO STDOUT' when the statement is a COPY that streams through the client, or None."""
    if not statement.words or statement.words[0] != 'COPY':
        return None
    w = list(statement.words)
    for direction, stream in (('FROM', 'STDIN'), ('TO', 'STDOUT')):
        if direction in w[:-1] and w[w.index(direction) + 1] == stream:
            return '%s %s' % (direction, stream)
    return None


def encoding_switch(statement):
    """The encoding a SET client_encoding / SET NAMES switches the session to when it is not UTF-8, or None."""
    if not statement.words or statement.words[0] != 'SET':
        return None
    m = CLIENT_ENCODING_SET_RE.match(COMMENT_RE.sub(' ', statement.text))
    if not m:
        return None
    value = m.group(1)
    if value.upper().replace('-', '').replace('_', '') in ('UTF8', 'UNICODE', 'DEFAULT', ''):
        return None
    return value


def standard_strings_switch(statement, transactional):
    """What a SET or RESET of standard_conforming_strings sets it to: True (on), False (off),
    'DEFAULT' (the session's own value), or None when the statement does not change it."""
    if not statement.words or statement.words[0] not in ('SET', 'RESET'):
        return None
    text = COMMENT_RE.sub(' ', statement.text)
    if statement.words[0] == 'RESET':
        return 'DEFAULT' if STANDARD_STRINGS_RESET_RE.match(text) else None
    m = STANDARD_STRINGS_SET_RE.match(text)
    if not m or ((m.group(1) or '').upper() == 'LOCAL' and not transactional):
        return None
    value = m.group(2).lower()
    if value == 'default':
        return 'DEFAULT'
    if value and (value == 'on' or value == '1' or 'true'.startswith(value) or 'yes'.startswith(value)):
        return True
    if value and (value in ('of', 'off', '0') or 'false'.startswith(value) or 'no'.startswith(value)):
        return False
    return None  # the server refuses the value: the run stops there


def standard_strings_change(statement):
    """Whether a statement changes standard_conforming_strings in a way the splitter cannot follow
    (set_config, dynamic SQL): psql would read the lines after it otherwise than the module."""
    if 'standard_conforming_strings' not in statement.text.lower() or not statement.words:
        return False
    if statement.words[0] in ('SET', 'RESET', 'SHOW', 'ALTER'):  # ALTER DATABASE/ROLE: for later sessions
        return False
    return bool(re.search(r'set_config|\bset\b|\breset\b', statement.text, re.IGNORECASE))


def transaction_control(statement):
    """Name the transaction-control command a statement is, or None."""
    w = list(statement.words[:3])
    if not w:
        return None
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
    w = list(statement.words[:3]) + ['', '']
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
    w = list(statement.words) + ['', '', '']
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
    if w[0] == 'ALTER' and 'DETACH' in w and w[len(statement.words) - 1] == 'CONCURRENTLY':
        return 'DETACH PARTITION CONCURRENTLY'
    if w[0] in ('CREATE', 'DROP') and w[1] in ('DATABASE', 'TABLESPACE'):
        return '%s %s' % (w[0], w[1])
    if w[0] == 'ALTER' and w[1] == 'SYSTEM':
        return 'ALTER SYSTEM'
    return None


def read_migration(filename, raw, max_size):
    """A Migration from a file name and its bytes: name, size, encoding and checksum checked.

    Statements are split later (analyze_migration), only for files that will run.
    """
    m = FILENAME_RE.match(filename)
    if not m:
        raise MigrationError(['%s: the name does not match NNN_description.sql' % filename])
    if len(raw) > max_size:
        raise MigrationError(['%s: %d bytes is larger than max_file_size (%d)' % (filename, len(raw), max_size)])
    try:
        text = raw.decode('utf-8')
    except UnicodeDecodeError as e:
        line = raw[: e.start].replace(b'\r\n', b'\n').replace(b'\r', b'\n').count(b'\n') + 1
        raise MigrationError(['%s: not valid UTF-8 (byte 0x%02x at line %d); save the file as UTF-8' % (filename, raw[e.start], line)])
    sql = normalize_sql(text)
    if '\x00' in sql:
        raise MigrationError(['%s: contains a NUL byte; save the file as UTF-8 text' % filename])
    transactional = not NO_TRANSACTION_RE.search(HEADER_RE.match(sql).group())
    return Migration(m.group('version'), m.group('name'), filename, sql, checksum_of(sql), None, transactional)


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


PATH_HINT = 'point path at the directory that holds the NNN_description.sql files'


def list_entries(path):
    """The entries of path, hidden ones left out, by name; MigrationError if it cannot be listed."""
    try:
        with os.scandir(path) as listing:
            return sorted((e for e in listing if not e.name.startswith('.')), key=lambda e: e.name)
    except FileNotFoundError:
        raise MigrationError(['%s does not exist (a dangling link counts as missing): %s' % (path, PATH_HINT)])
    except NotADirectoryError:
        raise MigrationError(['%s is not a directory: %s' % (path, PATH_HINT)])
    except OSError as e:  # EACCES on it or on a parent directory; ELOOP
        if e.errno == errno.ELOOP:
            raise MigrationError(['%s is a symbolic link that loops: %s' % (path, PATH_HINT)])
        raise MigrationError(
            [
                '%s cannot be listed as %s (%s); give that user read and search permission on it '
                'and search permission on its parent directories' % (path, os_user(), e.strerror or e)
            ]
        )


def shown_name(name):
    """A file name fit for a message: bytes that are not UTF-8 (kept by os as surrogates) as \\xNN."""
    try:
        name.encode('utf-8')
        return name
    except UnicodeEncodeError:
        return name.encode('utf-8', 'surrogateescape').decode('utf-8', 'backslashreplace')


def link_problem(entry, name, error):
    """What is wrong with an entry that cannot be followed (os.stat failed), as a person reads it."""
    try:
        target = shown_name(os.readlink(entry.path)) if entry.is_symlink() else None
    except OSError:
        target = None
    if target is not None and error.errno == errno.ELOOP:
        return '%s: a symbolic link to %s that loops back on itself; point it at a file or remove it' % (name, target)
    if target is not None and error.errno in (errno.ENOENT, errno.ENOTDIR):
        return '%s: a symbolic link to %s, which does not exist; point it at a file or remove it' % (name, target)
    return '%s: cannot be read (%s)' % (name, error.strerror or error)


def read_file(path, max_size):
    """(size, bytes) of a file; bytes is None when it is larger than max_size, which is then not read.

    os.read rather than open(): a thousand files are read on every run, no-op and check included,
    and the file object's machinery costs more than the read itself.
    """
    fd = os.open(path, os.O_RDONLY)
    try:
        size = os.fstat(fd).st_size
        if size > max_size:
            return size, None
        chunks, wanted = [], size + 1  # one byte more than the size: read_migration sees a file that grew
        while wanted > 0:
            chunk = os.read(fd, wanted)
            if not chunk:
                break
            chunks.append(chunk)
            wanted -= len(chunk)
        return size, b''.join(chunks)
    finally:
        os.close(fd)


def discover_migrations(path, max_size):
    """Read and check every migration file in path; return them in version order.

    Raises MigrationError listing every problem found, before anything is written: one bad entry
    never hides another, and no OSError escapes. Statements are not split yet: the module splits
    only the files it will run (analyze_migrations), since an applied file never runs again.
    """
    root = os.path.realpath(path)
    problems = []
    by_number = {}
    for entry in list_entries(path):
        if not entry.name.lower().endswith('.sql'):
            continue  # README.md, subdirectories: not ours (describe_path names them when nothing else is there)
        filename = shown_name(entry.name)
        if filename != entry.name:
            problems.append('%s: the name is not valid UTF-8; rename the file' % filename)
            continue
        if entry.is_symlink():  # only a link can loop, dangle or lead out of the directory
            try:
                mode = os.stat(entry.path).st_mode
            except OSError as e:
                problems.append(link_problem(entry, filename, e))
                continue
            real = os.path.realpath(entry.path)
            if os.path.commonpath([root, real]) != root:
                problems.append('%s: a symbolic link to %s, outside the migrations directory' % (filename, real))
                continue
            is_dir, is_file = stat.S_ISDIR(mode), stat.S_ISREG(mode)
        else:  # the type the listing gave: no system call for each of a thousand files
            is_dir, is_file = entry.is_dir(follow_symlinks=False), entry.is_file(follow_symlinks=False)
        if is_dir:
            problems.append('%s: a directory, not a file; migrations are NNN_description.sql files directly in path: rename it or move it out' % filename)
            continue
        if not is_file:  # a FIFO or a device: reading would hang
            problems.append('%s: not a regular file' % filename)
            continue
        try:
            size, raw = read_file(entry.path, max_size)
            if raw is None:
                problems.append('%s: %d bytes is larger than max_file_size (%d)' % (filename, size, max_size))
                continue
        except (IOError, OSError) as e:
            problems.append('%s: cannot be read (%s)' % (filename, e.strerror or e))
            continue
        try:
            mig = read_migration(filename, raw, max_size)
        except MigrationError as e:
            problems.extend(e.problems)
            continue
        if mig.number in by_number:
            problems.append('%s and %s: duplicate version %d' % (by_number[mig.number].filename, filename, mig.number))
            continue
        by_number[mig.number] = mig
    if problems:
        raise MigrationError(problems)
    return [by_number[k] for k in sorted(by_number)]


# A directory of another tool's layout: <timestamp>_<name>/up.sql (diesel, sqlx's reversible
# migrations, some Go tools) and the name it would have here.
UP_SQL_NAMES = ('up.sql', 'migration.sql')
LEADING_STAMP_RE = re.compile(r'^[0-9][0-9_.-]*')


def _names(items, limit=5):
    items = sorted(items)
    shown = ', '.join(items[:limit])
    return shown + (' and %d more' % (len(items) - limit) if len(items) > limit else '')


def _subdirectory_files(path):
    """Names of the regular files and links in a subdirectory; empty when it cannot be listed."""
    try:
        with os.scandir(path) as listing:
            return [e.name for e in listing if not e.name.startswith('.')]
    except OSError:
        return []


def describe_path(path):
    """What a directory without any migration file holds, in words, and what to do about it.

    An empty or wrong path once applied nothing and reported success while the migrations
    silently never ran: the caller turns this into an error unless allow_empty is set.
    """
    try:
        entries = list_entries(path)
    except MigrationError as e:
        return e.problems[0]
    foreign, nested, other_dirs, other_files = [], [], [], []
    for entry in entries:
        name = shown_name(entry.name)
        try:
            is_dir = entry.is_dir()
        except OSError:
            is_dir = False
        if not is_dir:
            other_files.append(name)
            continue
        inside = _subdirectory_files(entry.path)
        up = [f for f in inside if f.lower() in UP_SQL_NAMES]
        if up:
            foreign.append('%s/%s' % (name, up[0]))
        elif any(FILENAME_RE.match(f) for f in inside):
            nested.append(name)
        else:
            other_dirs.append(name)
    found, todo = [], []
    if foreign:
        found.append(
            '%d subfolder%s with an up.sql (%s), the layout of diesel and similar tools' % (len(foreign), '' if len(foreign) == 1 else 's', _names(foreign))
        )
        example = LEADING_STAMP_RE.sub('', foreign[0].split('/')[0]).strip('_-.') or 'name'
        todo.append(
            'this tool applies NNN_description.sql files placed directly in path, each in one '
            'transaction: copy each up.sql there under such a name, in the order they ran (for '
            'example %s/%s -> 001_%s.sql)' % (foreign[0].split('/')[0], foreign[0].split('/')[1], re.sub(r'[^A-Za-z0-9_-]', '_', example))
        )
    if nested:
        found.append('subfolder%s holding NNN_description.sql files: %s' % ('' if len(nested) == 1 else 's', _names(nested)))
        todo.append('point path at the subfolder that holds them (for example %s)' % os.path.join(path, nested[0]))
    if other_dirs:
        found.append('other subfolders: %s' % _names(other_dirs))
    if other_files:
        found.append('other files: %s' % _names(other_files))
    if not todo:
        todo.append(PATH_HINT)
    return (
        '%s holds no migration file (NNN_description.sql, directly in it): %s. Nothing was applied; %s. '
        'If a directory without migrations is expected here, set allow_empty: true'
        % (path, '; '.join(found) if found else 'it is empty' + (' but for hidden entries' if _has_hidden(path) else ''), '; '.join(todo))
    )


def _has_hidden(path):
    try:
        with os.scandir(path) as listing:
            return any(e.name.startswith('.') for e in listing)
    except OSError:
        return False


# ---------------------------------------------------------------------------
# Planning (pure)
# ---------------------------------------------------------------------------

# ASCII digits only: str.isdigit, int() and \\d also take '²' and '١', which no file name can hold.
VERSION_RE = re.compile(r'[0-9]+')
VERSION_RULE = 'a version is the digits 0-9 of a migration file name, for example "014"'


def version_number(text):
    """Numeric value of a version string, or None when it is not ASCII digits 0-9 only."""
    text = str(text).strip(WHITESPACE)
    return int(text) if VERSION_RE.fullmatch(text) else None


def new_entry(mig):
    return dict(
        version=mig.version,
        name=mig.name,
        file=mig.filename,
        checksum=mig.checksum,
        transactional=mig.transactional,
        status='pending',
        changed=False,
        duration_ms=None,
        applied_at=None,
        adopted=False,
        checksum_accepted=False,
        drift=False,
        message='',
    )


def plan_migrations(migrations, history, incomplete, target_version=None, allow_out_of_order=False, accept_checksums=(), retry_incomplete=()):
    """Decide what to do with each migration; never touches the database.

    history: {number: {'version', 'name', 'checksum', 'applied_at'}} of recorded versions.
    incomplete: {number: {'version', 'started_at', 'error', ...}} of interrupted no-transaction runs.
    Returns dict(entries, to_apply, adopt, accept, missing, problems, warnings).
    """
    problems, warnings = [], []
    accept = set(version_number(v) for v in accept_checksums)
    retry = set(version_number(v) for v in retry_incomplete)
    numbers = set(m.number for m in migrations)
    target = None
    if target_version not in (None, ''):
        target = version_number(target_version)
        if target is None or target not in numbers:
            problems.append(
                'target_version %s does not match any migration file (versions: %s)' % (target_version, ', '.join(m.version for m in migrations) or 'none')
            )
    for label, values in (('accept_checksums', accept_checksums), ('retry_incomplete', retry_incomplete)):
        problems.extend(bad_versions(label, values))
    highest_recorded = max(history) if history else None

    entries, to_apply, adopt, accepted = [], [], [], []
    for mig in migrations:
        entry = new_entry(mig)
        entries.append(entry)
        # Before the history: a no-transaction file may have written its own row before it stopped.
        if mig.number in incomplete and mig.number not in retry:
            info = incomplete[mig.number]
            entry['message'] = 'left incomplete by an earlier run (started %s%s)' % (
                info.get('started_at'),
                ', error: %s' % info['error'] if info.get('error') else '',
            )
            problems.append(
                '%s is a no-transaction migration that an earlier run left incomplete (started %s by %s%s). '
                'Some of its statements may have run. Inspect the database (for an interrupted CREATE INDEX '
                'CONCURRENTLY: SELECT indexrelid::regclass FROM pg_index WHERE NOT indisvalid; drop the '
                'invalid index), then rerun with retry_incomplete: ["%s"]'
                % (
                    mig.filename,
                    info.get('started_at'),
                    info.get('started_by') or 'unknown',
                    ', error: %s' % info['error'] if info.get('error') else ', the run was interrupted',
                    mig.version,
                )
            )
            continue
        row = None if mig.number in incomplete else history.get(mig.number)  # retried: runs again
        if row is not None:
            entry['status'] = 'already_applied'
            entry['applied_at'] = row.get('applied_at')
            recorded = row.get('checksum')
            if not recorded:
                entry['adopted'] = True
                adopt.append(mig)
            elif recorded != mig.checksum:
                if mig.number in accept:
                    entry['checksum_accepted'] = True
                    accepted.append(mig)
                else:
                    entry['drift'] = True
                    entry['message'] = 'file changed since it was applied (recorded checksum %s)' % recorded[:12]
            continue
        if target is not None and mig.number > target:
            entry['status'] = 'skipped'
            entry['message'] = 'beyond target_version %s' % target_version
            continue
        if highest_recorded is not None and mig.number < highest_recorded and not allow_out_of_order:
            entry['message'] = 'out of order: lower than the highest applied version'
            problems.append(
                '%s is pending but version %s is already applied: applying it out of order could '
                'run it against a newer schema than it was written for. Renumber it above %s, or '
                'set allow_out_of_order: true if it is safe' % (mig.filename, history[highest_recorded]['version'], history[highest_recorded]['version'])
            )
            continue
        to_apply.append(mig)

    drifted = [e for e in entries if e['drift']]
    if drifted:
        problems.append(
            'applied migrations changed on disk: %s. An applied migration is never run again: '
            'restore the file as it was applied and put the change in a new migration, or, if '
            'the edit is deliberate and harmless, rerun with accept_checksums: [%s]'
            % (', '.join(e['file'] for e in drifted), ', '.join('"%s"' % e['version'] for e in drifted))
        )
    for label, wanted, used in (('accept_checksums', accept, set(m.number for m in accepted)), ('retry_incomplete', retry, set(n for n in incomplete))):
        unused = sorted(n for n in wanted if n is not None and n not in used)
        if unused:
            warnings.append(
                '%s lists %s, which %s' % (label, ', '.join(str(n) for n in unused), 'did not change' if label == 'accept_checksums' else 'is not incomplete')
            )
    if target is not None and highest_recorded is not None and target < highest_recorded:
        warnings.append(
            'target_version %s is below the highest applied version %s; migrations are never '
            'rolled back' % (target_version, history[highest_recorded]['version'])
        )

    missing = [history[n]['version'] for n in sorted(history) if n not in numbers]
    if missing:
        warnings.append('versions recorded in the history table have no file in the migrations directory: %s' % ', '.join(missing))
    return dict(entries=entries, to_apply=to_apply, adopt=adopt, accept=accepted, missing=missing, problems=problems, warnings=warnings)


def versions_too_wide(migrations, width):
    """Problems for pending versions longer than the history table's version column (None: no limit)."""
    too_wide = [m.version for m in migrations if width is not None and len(m.version) > width]
    if not too_wide:
        return []
    return [
        'versions %s have more than the %d characters the history table\'s version column holds; widen '
        'it in a migration of its own (ALTER TABLE ... ALTER COLUMN version TYPE varchar(50)) or keep '
        'version numbers short' % (', '.join(too_wide), width)
    ]


def error_line(statement, position):
    """Line in the file of a server error: statement start plus the position inside it."""
    if not position:
        return statement.line
    try:
        offset = int(position) - 1
    except (TypeError, ValueError):
        return statement.line
    return statement.line + statement.text.count('\n', 0, max(0, offset))


def invalid_indexes_before_retry(db, migrations):
    """Problems for retried no-transaction files that name an index an earlier failed build left
    invalid: the retry cannot succeed (IF NOT EXISTS skips the index and the module then refuses to
    record the file; without it, the CREATE fails), so it is refused before anything runs, and the
    dry run says so too. A partitioned index is left out (a retry may still attach its partitions),
    and so is a file that sets search_path, whose names only its own session resolves."""
    problems = []
    for mig in migrations:
        if 'search_path' in mig.sql.lower():
            continue
        for statement in mig.statements:
            target = index_targets(statement)
            if not target or target['kind'] != 'create' or target['index'] is None:
                continue
            try:
                name = db.value(
                    "SELECT format('%%I.%%I', n.nspname, c.relname) AS v FROM pg_catalog.pg_class c "
                    "JOIN pg_catalog.pg_index i ON i.indexrelid = c.oid "
                    "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
                    "WHERE NOT i.indisvalid AND c.relkind = 'i' AND c.relname = %s AND c.relnamespace = "
                    "(SELECT relnamespace FROM pg_catalog.pg_class WHERE oid = to_regclass(%s))",
                    (target['index'], regclass_text(target['table'])),
                )
            except SqlFailure:
                continue  # a name the server cannot resolve: the statement will say so
            if name:
                problems.append(
                    '%s line %d: index %s is invalid, left by an earlier failed build; the retry would keep it '
                    '(IF NOT EXISTS) or fail on it, and an invalid index enforces nothing. Drop it with DROP INDEX '
                    'CONCURRENTLY %s; and fix what made the build fail (for a unique index, the duplicate rows), '
                    'then rerun with retry_incomplete: ["%s"]' % (mig.filename, statement.line, name, name, mig.version)
                )
    return problems


def default_lock_key(table):
    """Stable 63-bit advisory lock key for a history table."""
    if table.startswith('public.'):  # the same table, so the same lock
        table = table[len('public.') :]
    digest = hashlib.sha256(('postgresql_migrate:' + table).encode('utf-8')).digest()
    return int.from_bytes(digest[:8], 'big') & 0x7FFFFFFFFFFFFFFF


def incomplete_table_name(table):
    return table + '_incomplete'


def summarize(entries):
    counts = dict((s, 0) for s in STATUSES)
    for e in entries:
        counts[e['status']] = counts.get(e['status'], 0) + 1
    return counts


def build_diff(entries, migrations_by_file, check_mode):
    """Ansible diff entries showing the SQL of every applied (or would-be applied) migration."""
    diffs = []
    for e in entries:
        if e['status'] in ('applied', 'would_apply'):
            diffs.append(
                dict(
                    before_header='%s (not applied)' % e['file'],
                    after_header='%s (%s)' % (e['file'], 'would apply' if check_mode else 'applied'),
                    before='',
                    after=redact_file(migrations_by_file[e['file']]),
                )
            )
    return diffs


# ---------------------------------------------------------------------------
# Database (thin wrappers over a psycopg2 / psycopg 3 cursor)
# ---------------------------------------------------------------------------


class SqlFailure(Exception):
    """A database error with what a person needs to act on it."""

    def __init__(self, exc, connection_closed=True, query=None):
        diag = getattr(exc, 'diag', None)
        self.connection_closed = connection_closed
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
        self.position = int(position) if position and VERSION_RE.fullmatch(str(position)) else None
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


def qualified_table(db, table_sql):
    """table_sql with its schema: where the table is now, else where CREATE TABLE would put it.

    The module's own statements then reach the same table whatever search_path a migration sets.
    """
    if '"."' in table_sql:  # pg_quote_identifier's form of schema.table
        return table_sql
    return db.value(
        "SELECT coalesce((SELECT format('%%I.%%I', n.nspname, c.relname) FROM pg_catalog.pg_class c "
        "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = to_regclass(%s)), "
        "quote_ident(current_schema()) || '.' || %s, %s) AS v",
        (table_sql, table_sql, table_sql),
    )


def table_columns(db, table_sql):
    """{column: how many characters it holds (varchar(n), char(n)) or None} of the table, or None
    when it does not exist; one query."""
    rows = db.rows(
        "SELECT t.oid IS NOT NULL AS found, a.attname, CASE WHEN a.atttypid IN "
        "('varchar'::regtype, 'bpchar'::regtype) AND a.atttypmod > 4 THEN a.atttypmod - 4 END AS width "
        "FROM (SELECT to_regclass(%s) AS oid) t LEFT JOIN pg_catalog.pg_attribute a "
        "ON a.attrelid = t.oid AND a.attnum > 0 AND NOT a.attisdropped",
        (table_sql,),
    )
    if not rows[0]['found']:
        return None
    return dict((r['attname'], r['width']) for r in rows if r['attname'] is not None)


def read_history(db, table_sql):
    """{number: row} of recorded versions; TaskFailure naming the rows whose version is not digits 0-9."""
    columns = table_columns(db, table_sql)
    if columns is None:
        return {}, None
    if 'version' not in columns or 'name' not in columns:
        raise MigrationError([foreign_history_table(table_sql, table_column_types(db, table_sql))])
    checksum = 'checksum' if 'checksum' in columns else 'NULL'
    applied_at = 'applied_at::text' if 'applied_at' in columns else 'NULL'
    history, bad = {}, []
    for r in db.rows('SELECT version::text AS version, name, %s AS checksum, %s AS applied_at FROM %s' % (checksum, applied_at, table_sql)):
        number = version_number(r['version'])
        if number is None:
            bad.append(r)
            continue
        history[number] = dict(version=r['version'].strip(WHITESPACE), name=r['name'], checksum=r['checksum'], applied_at=r['applied_at'])
    if bad:
        raise TaskFailure(bad_history_rows(table_sql, bad))
    return history, columns


# Other tools' history tables, by the columns that tell them apart (all must be there).
FOREIGN_HISTORY_TABLES = (
    ({'installed_rank', 'version', 'script', 'success'}, 'Flyway\'s (flyway_schema_history)'),
    ({'version', 'dirty'}, 'golang-migrate\'s'),
    ({'version_id', 'is_applied'}, 'goose\'s (goose_db_version)'),
    ({'version', 'description', 'installed_on', 'success', 'checksum'}, 'sqlx\'s (_sqlx_migrations)'),
    ({'version', 'run_on'}, 'diesel\'s (__diesel_schema_migrations)'),
    ({'version_num'}, 'Alembic\'s (alembic_version)'),
    ({'id', 'author', 'filename', 'md5sum'}, 'Liquibase\'s (databasechangelog)'),
    ({'migration_name', 'finished_at', 'applied_steps_count'}, 'Prisma\'s (_prisma_migrations)'),
    ({'app', 'name', 'applied'}, 'Django\'s (django_migrations)'),
    ({'name', 'batch', 'migration_time'}, 'Knex\'s (knex_migrations)'),
    ({'version', 'migration_name', 'start_time'}, 'Phinx\'s (phinxlog)'),
)


def table_column_types(db, table_sql):
    """[(column, type)] of an existing table, in column order."""
    return [
        (r['attname'], r['type'])
        for r in db.rows(
            "SELECT a.attname, format_type(a.atttypid, a.atttypmod) AS type FROM pg_catalog.pg_attribute a "
            "WHERE a.attrelid = to_regclass(%s) AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
            (table_sql,),
        )
    ]


def foreign_history_table(table_sql, column_types):
    """Why a history table that lacks version or name cannot be ours: the columns it has, the tool
    it looks like, and what to do."""
    names = set(c for c, _ in column_types)
    lacking = [c for c in ('version', 'name') if c not in names]
    tool = next((label for wanted, label in FOREIGN_HISTORY_TABLES if wanted <= names), None)
    if tool is None and names == {'version'}:
        tool = 'Rails\' or dbmate\'s'  # both keep a lone version column in schema_migrations
    return (
        'the history table %s exists but is not one this tool can use: its columns are %s, without %s. '
        '%s. Nothing was applied. Give this tool a history table of its own with the table option (the '
        'role variable db_deploy_table), for example table: st44_schema_migrations; or, if the table is not '
        'needed where it is, rename or move it (ALTER TABLE %s RENAME TO ..., or SET SCHEMA ...)'
        % (
            table_sql,
            ', '.join('%s %s' % ct for ct in column_types) or 'none',
            ' or '.join(lacking),
            'It looks like %s history table, which this tool must not write to' % tool if tool else 'Another tool probably keeps it',
            table_sql,
        )
    )


def bad_history_rows(table_sql, rows):
    """The message for history rows whose version is not a version: the module cannot tell which
    file they record, so it cannot tell what is applied."""
    listed = ', '.join('version %r (name %r)' % (r['version'], r['name']) for r in rows[:10])
    return (
        'nothing was applied: the history table %s holds %d row%s whose version is not digits 0-9: %s%s. '
        'The module cannot tell which migration %s; %s. Correct the version to the digits of its file, '
        'or delete the row if it records nothing (DELETE FROM %s WHERE version = \'...\'), then rerun'
        % (
            table_sql,
            len(rows),
            '' if len(rows) == 1 else 's',
            listed,
            ' and more' if len(rows) > 10 else '',
            'it records' if len(rows) == 1 else 'they record',
            VERSION_RULE,
            table_sql,
        )
    )


def read_incomplete(db, table_sql):
    if db.value('SELECT to_regclass(%s)::oid AS v', (table_sql,)) is None:
        return {}
    result = {}
    for r in db.rows('SELECT version, started_at::text AS started_at, started_by, error FROM %s' % table_sql):
        number = version_number(r['version'])
        if number is not None:
            result[number] = dict(version=r['version'], started_at=r['started_at'], started_by=r['started_by'], error=r['error'])
    return result


def ensure_history_table(db, table_sql, columns):
    """Create the history table if no migration did, and add our columns when missing."""
    if columns is None:
        db.run(
            'CREATE TABLE IF NOT EXISTS %s (version varchar(50) PRIMARY KEY, name varchar(255) NOT NULL, '
            'applied_at timestamptz NOT NULL DEFAULT now())' % table_sql
        )
        columns = dict(version=50, name=255, applied_at=None)
    missing = [(c, t) for c, t in HISTORY_EXTRA_COLUMNS if c not in columns]
    if missing:
        db.run('ALTER TABLE %s %s' % (table_sql, ', '.join('ADD COLUMN IF NOT EXISTS %s %s' % ct for ct in missing)))
    return dict(columns, **dict((c, None) for c, _ in HISTORY_EXTRA_COLUMNS))


RECORD_STATEMENT = 'postgresql_migrate_record'
# The function that releases every advisory lock of the session, the run's own included.
UNLOCK_ALL = 'pg_advisory_unlock_all'
# A no-transaction file that failed before its incomplete marker was written.
NOTHING_RAN = 'none of its statements ran'


def prepare_record_version(db, table_sql):
    """Prepare, once per session, the statement that writes a history row.

    The file may have inserted a bare row itself, so it updates the row when present and inserts
    one otherwise; no unique constraint is needed (the advisory lock keeps other runs out).
    """
    db.run(
        'PREPARE {p} (text, text, text, text, integer) AS '
        'WITH updated AS (UPDATE {t} SET name = $2, applied_at = now(), checksum = $3, applied_by = $4, '
        'execution_ms = $5 WHERE version = $1 RETURNING 1) '
        'INSERT INTO {t} (version, name, applied_at, checksum, applied_by, execution_ms) '
        'SELECT $1, $2, now(), $3, $4, $5 WHERE NOT EXISTS (SELECT 1 FROM updated)'.format(p=RECORD_STATEMENT, t=table_sql)
    )


def with_params(prefix, query):
    """prefix (SQL that may hold a quoted name with %) put before a query that takes parameters."""
    return prefix.replace('%', '%%') + query


def record_version_and_commit(db, mig, applied_by, execution_ms, prefix=''):
    """Write the history row and commit, in one round trip; prefix goes first (SET LOCAL ROLE)."""
    db.run(
        with_params(prefix, 'EXECUTE {p} (%s, %s, %s, %s, %s); COMMIT'.format(p=RECORD_STATEMENT)),
        (mig.version, mig.name, mig.checksum, applied_by, execution_ms),
    )


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


# ---------------------------------------------------------------------------
# Indexes a no-transaction file builds or relies on (pure parsing)
# ---------------------------------------------------------------------------

# A name or keyword, a "quoted identifier", a dot, or one other character; after whitespace and
# comments (nested /* */ are rare in a statement's head and end the parse at worst).
NAME_TOKEN_RE = re.compile(r'(?:\s+|--[^\n]*|/\*.*?\*/)*(?:("(?:[^"]|"")*")|(' + _IDENT + r')|(\S))', re.DOTALL)


def name_tokens(text, limit=40):
    """The first tokens of a statement: ('word', ASCII-lowered as the server folds it, upper-cased),
    ('ident', exact text of a quoted name, None) or ('char', c, None)."""
    tokens, pos = [], 0
    while len(tokens) < limit:
        m = NAME_TOKEN_RE.match(text, pos)
        if m is None:
            break
        pos = m.end()
        if m.group(1):
            tokens.append(('ident', m.group(1)[1:-1].replace('""', '"'), None))
        elif m.group(2):
            word = m.group(2)
            tokens.append(('word', word.translate(_ASCII_LOWER), word.upper()))
        else:
            tokens.append(('char', m.group(3), None))
    return tokens


_ASCII_LOWER = dict((c, c + 32) for c in range(65, 91))


def _qualified_name(tokens, i):
    """(parts, next index) of a possibly qualified name at tokens[i], or (None, i)."""
    parts = []
    while i < len(tokens) and tokens[i][0] in ('word', 'ident'):
        parts.append(tokens[i][1])
        if i + 1 < len(tokens) and tokens[i + 1][:2] == ('char', '.'):
            i += 2
            continue
        return parts, i + 1
    return (parts or None), i


def regclass_text(parts):
    """A name for to_regclass that means exactly these parts: each one quoted."""
    return '.'.join('"%s"' % p.replace('"', '""') for p in parts)


def index_targets(statement):
    """What of the catalog a statement builds or relies on that a failure can leave invalid:
    a dict with kind 'create' (index: name or None, table: parts), 'reindex' (what: INDEX, TABLE,
    SCHEMA, DATABASE or SYSTEM; name: parts), 'attach' (index: parts of the parent index), or None.

    CREATE [UNIQUE] INDEX [CONCURRENTLY] [IF NOT EXISTS] [name] ON [ONLY] table;
    REINDEX [(options)] what CONCURRENTLY name; ALTER INDEX [IF EXISTS] name ATTACH PARTITION child.
    """
    words = statement.words
    if not words or words[0] not in ('CREATE', 'REINDEX', 'ALTER'):
        return None
    tokens = name_tokens(statement.text)
    keys = [t[2] for t in tokens]  # upper-cased words, None for other tokens
    i = 1
    if keys[0] == 'CREATE':
        if keys[i : i + 1] == ['UNIQUE']:
            i += 1
        if keys[i : i + 1] != ['INDEX']:
            return None
        i += 1
        if keys[i : i + 1] == ['CONCURRENTLY']:
            i += 1
        if keys[i : i + 3] == ['IF', 'NOT', 'EXISTS']:
            i += 3
        name = None
        if keys[i : i + 1] != ['ON'] and i < len(tokens) and tokens[i][0] in ('word', 'ident'):
            name, i = tokens[i][1], i + 1
        if keys[i : i + 1] != ['ON']:
            return None
        i += 1
        if keys[i : i + 1] == ['ONLY']:
            i += 1
        table, i = _qualified_name(tokens, i)
        return dict(kind='create', index=name, table=table) if table else None
    if keys[0] == 'REINDEX':
        if 'CONCURRENTLY' not in words[:4]:
            return None  # a plain REINDEX runs as one transaction: it leaves nothing invalid
        if keys[i : i + 1] == [None] and tokens[i][1] == '(':
            while i < len(tokens) and tokens[i][:2] != ('char', ')'):
                i += 1
            i += 1
        if i >= len(keys) or keys[i] not in ('INDEX', 'TABLE', 'SCHEMA', 'DATABASE', 'SYSTEM'):
            return None
        what, i = keys[i], i + 1
        if keys[i : i + 1] == ['CONCURRENTLY']:
            i += 1
        name, i = _qualified_name(tokens, i)
        return dict(kind='reindex', what=what, name=name)
    if keys[0] == 'ALTER' and keys[i : i + 1] == ['INDEX']:
        i += 1
        if keys[i : i + 2] == ['IF', 'EXISTS']:
            i += 2
        name, i = _qualified_name(tokens, i)
        if name and keys[i : i + 2] == ['ATTACH', 'PARTITION']:
            return dict(kind='attach', index=name)
    return None


# The scopes of index_scopes: which invalid indexes concern a statement.
SCOPE_INDEX, SCOPE_TABLE, SCOPE_LEFTOVERS_OF_TABLE, SCOPE_LEFTOVERS_IN_SCHEMA, SCOPE_LEFTOVERS = range(5)
# What REINDEX CONCURRENTLY names the copy it builds (and the old index it swaps out): a failure
# leaves it behind, invalid.
CC_LEFTOVER_RE = '_cc(new|old)[0-9]*$'


# ---------------------------------------------------------------------------
# Applying
# ---------------------------------------------------------------------------


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
        check_columns = self.columns is None or not all(c in self.columns for c, _ in HISTORY_EXTRA_COLUMNS)
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
                note = self._invalid_indexes_note(statement)
                try:
                    error = e.describe(sentence=True) + '. ' + note if note else e.describe()
                    self._mark('error = %s', 'line %d: %s' % (error_line(statement, e.position), error), mig.version)
                except SqlFailure:
                    self.db.rollback_quietly()  # connection gone: the row without an error says "interrupted"
                raise ApplyFailure(mig, statement, e, note=note, progress=progress)
            # Resolved now, in the session the statement ran in (its search_path, its role).
            watched.extend((scope, oid, statement) for scope, oid in self._index_scopes(statement))
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

    def _index_scopes(self, statement):
        """[(scope, oid)] of what statement builds or relies on that a failure can leave invalid, with
        names resolved as the session resolves them now; [] when nothing (or a name no longer there)."""
        target = index_targets(statement)
        if target is None:
            return []
        kind = target['kind']
        try:
            if kind == 'create' and target['index'] is not None:
                # An index goes into its table's schema, whatever search_path says.
                rows = self.db.rows(
                    "SELECT %s AS scope, c.oid::bigint AS oid FROM pg_catalog.pg_class c WHERE c.relname = %s "
                    "AND c.relkind IN ('i', 'I') AND c.relnamespace = (SELECT relnamespace FROM pg_catalog.pg_class "
                    "WHERE oid = to_regclass(%s))",
                    (SCOPE_INDEX, target['index'], regclass_text(target['table'])),
                )
            elif kind == 'create':  # a name the server chooses: every index of the table
                rows = self.db.rows("SELECT %s AS scope, to_regclass(%s)::oid::bigint AS oid", (SCOPE_TABLE, regclass_text(target['table'])))
            elif kind == 'attach':
                rows = self.db.rows("SELECT %s AS scope, to_regclass(%s)::oid::bigint AS oid", (SCOPE_INDEX, regclass_text(target['index'])))
            elif target['what'] == 'INDEX' and target['name']:
                rows = self.db.rows(
                    "SELECT %s AS scope, i.indexrelid::bigint AS oid FROM pg_catalog.pg_index i "
                    "WHERE i.indexrelid = to_regclass(%s) UNION ALL SELECT %s, i.indrelid::bigint "
                    "FROM pg_catalog.pg_index i WHERE i.indexrelid = to_regclass(%s)",
                    (SCOPE_INDEX, regclass_text(target['name']), SCOPE_LEFTOVERS_OF_TABLE, regclass_text(target['name'])),
                )
            elif target['what'] == 'TABLE' and target['name']:
                rows = self.db.rows(
                    "SELECT %s AS scope, c.oid::bigint AS oid FROM pg_catalog.pg_class c WHERE c.oid = to_regclass(%s) "
                    "UNION ALL SELECT %s, c.reltoastrelid::bigint FROM pg_catalog.pg_class c "
                    "WHERE c.oid = to_regclass(%s) AND c.reltoastrelid <> 0",
                    (SCOPE_TABLE, regclass_text(target['name']), SCOPE_TABLE, regclass_text(target['name'])),
                )
            elif target['what'] == 'SCHEMA' and target['name']:
                rows = self.db.rows("SELECT %s AS scope, to_regnamespace(%s)::oid::bigint AS oid", (SCOPE_LEFTOVERS_IN_SCHEMA, regclass_text(target['name'])))
            else:  # DATABASE, SYSTEM
                rows = [dict(scope=SCOPE_LEFTOVERS, oid=0)]
        except SqlFailure:
            return []  # a name the server cannot resolve: the statement itself said so, or will
        return [(r['scope'], r['oid']) for r in rows if r['oid'] is not None]

    def _invalid_indexes(self, watched):
        """[(index row, statement)] of the invalid indexes among those watched, each with the first
        statement that concerns it; indexes another session is building right now are left out."""
        if not watched:
            return []

        def oids(*scopes):
            return '{%s}' % ','.join(str(oid) for scope, oid, _ in watched if scope in scopes)

        rows = self.db.rows(
            "SELECT format('%%I.%%I', n.nspname, c.relname) AS name, c.oid::bigint AS oid, "
            "i.indrelid::bigint AS tbl, c.relnamespace::bigint AS nsp, c.relkind::text AS kind, "
            "c.relname ~ %s AS leftover FROM pg_catalog.pg_index i "
            "JOIN pg_catalog.pg_class c ON c.oid = i.indexrelid JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
            "WHERE NOT i.indisvalid AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_stat_progress_create_index p "
            "WHERE p.relid = i.indrelid AND p.pid <> pg_backend_pid()) "
            "AND (c.oid = ANY (%s::oid[]) OR i.indrelid = ANY (%s::oid[]) OR (c.relname ~ %s AND "
            "(i.indrelid = ANY (%s::oid[]) OR c.relnamespace = ANY (%s::oid[]) OR %s))) ORDER BY 1",
            (
                CC_LEFTOVER_RE,
                oids(SCOPE_INDEX),
                oids(SCOPE_TABLE),
                CC_LEFTOVER_RE,
                oids(SCOPE_LEFTOVERS_OF_TABLE),
                oids(SCOPE_LEFTOVERS_IN_SCHEMA),
                any(scope == SCOPE_LEFTOVERS for scope, _, _ in watched),
            ),
        )
        found = []
        for row in rows:
            for scope, oid, statement in watched:
                if (
                    (scope == SCOPE_INDEX and oid == row['oid'])
                    or (scope == SCOPE_TABLE and oid == row['tbl'])
                    or (
                        row['leftover']
                        and (
                            scope == SCOPE_LEFTOVERS
                            or (scope == SCOPE_LEFTOVERS_OF_TABLE and oid == row['tbl'])
                            or (scope == SCOPE_LEFTOVERS_IN_SCHEMA and oid == row['nsp'])
                        )
                    )
                ):
                    found.append((row, statement))
                    break
        return found

    def _refuse_invalid_indexes(self, mig, watched):
        """Before a no-transaction file is recorded: every index its statements build or rely on must
        be valid. An invalid one enforces nothing (a unique index then accepts duplicates) and no
        query uses it; CREATE INDEX IF NOT EXISTS on a retry skips the invalid index an earlier
        failed build left, and would otherwise get the file recorded as applied."""
        try:
            invalid = self._invalid_indexes(watched)
        except SqlFailure as e:
            raise ApplyFailure(mig, None, e, during='checking that the indexes it built are valid', progress=NOT_RECORDED)
        if not invalid:
            return
        names = [row['name'] for row, _ in invalid]
        partitioned = [row['name'] for row, _ in invalid if row['kind'] == 'I']
        plain = [n for n in names if n not in partitioned]
        failure = ModuleCheck(
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
        hint = '%s%s; then rerun with retry_incomplete: ["%s"].' % (todo[0].upper(), todo[1:], mig.version)
        try:
            self._mark('error = %s', 'line %d: %s. %s' % (invalid[0][1].line, failure.message, hint), mig.version)
        except SqlFailure:
            self.db.rollback_quietly()
        raise ApplyFailure(mig, invalid[0][1], failure, progress=NOT_RECORDED, hint=hint)

    def _invalid_indexes_note(self, statement):
        """After a statement of a no-transaction file failed: the invalid indexes it built or relies
        on (not those of other statements), and what to do."""
        try:
            invalid = self._invalid_indexes([(scope, oid, statement) for scope, oid in self._index_scopes(statement)])
        except SqlFailure:
            return None
        if not invalid:
            return None
        names = [row['name'] for row, _ in invalid]
        listed = ', '.join(names[:10]) + (' and more' if len(names) > 10 else '')
        reason = needs_no_transaction(statement) or 'index build'
        return (
            'invalid %s left: %s. A failed %s (this attempt or an earlier one) leaves its new index invalid: drop '
            'it with %s before the retry (CREATE INDEX ... IF NOT EXISTS would keep an invalid one)'
            % ('index' if len(names) == 1 else 'indexes', listed, reason, ' '.join('DROP INDEX CONCURRENTLY %s;' % n for n in names[:10]))
        )


def kept_before(line, first=False, retried=False):
    """What stays of a no-transaction file stopped at the statement that starts at line."""
    if first:
        kept = 'it stopped at its first statement (line %s), so no statement of it completed in this run' % line
    else:
        kept = 'statements before line %s %s applied' % (line, 'ran again and stayed' if retried else 'stayed')
    if retried:
        kept += '; what an earlier run of it did stays as that run left it'
    return kept + '; it is marked incomplete and the next run explains how to retry it'


NOT_RECORDED = 'all its statements ran, but it is not recorded as applied; it stays marked incomplete and the next run explains how to retry it'


class ModuleCheck(SqlFailure):
    """A check of the module's own that stops a migration, in the shape of a server error."""

    def __init__(self, message):  # pylint: disable=super-init-not-called
        self.connection_closed = False
        self.sqlstate = self.detail = self.hint = self.context = self.position = None
        self.message = message
        Exception.__init__(self, message)


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


# ---------------------------------------------------------------------------
# Module
# ---------------------------------------------------------------------------


def argument_spec():
    spec = postgres_common_argument_spec()
    spec.update(
        path=dict(type='path'),
        db=dict(type='str', required=True, aliases=['login_db']),
        session_role=dict(type='str'),
        table=dict(type='str', default='schema_migrations'),
        target_version=dict(type='str'),
        allow_out_of_order=dict(type='bool', default=False),
        accept_checksums=dict(type='list', elements='str', default=[]),
        retry_incomplete=dict(type='list', elements='str', default=[]),
        lock_wait=dict(type='float', default=60),
        lock_key=dict(type='int', no_log=False),
        lock_timeout=dict(type='str', default='5s'),
        concurrent_lock_timeout=dict(type='str', default='15min'),
        lock_retries=dict(type='int', default=3),
        statement_timeout=dict(type='str'),
        applied_by=dict(type='str'),
        max_file_size=dict(type='int', default=50 * 1024 * 1024),
        allow_empty=dict(type='bool', default=False),
        option_prefix=dict(type='str', default=''),
        progress_file=dict(type='path', default=''),
        describe_schema=dict(type='bool', default=False),
    )
    return spec


def validate_params(params):
    problems = []
    if not params['db'].strip():
        problems.append('db is empty: name the database to migrate (with no name the driver would connect to a default database)')
    if params['path'] is not None and not params['path'].strip():
        problems.append('path is empty: give the directory of the migration files')
    if not TABLE_RE.fullmatch(params['table']):
        problems.append('table %r is not a plain identifier or schema.identifier (letters, digits, _; at most 52 characters for the table)' % params['table'])
    for name in ('lock_timeout', 'concurrent_lock_timeout', 'statement_timeout'):
        if params[name] is not None and not PG_INTERVAL_RE.fullmatch(params[name]):
            problems.append('%s %r is not a PostgreSQL duration such as 5s, 500ms or 0' % (name, params[name]))
    if not 0 <= params['lock_wait'] <= MAX_LOCK_WAIT:  # also refuses nan
        problems.append('lock_wait must be 0 to %d seconds, not %g' % (MAX_LOCK_WAIT, params['lock_wait']))
    if params['lock_retries'] < 0:
        problems.append('lock_retries must be 0 or more')
    if params['max_file_size'] <= 0:
        problems.append('max_file_size must be a positive number of bytes')
    if params['target_version'] not in (None, '') and version_number(params['target_version']) is None:
        problems.append('target_version %r is not a version number: %s' % (params['target_version'], VERSION_RULE))
    for label in ('accept_checksums', 'retry_incomplete'):
        problems.extend(bad_versions(label, params[label]))
    return problems


def bad_versions(label, values):
    """The problem with an option's list of versions, naming the values that are not versions."""
    bad = [v for v in values or () if version_number(v) is None]
    if not bad:
        return []
    return ['%s holds %s, not %s: %s' % (label, ', '.join(repr(v) for v in bad), 'a version number' if len(bad) == 1 else 'version numbers', VERSION_RULE)]


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


HINTED_OPTIONS = re.compile(
    r'(?<![\w.])(accept_checksums|retry_incomplete|allow_out_of_order|allow_empty|'
    r'target_version|max_file_size|lock_wait|lock_retries|login_host|login_port)(?!\w)'
)


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


class TaskFailure(Exception):
    """Ends the task: msg for the person reading it, extra keys for the result."""

    def __init__(self, msg, **extra):
        self.msg = msg
        self.extra = extra
        super(TaskFailure, self).__init__(msg)


def os_user():
    """The name of the OS user whose permissions apply; uid<N> without a passwd entry (containers)."""
    try:
        return pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        return 'uid%d' % os.geteuid()


def default_applied_by():
    return '%s@%s' % (os_user(), socket.gethostname())


def connect(module, params, applied_by):
    """One autocommit connection through community.postgresql's helpers."""
    conn_params = get_conn_params(module, params, warn_db_default=False)
    conn_params.setdefault('application_name', ('postgresql_migrate %s' % applied_by)[:63])
    # The files are UTF-8: the server converts them to the database's encoding, or names the
    # character it cannot store. Given at connect time, RESET ALL keeps it.
    conn_params['client_encoding'] = 'UTF8'
    conn, error = connect_to_db(module, conn_params, autocommit=True, fail_on_conn=False)
    if conn is None:
        error = (error or '').strip()
        raise TaskFailure('cannot connect to database %s: %s. Nothing was applied; %s' % (params['db'], error, connection_hint(error)))
    return Db(conn)


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


def run(module, db, migrations, names, result):
    """The whole task once connected; fills result, raises TaskFailure."""
    params = module.params
    setup_sql = prepare_session(db, params, module.check_mode)
    names = dict(names, table=qualified_table(db, names['table']), marker=qualified_table(db, names['marker']))
    history, columns = read_history(db, names['table'])
    incomplete = read_incomplete(db, names['marker'])
    plan = plan_migrations(
        migrations, history, incomplete, params['target_version'], params['allow_out_of_order'], params['accept_checksums'], params['retry_incomplete']
    )
    if columns is not None:
        plan['problems'].extend(versions_too_wide(plan['to_apply'], columns['version']))
    # Every file starts from the session's setting (RESET ALL before each): psql reads it so too.
    standard_strings = db.value("SELECT current_setting('standard_conforming_strings') AS v") == 'on'
    try:
        analyze_migrations(plan['to_apply'], standard_strings)  # only files that will run are split and checked
    except MigrationError as e:
        plan['problems'].extend(e.problems)
    plan['problems'].extend(invalid_indexes_before_retry(db, [m for m in plan['to_apply'] if m.number in incomplete and m.statements is not None]))
    for warning in plan['warnings']:
        module.warn(hint_names(warning, module.params['option_prefix']))
    result.update(
        entries=plan['entries'],
        missing=plan['missing'],
        drifted=[e['version'] for e in plan['entries'] if e['drift']],
        incomplete=[dict(v) for _, v in sorted(incomplete.items())],
        current_version=history[max(history)]['version'] if history else None,
    )
    if plan['problems']:
        raise TaskFailure('nothing was applied%s: %s' % (' (check mode)' if module.check_mode else '', '; '.join(plan['problems'])))
    entries_by_version = dict((e['version'], e) for e in plan['entries'])
    if module.check_mode:
        for mig in plan['to_apply']:
            entries_by_version[mig.version].update(status='would_apply', changed=True)
        result['changed'] = bool(plan['to_apply'] or plan['adopt'] or plan['accept'])
        return
    runner = Runner(
        db,
        names['table'],
        names['marker'],
        columns,
        names['applied_by'],
        params['lock_retries'],
        setup_sql,
        own_writes_sql(params),
        params['concurrent_lock_timeout'].strip(),
        retried=[mig.number for mig in plan['to_apply'] if mig.number in incomplete],
    )
    execute_plan(runner, plan, entries_by_version, result, params['progress_file'])


def result_entry(entry):
    """The documented, compact form of a plan entry: optional keys only when they say something.

    A run over a thousand migrations returns a thousand of these; Ansible's handling of the
    result grows with its size.
    """
    out = dict(version=entry['version'], name=entry['name'], status=entry['status'], changed=entry['changed'])
    if entry['duration_ms'] is not None:
        out['duration_ms'] = entry['duration_ms']
    if entry['applied_at']:
        out['applied_at'] = entry['applied_at']
    for flag in ('adopted', 'checksum_accepted', 'drift'):
        if entry[flag]:
            out[flag] = True
    if not entry['transactional']:
        out['no_transaction'] = True
    if entry['message']:
        out['message'] = entry['message']
    return out


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


def describe_schema(db, table_sql):
    """What the database holds: recorded versions, tables, foreign keys, indexes (describe_schema)."""
    history = table_columns(db, table_sql) is not None
    row = db.rows(
        "SELECT %s AS versions, "
        "ARRAY(SELECT schemaname || '.' || tablename FROM pg_catalog.pg_tables ORDER BY 1) AS tables, "
        "ARRAY(SELECT conrelid::regclass::text || '.' || conname FROM pg_catalog.pg_constraint "
        "      WHERE contype = 'f' ORDER BY 1) AS foreign_keys, "
        "ARRAY(SELECT indexname FROM pg_catalog.pg_indexes ORDER BY 1) AS indexes"
        % (('ARRAY(SELECT version::text FROM %s ORDER BY 1)' % table_sql) if history else "'{}'::text[]")
    )[0]
    return dict(
        versions=[v.strip(WHITESPACE) for v in row['versions']],
        tables=list(row['tables']),
        foreign_keys=list(row['foreign_keys']),
        indexes=list(row['indexes']),
    )


def finish_result(result, migrations, diff, check_mode):
    """Turn the entries into the documented return values."""
    entries = result.pop('entries', [])
    result['migrations'] = [result_entry(e) for e in entries]
    result['summary'] = summarize(entries)
    result['applied'] = [e['version'] for e in entries if e['status'] in ('applied', 'would_apply')]
    result['pending'] = [e['version'] for e in entries if e['status'] in ('pending', 'would_apply', 'failed', 'skipped')]
    done = [e['version'] for e in entries if e['status'] in ('applied', 'already_applied')]
    if done:
        result['current_version'] = max(done, key=int)
    if diff:
        result['diff'] = build_diff(entries, dict((m.filename, m) for m in migrations), check_mode)
    return result


def main():
    if not HAS_COLLECTION:
        AnsibleModule(argument_spec=dict(), bypass_checks=True).fail_json(
            msg='postgresql_migrate needs the community.postgresql collection (>= 4.0): ansible-galaxy collection install -r requirements.yml'
        )
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    params = module.params
    result = dict(changed=False, migrations=[], applied=[], pending=[], drifted=[], missing=[], incomplete=[], current_version=None, summary=summarize([]))
    migrations, db = [], None
    try:
        problems = validate_params(params)
        if problems:
            raise TaskFailure('invalid parameters: ' + '; '.join(problems))
        ensure_required_libs(module)
        if params['path'] is None:
            db = connect(module, params, params['applied_by'] or default_applied_by())
            result['server'] = describe_server(db)
            module.exit_json(**result)
        try:
            migrations = discover_migrations(params['path'], params['max_file_size'])
        except MigrationError as e:
            raise TaskFailure('migration files in %s are not valid, nothing was applied: %s' % (params['path'], '; '.join(e.problems)), problems=e.problems)
        if not migrations and not params['allow_empty']:
            description = describe_path(params['path'])
            raise TaskFailure(description, problems=[description])
        names = dict(
            table=pg_quote_identifier(params['table'], 'table'),
            marker=pg_quote_identifier(incomplete_table_name(params['table']), 'table'),
            applied_by=params['applied_by'] or default_applied_by(),
        )
        db = connect(module, params, names['applied_by'])
        run(module, db, migrations, names, result)
        if params['describe_schema']:
            result['schema'] = describe_schema(db, names['table'])
    except TaskFailure as e:
        finish_result(result, migrations, module._diff, module.check_mode)
        result.update(e.extra)
        result.update(msg=e.msg)
        module.fail_json(**name_options(result, params['option_prefix']))
    except SqlFailure as e:
        finish_result(result, migrations, module._diff, module.check_mode)
        module.fail_json(
            msg='database error: %s. Migrations reported as applied stay applied; rerun when the cause is fixed' % e.describe(sentence=True), **result
        )
    except (MigrationError, SQLParseError) as e:
        module.fail_json(msg=to_native(e), **result)
    finally:
        if db is not None:
            db.close()  # also releases the session advisory lock
    module.exit_json(**name_options(finish_result(result, migrations, module._diff, module.check_mode), params['option_prefix']))


if __name__ == '__main__':
    main()
