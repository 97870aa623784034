#!/usr/bin/python3
"""Stand-in for the st44 app's registration endpoint (a Molecule test fixture only).

POST /api/auth/register with a JSON body {"email": ..., "password": ...} inserts a
user the way the app does and answers like it:

  201  {"id": "<uuid>", "email": "..."}        the user was created
  409  {"error": "email already registered"}   unique violation on users' e-mail
  500  {"error": "<database message>"}         any other database error, e.g. the
                                                outage: relation "users" does not exist

It connects per request (so a schema deployed while it runs is seen at once) as
the OS user it runs as, through the unix socket (peer authentication).
"""

import argparse
import hashlib
import json
import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import psycopg2
import psycopg2.errorcodes

REGISTER_PATH = "/api/auth/register"


class Handler(BaseHTTPRequestHandler):
    server_version = "st44-register-standin/1"

    def _answer(self, status, payload):
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):  # noqa: N802 (http.server's naming)
        if self.path != REGISTER_PATH:
            self._answer(404, {"error": "not found"})
            return
        try:
            length = int(self.headers.get("Content-Length") or 0)
            data = json.loads(self.rfile.read(length) or b"{}")
            email, password = data["email"], data["password"]
        except (ValueError, KeyError, TypeError):
            self._answer(400, {"error": "email and password are required"})
            return
        # A stand-in: a salted hash is enough to satisfy the column's checks.
        salt = os.urandom(8).hex()
        password_hash = salt + "$" + hashlib.sha256((salt + password).encode()).hexdigest()
        try:
            conn = psycopg2.connect(dbname=self.server.dbname, host=self.server.pghost, port=self.server.pgport)
            try:
                with conn, conn.cursor() as cur:
                    cur.execute(
                        "INSERT INTO users (email, password_hash) VALUES (%s, %s) RETURNING id",
                        (email, password_hash),
                    )
                    user_id = cur.fetchone()[0]
            finally:
                conn.close()
        except psycopg2.Error as exc:
            if exc.pgcode == psycopg2.errorcodes.UNIQUE_VIOLATION:
                self._answer(409, {"error": "email already registered"})
            else:
                message = exc.diag.message_primary if exc.diag and exc.diag.message_primary else str(exc)
                self._answer(500, {"error": message.strip()})
            return
        self._answer(201, {"id": str(user_id), "email": email})

    def log_message(self, fmt, *args):
        # One line per request in the log file, for reading after a failed run.
        print("%s %s" % (self.address_string(), fmt % args), flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8044)
    parser.add_argument("--dbname", default="st44")
    parser.add_argument("--pghost", default="/var/run/postgresql")
    parser.add_argument("--pgport", type=int, default=5432)
    args = parser.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.dbname, server.pghost, server.pgport = args.dbname, args.pghost, args.pgport
    server.serve_forever()


if __name__ == "__main__":
    main()
