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
  - st44 platform team (!UNKNOWN)
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


import re

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.converters import to_native

from ansible_collections.st44.db_deploy.plugins.module_utils.migrate.discovery import VERSION_RULE, describe_path, discover_migrations, version_number
from ansible_collections.st44.db_deploy.plugins.module_utils.migrate.errors import (
    MigrationError,
    SqlFailure,
    TaskFailure,
    connection_hint,
    hint_names,
    name_options,
)
from ansible_collections.st44.db_deploy.plugins.module_utils.migrate.history import (
    describe_schema,
    incomplete_table_name,
    qualified_table,
    read_history,
    read_incomplete,
    versions_too_wide,
)
from ansible_collections.st44.db_deploy.plugins.module_utils.migrate.indexes import invalid_indexes_before_retry
from ansible_collections.st44.db_deploy.plugins.module_utils.migrate.planning import bad_versions, finish_result, plan_migrations, summarize
from ansible_collections.st44.db_deploy.plugins.module_utils.migrate.rules import analyze_migrations
from ansible_collections.st44.db_deploy.plugins.module_utils.migrate.runner import Runner, execute_plan
from ansible_collections.st44.db_deploy.plugins.module_utils.migrate.session import (
    MAX_LOCK_WAIT,
    Db,
    default_applied_by,
    describe_server,
    own_writes_sql,
    prepare_session,
)

try:
    from ansible_collections.community.postgresql.plugins.module_utils.database import (
        SQLParseError,
        pg_quote_identifier,
    )
    from ansible_collections.community.postgresql.plugins.module_utils.postgres import (
        connect_to_db,
        ensure_required_libs,
        get_conn_params,
        postgres_common_argument_spec,
    )

    HAS_COLLECTION = True
except ImportError:  # reported by main() with what to install
    HAS_COLLECTION = False


# The table part stops at 52 characters so that "<table>_incomplete" fits PostgreSQL's 63.
TABLE_RE = re.compile(r'(?:[A-Za-z_][A-Za-z0-9_]{0,62}\.)?[A-Za-z_][A-Za-z0-9_]{0,51}')
PG_INTERVAL_RE = re.compile(r'^\s*[0-9]+(\.[0-9]+)?\s*(us|ms|s|min|h|d)?\s*$')


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
        incomplete=[dict(incomplete[version]) for version in sorted(incomplete)],
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
