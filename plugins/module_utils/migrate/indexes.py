# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Indexes a no-transaction file builds or relies on: which ones a failure can leave invalid, and finding them."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

from ansible_collections.st44.db_deploy.plugins.module_utils.migrate.errors import SqlFailure
from ansible_collections.st44.db_deploy.plugins.module_utils.migrate.lexer import IDENT
from ansible_collections.st44.db_deploy.plugins.module_utils.migrate.rules import needs_no_transaction


# A name or keyword, a "quoted identifier", a dot, or one other character; after whitespace and
# comments (nested /* */ are rare in a statement's head and end the parse at worst).
NAME_TOKEN_RE = re.compile(r'(?:\s+|--[^\n]*|/\*.*?\*/)*(?:("(?:[^"]|"")*")|(' + IDENT + r')|(\S))', re.DOTALL)
# The server folds unquoted names to lower case in ASCII only: 'İ' stays as it is.
_ASCII_LOWER = dict((c, c + 32) for c in range(65, 91))


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
    words = statement.words.first(4)
    if words[0] not in ('CREATE', 'REINDEX', 'ALTER'):
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
        if 'CONCURRENTLY' not in words:
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
SCOPE_INDEX = 0  # the index itself
SCOPE_TABLE = 1  # every index of the table
SCOPE_LEFTOVERS_OF_TABLE = 2  # REINDEX's leftovers (CC_LEFTOVER_RE) on the table
SCOPE_LEFTOVERS_IN_SCHEMA = 3  # REINDEX's leftovers in the schema
SCOPE_LEFTOVERS = 4  # REINDEX's leftovers anywhere in the database
# What REINDEX CONCURRENTLY names the copy it builds (and the old index it swaps out): a failure
# leaves it behind, invalid.
CC_LEFTOVER_RE = '_cc(new|old)[0-9]*$'


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


def index_scopes(db, statement):
    """[(scope, oid)] of what statement builds or relies on that a failure can leave invalid, with
    names resolved as the session resolves them now; [] when nothing (or a name no longer there)."""
    target = index_targets(statement)
    if target is None:
        return []
    kind = target['kind']
    try:
        if kind == 'create' and target['index'] is not None:
            # An index goes into its table's schema, whatever search_path says.
            rows = db.rows(
                "SELECT %s AS scope, c.oid::bigint AS oid FROM pg_catalog.pg_class c WHERE c.relname = %s "
                "AND c.relkind IN ('i', 'I') AND c.relnamespace = (SELECT relnamespace FROM pg_catalog.pg_class "
                "WHERE oid = to_regclass(%s))",
                (SCOPE_INDEX, target['index'], regclass_text(target['table'])),
            )
        elif kind == 'create':  # a name the server chooses: every index of the table
            rows = db.rows("SELECT %s AS scope, to_regclass(%s)::oid::bigint AS oid", (SCOPE_TABLE, regclass_text(target['table'])))
        elif kind == 'attach':
            rows = db.rows("SELECT %s AS scope, to_regclass(%s)::oid::bigint AS oid", (SCOPE_INDEX, regclass_text(target['index'])))
        elif target['what'] == 'INDEX' and target['name']:
            rows = db.rows(
                "SELECT %s AS scope, i.indexrelid::bigint AS oid FROM pg_catalog.pg_index i "
                "WHERE i.indexrelid = to_regclass(%s) UNION ALL SELECT %s, i.indrelid::bigint "
                "FROM pg_catalog.pg_index i WHERE i.indexrelid = to_regclass(%s)",
                (SCOPE_INDEX, regclass_text(target['name']), SCOPE_LEFTOVERS_OF_TABLE, regclass_text(target['name'])),
            )
        elif target['what'] == 'TABLE' and target['name']:
            rows = db.rows(
                "SELECT %s AS scope, c.oid::bigint AS oid FROM pg_catalog.pg_class c WHERE c.oid = to_regclass(%s) "
                "UNION ALL SELECT %s, c.reltoastrelid::bigint FROM pg_catalog.pg_class c "
                "WHERE c.oid = to_regclass(%s) AND c.reltoastrelid <> 0",
                (SCOPE_TABLE, regclass_text(target['name']), SCOPE_TABLE, regclass_text(target['name'])),
            )
        elif target['what'] == 'SCHEMA' and target['name']:
            rows = db.rows("SELECT %s AS scope, to_regnamespace(%s)::oid::bigint AS oid", (SCOPE_LEFTOVERS_IN_SCHEMA, regclass_text(target['name'])))
        else:  # DATABASE, SYSTEM
            rows = [dict(scope=SCOPE_LEFTOVERS, oid=0)]
    except SqlFailure:
        return []  # a name the server cannot resolve: the statement itself said so, or will
    return [(r['scope'], r['oid']) for r in rows if r['oid'] is not None]


def invalid_indexes(db, watched):
    """[(index row, statement)] of the invalid indexes among those watched, each with the first
    statement that concerns it; indexes another session is building right now are left out."""
    if not watched:
        return []

    def oids(*scopes):
        return '{%s}' % ','.join(str(oid) for scope, oid, _name in watched if scope in scopes)

    rows = db.rows(
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
            any(scope == SCOPE_LEFTOVERS for scope, _oid, _name in watched),
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


def invalid_indexes_note(db, statement):
    """After a statement of a no-transaction file failed: the invalid indexes it built or relies
    on (not those of other statements), and what to do."""
    try:
        invalid = invalid_indexes(db, [(scope, oid, statement) for scope, oid in index_scopes(db, statement)])
    except SqlFailure:
        return None
    if not invalid:
        return None
    names = [row['name'] for row, _statement in invalid]
    listed = ', '.join(names[:10]) + (' and more' if len(names) > 10 else '')
    reason = needs_no_transaction(statement) or 'index build'
    return (
        'invalid %s left: %s. A failed %s (this attempt or an earlier one) leaves its new index invalid: drop '
        'it with %s before the retry (CREATE INDEX ... IF NOT EXISTS would keep an invalid one)'
        % ('index' if len(names) == 1 else 'indexes', listed, reason, ' '.join('DROP INDEX CONCURRENTLY %s;' % n for n in names[:10]))
    )
