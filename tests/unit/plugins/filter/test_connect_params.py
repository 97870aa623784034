"""db_deploy_connect_params: the PG* variable the role gives pg_dump for each key is the one
libpq reads (asked of the libpq on this machine, PQconndefaults), and every key libpq has no
variable for, or that a role variable sets, is refused naming what to use instead."""

from __future__ import annotations

import ctypes
import ctypes.util

import pytest
import yaml

from ansible_collections.st44.db_deploy.plugins.filter import db_deploy_args as ARGS

from tests.support import REPO_ROOT

LIBPQ_ENV = yaml.safe_load((REPO_ROOT / "roles/db_deploy/vars/main.yml").read_text())["__db_deploy_libpq_env"]


class _Option(ctypes.Structure):
    _fields_ = [
        ("keyword", ctypes.c_char_p),
        ("envvar", ctypes.c_char_p),
        ("compiled", ctypes.c_char_p),
        ("val", ctypes.c_char_p),
        ("label", ctypes.c_char_p),
        ("dispchar", ctypes.c_char_p),
        ("dispsize", ctypes.c_int),
    ]


def libpq_options() -> dict[str, str | None]:
    """{keyword: environment variable or None} of the libpq installed here."""
    name = ctypes.util.find_library("pq")
    if not name:
        pytest.skip("no libpq on this machine")
    libpq = ctypes.CDLL(name)
    libpq.PQconndefaults.restype = ctypes.POINTER(_Option)
    libpq.PQconninfoFree.argtypes = [ctypes.POINTER(_Option)]
    options = libpq.PQconndefaults()
    found, i = {}, 0
    while options[i].keyword:
        envvar = options[i].envvar
        found[options[i].keyword.decode()] = envvar.decode() if envvar else None
        i += 1
    libpq.PQconninfoFree(options)
    return found


def test_each_key_maps_to_the_variable_libpq_reads_and_none_is_forgotten():
    options = libpq_options()
    known_here = {key: env for key, env in LIBPQ_ENV.items() if key in options}
    assert known_here == {key: options[key] for key in known_here}
    with_env = {key for key, env in options.items() if env}
    assert with_env - set(LIBPQ_ENV) - set(ARGS._USE_INSTEAD) == set()
    assert not {key for key, env in options.items() if env is None} & set(LIBPQ_ENV)


def test_keys_pg_dump_could_not_use_are_refused_naming_what_to_use():
    problems = ARGS.connect_params_problems(
        {"application_name": "x", "keepalives": 1, "sslmode": "require", "password": "secret", "sslpassword": "s", "target_sesion_attrs": "read-write"},
        LIBPQ_ENV,
    )

    assert problems == [
        "db_deploy_connect_params may not set keepalives: libpq has no environment variable for it, so pg_dump and"
        " pg_restore could not use it; put it in a service of pg_service.conf on the host and set"
        " db_deploy_connect_params: {service: NAME}",
        "db_deploy_connect_params may not set password: use db_deploy_login_password from the vault (pg_dump reads it from a pass file the role writes)",
        "db_deploy_connect_params may not set sslmode: use db_deploy_ssl_mode",
        "db_deploy_connect_params may not set sslpassword: use a client key without a passphrase, readable only by the user the deploy runs as",
        "db_deploy_connect_params may not set target_sesion_attrs: libpq has no environment variable for it, so"
        " pg_dump and pg_restore could not use it; did you mean target_session_attrs?",
    ]
    assert not any("secret" in p for p in problems)
