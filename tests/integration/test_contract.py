"""The contract a pipeline relies on, through ansible-playbook against a real PostgreSQL.

status-db.yml exits non-zero with one summary line when a version is drifted, missing or
incomplete (pending too when asked), naming role variables; read-only steps never report
changed; a misspelled or mistyped db_deploy_* variable is refused in one line before
anything changes.
"""

from __future__ import annotations

import re
from secrets import token_urlsafe

import pytest

from tests.support.db_state import catalog, recorded_versions
from tests.support.st44 import ST44, ST44_VERSIONS

pytestmark = pytest.mark.e2e


def test_status_fails_with_one_line_naming_the_role_variable_when_a_file_drifted(deploy, db, site, check_mode_lock):
    assert deploy().rc == 0
    path = site.migrations / "012_create_household_members_table.sql"
    path.write_text(path.read_text() + "\n-- edited after it was applied\n")
    before = (catalog(db), db.sql("SELECT * FROM schema_migrations ORDER BY version"), site.shipped())

    with check_mode_lock():  # the status play's temporary directory
        run = deploy("playbooks/status-db.yml")

    assert run.rc == 2, run.output
    fatal = run.fatal_lines()
    assert len(fatal) == 1, run.stdout
    assert "status FAILED (8 applied, 0 pending)" in fatal[0]
    assert 'drifted 012' in fatal[0]
    assert 'db_deploy_accept_checksums: [\\"012\\"]' in fatal[0], fatal[0]
    assert "...ignoring" not in run.stdout and "rescued=0" in run.stdout
    assert run.recap()["changed"] == 0
    assert (catalog(db), db.sql("SELECT * FROM schema_migrations ORDER BY version"), site.shipped()) == before


def test_status_fails_when_a_recorded_version_has_no_file(deploy, db, site, check_mode_lock):
    assert deploy().rc == 0
    (site.migrations / "016_create_task_completions_table.sql").unlink()

    with check_mode_lock():
        run = deploy("playbooks/status-db.yml")

    assert run.rc == 2, run.output
    fatal = run.fatal_lines()
    assert len(fatal) == 1 and "missing 016" in fatal[0], run.stdout
    assert run.recap()["changed"] == 0


def test_status_fails_on_pending_only_when_asked(deploy, db, site, socket_vars, check_mode_lock):
    partial = deploy(vars=dict(socket_vars, db_deploy_target_version="012", db_deploy_expected_tables=[]))
    assert partial.rc == 0, partial.output

    with check_mode_lock():
        # --check too: the status reads, whatever the command line says.
        relaxed = deploy("playbooks/status-db.yml", check=True)
        strict = deploy("playbooks/status-db.yml", extra_vars={"db_deploy_status_fail_on_pending": "true"})

    assert relaxed.rc == 0, relaxed.output
    assert "status OK, 4 applied, 4 pending." in relaxed.stdout
    assert relaxed.recap()["changed"] == 0, relaxed.stdout
    assert strict.rc == 2, strict.output
    fatal = strict.fatal_lines()
    assert len(fatal) == 1 and "pending 013, 014, 015, 016" in fatal[0], strict.stdout
    assert recorded_versions(db) == ["000", "001", "011", "012"]


def test_deploy_with_nothing_pending_reports_no_change_anywhere(deploy, db, site):
    assert deploy().rc == 0

    run = deploy()

    assert run.rc == 0, run.output
    assert run.recap()["changed"] == 0, run.stdout
    assert not re.search(r"^changed:", run.stdout, re.M), run.stdout
    assert recorded_versions(db) == ST44_VERSIONS


def test_read_only_steps_of_a_deploy_with_pending_versions_report_no_change(deploy, db, site):
    run = deploy()

    assert run.rc == 0, run.output
    # Every change the recap counts is on screen, one line each: the plan is not among them.
    changed = run.changed_lines()
    assert len(changed) == run.recap()["changed"], run.stdout
    assert not [line for line in changed if "Ask postgresql_migrate" in line or "read-only" in line], changed
    assert "changed: [localhost] db_deploy : Apply the pending migrations with postgresql_migrate" in changed
    assert [line[0] for line in run.version_lines()] == list(ST44)


ENTRY_POINTS = ["deploy-db.yml", "playbooks/status-db.yml", "playbooks/restore-db.yml"]


def assert_refused_in_one_line(run, db, site, expected: str):
    assert run.rc == 2, run.output
    fatal = run.fatal_lines()
    assert len(fatal) == 1, run.stdout
    assert expected in fatal[0], fatal[0]
    assert "Nothing was changed." in fatal[0]
    # Not Ansible's own validation, which prints the whole argument spec.
    assert "argument_spec_data" not in run.output and "TASK [db_deploy : Validating" not in run.stdout
    assert max(len(line) for line in run.output.splitlines()) < 600
    assert db.tables() == [] and site.shipped() == [] and site.backup_files() == []


@pytest.mark.parametrize("playbook", ENTRY_POINTS)
def test_a_misspelled_variable_in_the_inventory_is_refused_with_the_nearest_name(deploy, db, site, socket_vars, playbook):
    run = deploy(playbook, vars=dict(socket_vars, db_deploy_backup_kep=3), extra_vars={"db_deploy_restore_confirm": db.name})

    assert_refused_in_one_line(run, db, site, "db_deploy_backup_kep is not a variable of the db_deploy role: did you mean db_deploy_backup_keep?")


def test_a_misspelled_extra_var_is_refused_with_the_nearest_name(deploy, db, site):
    run = deploy(extra_vars={"db_deploy_relase_id": "r1"})

    assert_refused_in_one_line(run, db, site, "db_deploy_relase_id is not a variable of the db_deploy role: did you mean db_deploy_release_id?")


@pytest.mark.parametrize("playbook", ENTRY_POINTS)
def test_a_wrong_type_is_one_line_naming_the_variable_and_both_types(deploy, db, site, socket_vars, playbook):
    run = deploy(
        playbook, vars=dict(socket_vars, db_deploy_backup_keep="seven", db_deploy_login_port="five"), extra_vars={"db_deploy_restore_confirm": db.name}
    )

    assert_refused_in_one_line(run, db, site, "db_deploy_backup_keep must be of type int, got str; db_deploy_login_port must be of type int, got str.")
    assert "seven" not in run.output and "five" not in run.output


def test_a_wrong_type_never_shows_the_value_of_a_secret(deploy, db, site, socket_vars):
    secret = "Pw-" + token_urlsafe(12)

    run = deploy(
        vars=dict(socket_vars, db_deploy_smoke_status_codes=[200]), secrets={"db_deploy_smoke_body": [secret], "db_deploy_smoke_status_codes": [secret]}
    )

    assert run.rc == 2, run.output
    assert "db_deploy_smoke_body must be of type dict, got list" in run.stdout
    assert "db_deploy_smoke_status_codes must be of type list of int, got a list of str" in run.stdout
    assert secret not in run.output


def test_status_fails_when_tables_are_gone_although_every_version_is_recorded(deploy, db, site):
    """The seed's outage the other way round: the history says applied, the tables are gone."""
    assert deploy().rc == 0
    db.sql("DROP TABLE task_completions")

    run = deploy("playbooks/status-db.yml")

    assert run.rc == 2, run.output
    (fatal,) = run.fatal_lines()
    assert "schema incomplete although every version is recorded: missing public.task_completions (" in fatal, fatal[-600:]
    assert "docs/runbook.md, section 2" in fatal
