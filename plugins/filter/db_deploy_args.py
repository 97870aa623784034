"""db_deploy_args_problems: what is wrong with the db_deploy_* variables a run was given.

One message per variable, each on one line: a name that is not a variable of the role, with
the nearest valid name; a value of the wrong type, with the type wanted and the type given.
Values are never quoted (a password is a db_deploy_* variable too).

db_deploy_connect_params is checked key by key: pg_dump and pg_restore get the connection
through libpq's environment, so a key libpq reads from no PG* variable, one a role variable
already sets, or a secret is refused, naming what to use instead.

Types are checked with the same validator Ansible runs before the role's first task
(ArgumentSpecValidator), one variable at a time, so that whatever passes here passes there.
"""

from __future__ import annotations

import difflib

from ansible.errors import AnsibleFilterError
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

_TYPE_NAMES = {bool: "bool", int: "int", float: "float", str: "str", list: "list", dict: "dict", type(None): "null"}


def _type_name(value) -> str:
    for python_type, name in _TYPE_NAMES.items():
        if isinstance(value, python_type):
            return name
    return type(value).__name__


def _wanted(spec: dict) -> str:
    wanted = spec.get("type", "str")
    if wanted == "list" and spec.get("elements"):
        wanted = "list of %s" % spec["elements"]
    return wanted


def _plain(value):
    """value as plain dicts, lists and scalars: ArgumentSpecValidator deep-copies what it checks,
    and a deep copy of Ansible's lazily templated containers costs a third of a second a run."""
    if isinstance(value, dict):
        return {_plain(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    for python_type in (bool, int, float, str):
        if isinstance(value, python_type):
            return python_type(value)
    return value


def valid_options(argument_specs: dict) -> dict:
    """{name: spec} of every option of every entry point (the entry points share them)."""
    options = {}
    for entry_point in (argument_specs or {}).get("argument_specs", argument_specs or {}).values():
        for name, spec in (entry_point.get("options") or {}).items():
            options.setdefault(name, dict(spec or {}))
    return options


# connect_params keys the role sets from its own variables (or must never be in plain text).
_USE_INSTEAD = {
    "host": "db_deploy_login_host",
    "port": "db_deploy_login_port",
    "user": "db_deploy_login_user",
    "dbname": "db_deploy_db_name",
    "sslmode": "db_deploy_ssl_mode",
    "sslrootcert": "db_deploy_ca_cert",
    "sslcert": "db_deploy_ssl_cert",
    "sslkey": "db_deploy_ssl_key",
    "password": "db_deploy_login_password from the vault (pg_dump reads it from a pass file the role writes)",
    "passfile": "db_deploy_login_password from the vault (pg_dump reads it from a pass file the role writes)",
    "sslpassword": "a client key without a passphrase, readable only by the user the deploy runs as",
}


def connect_params_problems(params: dict, libpq_env: dict) -> list[str]:
    """One message per key of db_deploy_connect_params that pg_dump could not be given."""
    found = []
    for key in sorted(params, key=str):
        if key in _USE_INSTEAD:
            found.append("db_deploy_connect_params may not set %s: use %s" % (key, _USE_INSTEAD[key]))
        elif key not in libpq_env:
            nearest = difflib.get_close_matches(str(key), sorted(set(libpq_env) | set(_USE_INSTEAD)), n=1, cutoff=0.8)
            found.append(
                "db_deploy_connect_params may not set %s: libpq has no environment variable for it, so pg_dump and"
                " pg_restore could not use it; %s"
                % (
                    key,
                    "did you mean %s?" % nearest[0]
                    if nearest
                    else "put it in a service of pg_service.conf on the host and set db_deploy_connect_params: {service: NAME}",
                )
            )
    return found


def problems(given: dict, argument_specs: dict, also_valid=(), libpq_env=None) -> list[str]:
    """Messages for the misspelled and mistyped variables of given ({name: value})."""
    if not isinstance(given, dict) or not isinstance(argument_specs, dict):
        raise AnsibleFilterError("db_deploy_args_problems expects a dict of variables and the argument specs")
    options = valid_options(argument_specs)
    names = sorted(set(options) | set(also_valid))
    found = []
    for name in sorted(given):
        if name not in options:
            if name in also_valid:
                continue
            nearest = difflib.get_close_matches(name, names, n=1, cutoff=0.6)
            found.append(
                "%s is not a variable of the db_deploy role%s"
                % (name, ": did you mean %s?" % nearest[0] if nearest else " (roles/db_deploy/README.md lists them)")
            )
            continue
        spec = _plain({k: v for k, v in options[name].items() if k in ("type", "elements", "choices", "no_log")})
        value = _plain(given[name])
        result = ArgumentSpecValidator({name: spec}).validate({name: value}, validate_role_argument_spec=True)
        if not result.error_messages:
            if name == "db_deploy_connect_params" and libpq_env is not None:
                found.extend(connect_params_problems(value or {}, libpq_env))
            continue
        if "choices" in spec and all(type(e).__name__ == "ArgumentValueError" for e in result.errors):
            found.append("%s must be one of %s, got another %s" % (name, ", ".join(str(c) for c in spec["choices"]), _type_name(value)))
        elif spec.get("elements") and isinstance(value, list):
            kinds = sorted(set(_type_name(v) for v in value))
            found.append("%s must be of type %s, got a list of %s" % (name, _wanted(spec), ", ".join(kinds)))
        else:
            found.append("%s must be of type %s, got %s" % (name, _wanted(spec), _type_name(value)))
    return found


class FilterModule:
    def filters(self):
        return {"db_deploy_args_problems": problems}
