"""The facts of the repository's st44 migrations (migrations/) that tests compare against."""

from __future__ import annotations

import yaml

from tests.support import REPO_ROOT

MIGRATIONS = REPO_ROOT / "migrations"
ST44 = {
    "000": "create_migrations_table",
    "001": "create_users_table",
    "011": "create_households_table",
    "012": "create_household_members_table",
    "013": "create_children_table",
    "014": "create_tasks_table",
    "015": "create_task_assignments_table",
    "016": "create_task_completions_table",
}
ST44_VERSIONS = list(ST44)
# The tables the release promises: schema.yml, the one definition verify and Molecule read too.
ST44_TABLES = sorted(yaml.safe_load((REPO_ROOT / "schema.yml").read_text())["db_deploy_expected_tables"])

NOTES_017 = (
    "-- A new table of the next release.\n"
    "CREATE TABLE IF NOT EXISTS household_notes (\n"
    "    id   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,\n"
    "    body text NOT NULL\n"
    ");\n"
    "INSERT INTO schema_migrations (version, name) VALUES ('017', 'add_household_notes')\n"
    "ON CONFLICT (version) DO NOTHING;\n"
)


def add_app_rows(db) -> None:
    """What the app writes once the schema exists: two users, one household."""
    db.sql("INSERT INTO users (email, password_hash) VALUES ('ann@example.com', 'x'), ('bob@example.com', 'y')")
    db.sql("INSERT INTO households (name, created_by) SELECT 'Home', id FROM users WHERE email = 'ann@example.com'")
