#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: db_deploy_wait
short_description: Wait for an async job a while and say how far it got
description:
  - >-
    Polls the job of a task started with C(async) and C(poll: 0) for up to O(wait) seconds, like
    C(async_status), but says what the job is doing: the size of O(watch_file) (a file the job
    writes) or the C(msg) of O(progress_file) (a JSON file a running module writes), and how long
    the job has run.
  - >-
    Meant for a task that loops with C(until: result.finished): each retry shows RV(msg).
  - When the job has finished it returns the job's own result, removes the job's file (it is of no
    use to anyone then) and fails with the job's message when the job failed.
version_added: "1.0.0"
author: st44 platform team (!UNKNOWN)
extends_documentation_fragment:
  - st44.db_deploy.attributes
options:
  jid:
    description: The C(ansible_job_id) of the started task.
    type: str
    required: true
  async_dir:
    description: Where the job's file is (C(ansible_async_dir), by default C(~/.ansible_async) of the user the job runs as).
    type: path
    default: ~/.ansible_async
  wait:
    description: Seconds to wait in this call for the job to finish before reporting progress.
    type: int
    default: 10
  label:
    description: What the job does, the start of RV(msg).
    type: str
    default: the job
  watch_file:
    description: A file whose size RV(msg) reports.
    type: path
  progress_file:
    description: >-
      A JSON file C({"msg": ...}) the job writes; its C(msg) is reported when it exists.
    type: path
'''

EXAMPLES = r'''
- name: Dump the database
  db_deploy_backups:
    state: dump
    # ...
  async: 86400
  poll: 0
  register: dump_job

- name: Wait for the dump
  db_deploy_wait:
    jid: "{{ dump_job.ansible_job_id }}"
    async_dir: "{{ ansible_async_dir | default('~/.ansible_async') }}"
    wait: 10
    label: pg_dump of st44
    watch_file: /var/backups/st44-db/st44-20260101T000000Z-r42-0badcafe.dump.partial
  register: dump
  until: dump.finished
  retries: 8640
  delay: 0
'''

RETURN = r'''
finished:
  description: Whether the job has finished; when it has, the rest of the result is the job's.
  returned: always
  type: bool
  sample: false
msg:
  description: While the job runs, what it has done so far; then the job's own message.
  returned: always
  type: str
  sample: "pg_dump of st44: 412 MB written, 40 s"
elapsed:
  description: While the job runs, the seconds since it started.
  returned: when the job has not finished
  type: int
  sample: 40
'''

import json
import os
import time

from ansible.module_utils.basic import AnsibleModule

POLL = 0.5


def read_job(path):
    """The job's JSON, or None while the wrapper is still writing it (the job is then running)."""
    try:
        with open(path) as handle:
            return json.loads(handle.read())
    except ValueError:
        return None


def job_finished(data):
    # async_wrapper writes {"started": 1, "finished": 0, ...} at the start and the module's own
    # result, without "started", at the end.
    return data is not None and "started" not in data


def progress(label, elapsed, watch_file=None, progress_file=None):
    """One line saying how far the job got."""
    said = None
    if progress_file:
        try:
            with open(progress_file) as handle:
                said = json.loads(handle.read()).get("msg")
        except (OSError, ValueError, AttributeError):
            said = None
    if said:
        return "%s, %d s" % (said, elapsed)
    if watch_file:
        try:
            size = os.path.getsize(watch_file)
        except OSError:
            size = 0
        return "%s: %d MB written, %d s" % (label, size // (1024 * 1024), elapsed)
    return "%s: running, %d s" % (label, elapsed)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            jid=dict(type="str", required=True),
            async_dir=dict(type="path", default="~/.ansible_async"),
            wait=dict(type="int", default=10),
            label=dict(type="str", default="the job"),
            watch_file=dict(type="path"),
            progress_file=dict(type="path"),
        ),
        supports_check_mode=True,
    )
    p = module.params
    path = os.path.join(p["async_dir"], p["jid"])
    deadline = time.time() + max(p["wait"], 0)
    while True:
        if not os.path.exists(path):
            module.fail_json(msg="could not find job %s in %s" % (p["jid"], p["async_dir"]), ansible_job_id=p["jid"], finished=True)
        data = read_job(path)
        if job_finished(data) or time.time() >= deadline:
            break
        time.sleep(POLL)

    if not job_finished(data):
        try:
            # The wrapper wrote the file when the job started and rewrites it only at the end.
            elapsed = int(time.time() - os.stat(path).st_mtime)
        except OSError:
            elapsed = 0
        module.exit_json(
            changed=False, finished=False, ansible_job_id=p["jid"], elapsed=elapsed, msg=progress(p["label"], elapsed, p["watch_file"], p["progress_file"])
        )

    if not module.check_mode:
        os.unlink(path)
    data.pop("invocation", None)
    data.update(finished=True, ansible_job_id=p["jid"])
    if data.get("failed"):
        data.setdefault("msg", "the job failed")
        module.fail_json(**data)
    module.exit_json(**data)


if __name__ == "__main__":
    main()
