#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# Documentation only: the action plugin of the same name (plugins/action/db_deploy_report.py)
# does all the work on the controller, as ansible.builtin.debug's does; this file is where
# ansible-doc and the sanity tests find its documentation.

from __future__ import annotations

DOCUMENTATION = r'''
---
module: db_deploy_report
short_description: Write a deploy's JSON report and Markdown summary on the controller
description:
  - Writes C(<host>-<database>-<release>-<UTC time>[-check].json) and the same name in C(.md) into
    O(dir) on the controller (files 0640, the directory 0750), each under a temporary name, then
    renamed, so that a pipeline never reads half a report. C(docs/report.md) describes the fields.
  - Adds to O(report) the timing, the tool and ansible-core versions, the CI job and the backup.
  - >-
    Runs in the controller process (an action plugin): no module call, no connection, no file on
    the host. Never reports changed. Fails, after writing the files, with the report's C(error)
    when it has one, so that one task ends every deploy.
version_added: "1.0.0"
author: st44 platform team (!UNKNOWN)
options:
  dir:
    description: The directory on the controller the files go to; made when missing.
    type: path
    required: true
  report:
    description:
      - The role's facts of the run, at least C(host), C(database), C(release), C(check_mode),
        C(result), C(error) and C(migrations).
    type: dict
    required: true
  started:
    description: When the run's first step on this host connected, seconds since the epoch; none when it failed before.
    type: float
  backup:
    description: The backup this run took, C({file, size, duration_ms}); none when it took none.
    type: dict
attributes:
  action:
    description: Indicates this has a corresponding action plugin so some parts of the options can be executed on the controller.
    support: full
  check_mode:
    description: Can run in check mode; it writes the report of the dry run, named C(...-check).
    support: full
  diff_mode:
    description: Would return what changed when in diff mode.
    support: none
'''

EXAMPLES = r'''
- name: Write the report and its summary on the controller
  st44.db_deploy.db_deploy_report:
    dir: reports
    started: "{{ started_at }}"
    report:
      host: "{{ inventory_hostname }}"
      database: st44
      release: r42
      check_mode: "{{ ansible_check_mode }}"
      result: ok
      error:
      migrations: []
'''

RETURN = r'''
report:
  description: The path of the JSON report.
  returned: always
  type: str
  sample: reports/db1-st44-r42-20260101T000000Z.json
summary_file:
  description: The path of the Markdown summary.
  returned: always
  type: str
  sample: reports/db1-st44-r42-20260101T000000Z.md
summary:
  description: The summary a person reads at the end of the run, line by line (the db_deploy callback prints it).
  returned: always
  type: list
  elements: str
'''
