"""keep_result: write content to dest (mode 0600) on the controller, in the ansible-playbook process.

The module runner's playbooks end with it to hand the registered result to the test.
ansible.builtin.copy did the same by running two modules (stat and copy), about a third
of each end-to-end run; the e2e plays run on localhost, so the controller is the host.
"""

from __future__ import annotations

import json
import os

from ansible.plugins.action import ActionBase


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        content = self._task.args["content"]
        if not isinstance(content, str):
            content = json.dumps(content)
        fd = os.open(self._task.args["dest"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(content)
        result["changed"] = False
        return result
