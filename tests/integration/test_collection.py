"""The repository is the collection st44.db_deploy: `ansible-galaxy collection build` gives a
tarball, which installs into a project that has nothing of this checkout (no library/, no
roles/, no link to the checkout), and runs there by fully qualified names: the module on an
empty database, then the role applying a new migration with its backup and report."""

from __future__ import annotations

import json
import subprocess
import tarfile

import pytest

from tests.support import REPO_ROOT
from tests.support.db_state import public_tables, recorded_versions
from tests.support.deploy_runner import write_sql
from tests.support.st44 import ST44_TABLES, ST44_VERSIONS
from tests.support import migrate_runner

pytestmark = pytest.mark.e2e

ANSIBLE_BIN = migrate_runner.VENV_BIN


def _run(cmd: list[str], cwd, env) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture
def project(tmp_path):
    """A throwaway project with st44.db_deploy installed from its built tarball."""
    build = _run([str(ANSIBLE_BIN / "ansible-galaxy"), "collection", "build", "--output-path", str(tmp_path)], REPO_ROOT, migrate_runner.env())
    assert build.returncode == 0, build.stdout + build.stderr
    (tarball,) = tmp_path.glob("st44-db_deploy-*.tar.gz")
    with tarfile.open(tarball) as tar:
        names = set(tar.getnames())
    assert {"plugins/modules/postgresql_migrate.py", "roles/db_deploy/tasks/main.yml", "meta/runtime.yml"} <= names
    # Nothing of the checkout's own project travels: no tests, no hosts, no link back to the root.
    assert not any(n.split("/")[0] in {"tests", "inventory", "migrations", "schema.yml", ".config", "collections", "library", ".venv"} for n in names)

    root = tmp_path / "project"
    root.mkdir()
    installed = root / "collections"
    # community.postgresql, the one dependency, comes from the checkout's .collections
    # (Galaxy is unreachable here); st44.db_deploy only from the tarball.
    (root / "ansible.cfg").write_text(
        f"[defaults]\ncollections_path = {installed}:{REPO_ROOT / '.collections'}\nstdout_callback = st44.db_deploy.db_deploy\nretry_files_enabled = False\n"
    )
    env = migrate_runner.env({"ANSIBLE_CONFIG": str(root / "ansible.cfg")})
    install = _run([str(ANSIBLE_BIN / "ansible-galaxy"), "collection", "install", "--offline", "--no-deps", "-p", str(installed), str(tarball)], root, env)
    assert install.returncode == 0, install.stdout + install.stderr
    listed = _run([str(ANSIBLE_BIN / "ansible-galaxy"), "collection", "list", "st44.db_deploy", "--format", "json"], root, env)
    assert listed.returncode == 0, listed.stdout + listed.stderr
    assert list(json.loads(listed.stdout)) == [str(installed / "ansible_collections")]
    return root, env


def test_built_collection_runs_the_module_and_the_role_by_their_full_names(project, db, site, socket_vars):
    root, env = project
    inventory = root / "hosts.json"
    inventory.write_text(json.dumps({"st44_db": {"hosts": {"localhost": socket_vars}}}))
    # The module runs as postgres: its files go under the site, which postgres can read.
    first = sorted(site.migrations.glob("*.sql"))[:2]
    two = site.root / "two"
    two.mkdir()
    for path in first:
        (two / path.name).write_text(path.read_text())
    module_play = root / "module.yml"
    module_play.write_text(
        json.dumps(
            [
                {
                    "name": "Apply two migrations with the module",
                    "hosts": "st44_db",
                    "gather_facts": False,
                    "become": True,
                    "become_user": "postgres",
                    "tasks": [
                        {
                            "name": "Apply",
                            "st44.db_deploy.postgresql_migrate": {
                                "path": str(two),
                                "db": db.name,
                                "login_user": "postgres",
                                "login_unix_socket": socket_vars["db_deploy_login_unix_socket"],
                                "port": socket_vars["db_deploy_login_port"],
                            },
                        }
                    ],
                }
            ]
        )
    )

    applied = _run([str(ANSIBLE_BIN / "ansible-playbook"), "-i", str(inventory), str(module_play)], root, env)
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert recorded_versions(db) == [p.name[:3] for p in first]

    write_sql(site.migrations, "017_create_notes_table.sql", "CREATE TABLE notes (id bigint PRIMARY KEY);\n")
    role_play = root / "role.yml"
    role_play.write_text(
        json.dumps(
            [
                {
                    "name": "Deploy with the role",
                    "hosts": "st44_db",
                    "gather_facts": False,
                    "roles": [{"role": "st44.db_deploy.db_deploy"}],
                }
            ]
        )
    )
    deployed = _run([str(ANSIBLE_BIN / "ansible-playbook"), "-i", str(inventory), str(role_play)], root, env)
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    assert recorded_versions(db) == ST44_VERSIONS + ["017"]
    assert set(public_tables(db.cluster, db.name)) >= set(ST44_TABLES) | {"notes"}
    # The role's own steps ran from the installed collection: the backup before migrating,
    # the report, and the collection's output callback printing the summary.
    assert len(site.backup_files()) == 1
    assert list(site.reports.glob("*.json"))
    assert "deploy OK" in deployed.stdout and "017 create_notes_table" in deployed.stdout
