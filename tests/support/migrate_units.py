"""Helpers of the postgresql_migrate unit tests: files read and split as the module reads them, plans, parameters."""

import pytest
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible_collections.st44.db_deploy.plugins.module_utils.migrate.discovery import discover_migrations, read_migration
from ansible_collections.st44.db_deploy.plugins.module_utils.migrate.errors import MigrationError
from ansible_collections.st44.db_deploy.plugins.module_utils.migrate.lexer import split_statements
from ansible_collections.st44.db_deploy.plugins.module_utils.migrate.planning import plan_migrations
from ansible_collections.st44.db_deploy.plugins.module_utils.migrate.rules import analyze_migrations
from ansible_collections.st44.db_deploy.plugins.modules.postgresql_migrate import argument_spec

# tests/unit/helpers.py -> the repository
MIB = 1024 * 1024


def split(sql):
    """(line, text) of every statement split_statements finds."""
    return [(s.line, s.text) for s in split_statements(sql)]


def texts(sql):
    return [s.text for s in split_statements(sql)]


def one_statement(sql):
    statements = split_statements(sql)
    assert len(statements) == 1, statements
    return statements[0]


def parse_migration(filename, raw, max_size=MIB):
    """A migration read and split as the module does with a file it is about to run."""
    if isinstance(raw, str):
        raw = raw.encode("utf-8")
    mig = read_migration(filename, raw, max_size)
    analyze_migrations([mig])
    return mig


def migration(filename, sql="SELECT 1;\n"):
    return parse_migration(filename, sql)


def problems_of_file(filename, raw, max_size=MIB):
    """The problems reported for a file that must be refused, when it is read or split."""
    with pytest.raises(MigrationError) as excinfo:
        parse_migration(filename, raw, max_size)
    return excinfo.value.problems


def write(directory, name, content="SELECT 1;\n"):
    path = directory / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, str):
        content = content.encode("utf-8")
    path.write_bytes(content)
    return path


def discover(path, max_size=MIB):
    """Discovered and split, as the module does with files it is about to run."""
    migs = discover_migrations(str(path), max_size)
    analyze_migrations(migs)
    return migs


def discovery_problems(path, max_size=MIB):
    with pytest.raises(MigrationError) as excinfo:
        discover_migrations(str(path), max_size)
    return excinfo.value.problems


def recorded(mig, checksum="same", applied_at="2026-01-01 10:00:00+00"):
    """A history row for mig: checksum 'same' means the file's own checksum."""
    return dict(version=mig.version, name=mig.name, checksum=mig.checksum if checksum == "same" else checksum, applied_at=applied_at)


def history_of(*rows):
    return {int(r["version"]): r for r in rows}


def plan(migrations, history=None, incomplete=None, **kwargs):
    return plan_migrations(migrations, history or {}, incomplete or {}, **kwargs)


def versions(migrations):
    return [m.version for m in migrations]


def statuses(result):
    return {e["version"]: e["status"] for e in result["entries"]}


def module_params(**overrides):
    """Parameters as AnsibleModule would hand them to main(): defaults filled in."""
    args = dict(path="/srv/migrations", db="app")
    args.update(overrides)
    result = ArgumentSpecValidator(argument_spec()).validate(args)
    assert not result.error_messages, result.error_messages
    return result.validated_parameters


PG_DUMP_COPY = (
    "CREATE TABLE colours (id int, name text);\n"
    "COPY public.colours (id, name) FROM stdin;\n"
    "1\tred; or 'crimson'\n"
    "2\t\\N\n"
    "\\.\n"
    "CREATE INDEX colours_name ON colours (name);\n"
)
