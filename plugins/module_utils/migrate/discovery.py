# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Discovery and checksums: the migration files of a directory, read, checked and hashed."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import hashlib
import os
import pwd
import re
import stat

from ansible_collections.st44.db_deploy.plugins.module_utils.migrate.errors import MigrationError
from ansible_collections.st44.db_deploy.plugins.module_utils.migrate.lexer import WHITESPACE


FILENAME_RE = re.compile(r'^(?P<version>[0-9]+)_(?P<name>[A-Za-z0-9][A-Za-z0-9_-]*)\.sql$')
NO_TRANSACTION_RE = re.compile(r'^[ \t]*--\s*postgresql_migrate\s*:\s*no-transaction\s*$', re.IGNORECASE | re.MULTILINE)
# The blank and -- comment lines at the top of a file, where the no-transaction marker goes.
HEADER_RE = re.compile(r'(?:[ \t\f\v]*(?:--[^\n]*)?\n)*')
BOM = '\ufeff'
# ASCII digits only: str.isdigit, int() and \\d also take '²' and '١', which no file name can hold.
VERSION_RE = re.compile(r'[0-9]+')
VERSION_RULE = 'a version is the digits 0-9 of a migration file name, for example "014"'


def version_number(text):
    """Numeric value of a version string, or None when it is not ASCII digits 0-9 only."""
    text = str(text).strip(WHITESPACE)
    return int(text) if VERSION_RE.fullmatch(text) else None


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


def normalize_sql(text):
    """Drop a leading BOM and turn CRLF / CR line endings into LF."""
    if text.startswith(BOM):
        text = text[1:]
    return text.replace('\r\n', '\n').replace('\r', '\n')


def checksum_of(sql):
    """SHA-256 hex digest of text that normalize_sql returned: stable across a BOM and line endings."""
    return hashlib.sha256(sql.encode('utf-8')).hexdigest()


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


PATH_HINT = 'point path at the directory that holds the NNN_description.sql files'


def os_user():
    """The name of the OS user whose permissions apply; uid<N> without a passwd entry (containers)."""
    try:
        return pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        return 'uid%d' % os.geteuid()


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
    """(size, bytes) of a file; bytes is None when it is larger than max_size, which is then not read."""
    with open(path, 'rb') as f:
        size = os.fstat(f.fileno()).st_size
        if size > max_size:
            return size, None
        return size, f.read(size + 1)  # one byte more than the size: read_migration sees a file that grew


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
