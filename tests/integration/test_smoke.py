"""The smoke check creates nothing in the app unless asked, and never shows what it sends.

A tiny HTTP server on 127.0.0.1, started by each test, stands in for the app and records
every request (method, path, body). The deploy runs through ansible-playbook against a
real PostgreSQL.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from secrets import token_urlsafe

import pytest

from tests.support.db_state import catalog
from tests.support.st44 import ST44_TABLES

pytestmark = pytest.mark.e2e

OLD_PUBLISHED_BODY = {"email": "deploy-smoke@st44.invalid", "password": "deploy-smoke-check"}


class App:
    """Answers every request with `status` and records (method, path, body)."""

    def __init__(self, status: int = 200):
        self.status = status
        self.requests: list[tuple[str, str, str]] = []
        app = self

        class Handler(BaseHTTPRequestHandler):
            def _record(self):
                length = int(self.headers.get("Content-Length") or 0)
                app.requests.append((self.command, self.path, self.rfile.read(length).decode()))
                self.send_response(app.status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            do_GET = do_POST = do_PUT = _record  # noqa: N815 (http.server's naming)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = "http://127.0.0.1:%d" % self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def app():
    started = []

    def _start(status: int = 200) -> App:
        started.append(App(status))
        return started[-1]

    yield _start
    for a in started:
        a.server.shutdown()
        a.server.server_close()


def test_default_smoke_check_is_a_get_without_a_body(deploy, db, site, socket_vars, app):
    health = app(200)

    run = deploy(vars=dict(socket_vars, db_deploy_smoke_url=health.url + "/healthz"))

    assert run.rc == 0, run.output
    assert health.requests == [("GET", "/healthz", "")]
    assert f"GET {health.url}/healthz answered 200" in run.stdout


def test_login_with_a_wrong_password_passes_on_401_and_the_body_is_never_shown(deploy, db, site, socket_vars, app):
    login = app(401)
    body = {"email": "nobody-" + token_urlsafe(6) + "@st44.invalid", "password": "Wrong-" + token_urlsafe(12)}
    variables = dict(socket_vars, db_deploy_smoke_url=login.url + "/api/auth/login", db_deploy_smoke_method="POST", db_deploy_smoke_status_codes=[401])

    run = deploy(vars=variables, secrets={"db_deploy_smoke_body": body}, verbosity=3)

    assert run.rc == 0, run.output
    assert [(m, p, json.loads(b)) for m, p, b in login.requests] == [("POST", "/api/auth/login", body)]
    assert body["password"] not in run.output and body["email"] not in run.output


def test_a_failing_smoke_check_names_the_url_and_status_never_the_body(deploy, db, site, socket_vars, app):
    broken = app(500)
    secret = "S3cret-" + token_urlsafe(12)
    variables = dict(
        socket_vars,
        db_deploy_smoke_url=broken.url + "/api/auth/register",
        db_deploy_smoke_method="POST",
        db_deploy_smoke_status_codes=[201, 409],
        db_deploy_smoke_creates=True,
    )

    run = deploy(vars=variables, secrets={"db_deploy_smoke_body": {"email": "ops@st44.invalid", "password": secret}})

    assert run.rc == 2, run.output
    assert len(broken.requests) == 1 and secret in broken.requests[0][2]
    assert f"POST {broken.url}/api/auth/register got HTTP 500, wanted 201 or 409" in run.stdout, run.stdout
    assert secret not in run.output


@pytest.mark.parametrize("case", ["old-config", "opt-in-empty", "opt-in-published"])
def test_a_smoke_check_that_would_create_without_a_vault_body_is_refused_first(deploy, db, site, socket_vars, app, case):
    register = app(201)
    variables = dict(
        socket_vars, db_deploy_smoke_url=register.url + "/api/auth/register", db_deploy_smoke_method="POST", db_deploy_smoke_status_codes=[201, 409]
    )
    secrets = None
    if case == "old-config":  # what the role's defaults used to send
        secrets = {"db_deploy_smoke_body": OLD_PUBLISHED_BODY}
        expected = "db_deploy_smoke_creates is false"
    elif case == "opt-in-empty":
        variables["db_deploy_smoke_creates"] = True
        expected = "db_deploy_smoke_body is empty"
    else:
        variables["db_deploy_smoke_creates"] = True
        secrets = {"db_deploy_smoke_body": OLD_PUBLISHED_BODY}
        expected = "is the one once published in this repository"
    before = catalog(db)

    run = deploy(vars=variables, secrets=secrets)

    assert run.rc == 2, run.output
    assert expected in run.stdout and "Nothing was changed and nothing was sent." in run.stdout
    assert register.requests == []
    assert catalog(db) == before and db.tables() == []
    assert site.shipped() == [] and site.backup_files() == []
    assert "deploy-smoke-check" not in run.output


def test_opt_in_registration_sends_the_vault_body_once(deploy, db, site, socket_vars, app):
    register = app(201)
    body = {"email": "ops-" + token_urlsafe(6) + "@st44.invalid", "password": "Pw-" + token_urlsafe(16)}
    variables = dict(
        socket_vars,
        db_deploy_smoke_url=register.url + "/api/auth/register",
        db_deploy_smoke_method="POST",
        db_deploy_smoke_status_codes=[201, 409],
        db_deploy_smoke_creates=True,
    )

    run = deploy(vars=variables, secrets={"db_deploy_smoke_body": body})

    assert run.rc == 0, run.output
    assert [(m, json.loads(b)) for m, _, b in register.requests] == [("POST", body)]
    assert body["password"] not in run.output
    assert db.tables() == ST44_TABLES
