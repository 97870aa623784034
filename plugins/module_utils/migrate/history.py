# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The history table (one row per applied version) and the incomplete marker table of no-transaction files."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.st44.db_deploy.plugins.module_utils.migrate.discovery import VERSION_RULE, version_number
from ansible_collections.st44.db_deploy.plugins.module_utils.migrate.errors import MigrationError, TaskFailure
from ansible_collections.st44.db_deploy.plugins.module_utils.migrate.lexer import WHITESPACE


HISTORY_EXTRA_COLUMNS = (
    ('checksum', 'text'),
    ('applied_by', 'text'),
    ('execution_ms', 'integer'),
)
RECORD_STATEMENT = 'postgresql_migrate_record'


def incomplete_table_name(table):
    return table + '_incomplete'


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
    names = set(column for column, _type in column_types)
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
    return dict(columns, **dict((column, None) for column, _type in HISTORY_EXTRA_COLUMNS))


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
