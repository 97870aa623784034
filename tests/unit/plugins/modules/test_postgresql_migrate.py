"""Unit tests of plugins/modules/postgresql_migrate.py: its documentation, argument spec and parameter checks."""

import pytest
import yaml
from ansible_collections.st44.db_deploy.plugins.module_utils.migrate.history import incomplete_table_name
from ansible_collections.st44.db_deploy.plugins.modules.postgresql_migrate import (
    DOCUMENTATION,
    EXAMPLES,
    HAS_COLLECTION,
    RETURN,
    argument_spec,
    validate_params,
)

from tests.support.migrate_units import module_params


def test_collection_is_importable():
    assert HAS_COLLECTION, "community.postgresql is missing: run `make setup`"


def test_defaults_are_valid():
    params = module_params()
    assert validate_params(params) == []
    assert (params["table"], params["lock_timeout"], params["statement_timeout"], params["lock_wait"], params["lock_retries"], params["max_file_size"]) == (
        "schema_migrations",
        "5s",
        None,
        60,
        3,
        52428800,
    )


@pytest.mark.parametrize(
    "table",
    [
        "x; DROP TABLE users",
        'a"b',
        "a.b.c",
        "",
        "1abc",
        "users ",
        "schema.",
        ".users",
        "a-b",
        "a" * 64,
        "users; --",
    ],
)
def test_unsafe_table_names_are_refused(table):
    assert validate_params(module_params(table=table)) == [
        "table %r is not a plain identifier or schema.identifier (letters, digits, _; at most 52 characters for the table)" % table
    ]


@pytest.mark.parametrize("table", ["schema_migrations", "public.schema_migrations", "_x", "Ops.History2", "a" * 52, "s" * 63 + "." + "t" * 52])
def test_plain_table_names_are_accepted(table):
    assert validate_params(module_params(table=table)) == []


def test_table_name_with_trailing_newline_is_refused():
    assert validate_params(module_params(table="users\n")) != []


def test_incomplete_marker_table_never_collides_with_the_history_table():
    table = "m" * 63
    accepted = validate_params(module_params(table=table)) == []
    marker = incomplete_table_name(table)
    # PostgreSQL keeps the first NAMEDATALEN-1 = 63 bytes of an identifier
    assert not accepted or marker.encode()[:63] != table.encode()[:63]


@pytest.mark.parametrize("option", ["lock_timeout", "statement_timeout"])
@pytest.mark.parametrize("value", ["5 seconds", "-1s", "5S", "abc", "", "1e3", "5s; SELECT 1"])
def test_bad_durations_are_refused(option, value):
    assert validate_params(module_params(**{option: value})) == ["%s %r is not a PostgreSQL duration such as 5s, 500ms or 0" % (option, value)]


@pytest.mark.parametrize("value", ["5s", "500ms", "0", "1.5s", "2min", "1h", "1d", "250us", "100", " 5 s "])
def test_durations_are_accepted(value):
    assert validate_params(module_params(lock_timeout=value, statement_timeout=value)) == []


@pytest.mark.parametrize(
    "overrides, problem",
    [
        (dict(lock_wait=-1), "lock_wait must be 0 to 2147483 seconds, not -1"),
        (dict(lock_wait=float("nan")), "lock_wait must be 0 to 2147483 seconds, not nan"),
        (dict(lock_wait=float("inf")), "lock_wait must be 0 to 2147483 seconds, not inf"),
        (dict(lock_wait=1e12), "lock_wait must be 0 to 2147483 seconds, not 1e+12"),
        (dict(db=""), "db is empty: name the database to migrate (with no name the driver would connect to a default database)"),
        (dict(db="  "), "db is empty: name the database to migrate (with no name the driver would connect to a default database)"),
        (dict(path=""), "path is empty: give the directory of the migration files"),
        (dict(lock_retries=-1), "lock_retries must be 0 or more"),
        (dict(max_file_size=0), "max_file_size must be a positive number of bytes"),
        (dict(target_version="v2"), "target_version 'v2' is not a version number: a version is the digits 0-9 of a migration file name, for example \"014\""),
        (
            dict(target_version="\u00b2"),
            "target_version '\u00b2' is not a version number: a version is the digits 0-9 of a migration file name, for example \"014\"",
        ),
        (
            dict(accept_checksums=["\u0661", "2", "x"]),
            "accept_checksums holds '\u0661', 'x', not version numbers: a version is the digits 0-9 of a migration file name, for example \"014\"",
        ),
        (
            dict(retry_incomplete=["\u0661"]),
            "retry_incomplete holds '\u0661', not a version number: a version is the digits 0-9 of a migration file name, for example \"014\"",
        ),
    ],
)
def test_bad_numbers_are_refused(overrides, problem):
    assert validate_params(module_params(**overrides)) == [problem]


def test_edge_values_are_accepted():
    assert validate_params(module_params(lock_wait=0, lock_retries=0, max_file_size=1, target_version="014")) == []
    assert validate_params(module_params(lock_wait=2147483)) == []


def test_all_parameter_problems_are_reported_at_once():
    params = module_params(table="a.b.c", lock_timeout="soon", lock_wait=-1, target_version="x")
    assert len(validate_params(params)) == 4


def _options(documentation):
    return yaml.safe_load(documentation)["options"]


def test_documentation_is_valid_yaml():
    # ansible-doc and ansible-test sanity read these; a stray ': ' in a plain scalar breaks them.
    for block in (DOCUMENTATION, EXAMPLES, RETURN):
        assert yaml.safe_load(block)


def test_documented_options_match_argument_spec():
    from ansible_collections.community.postgresql.plugins.module_utils.postgres import (
        postgres_common_argument_spec,
    )

    spec = argument_spec()
    documented = _options(DOCUMENTATION)
    own = set(spec) - set(postgres_common_argument_spec())
    assert own == set(documented)
    for name in own:
        for key, missing in (("type", None), ("default", None), ("required", False), ("aliases", None), ("elements", None)):
            assert spec[name].get(key, missing) == documented[name].get(key, missing), (name, key)
