"""Write when each task started to $BENCH_TIMER_FILE (JSON), for bench/run.py.

Not part of the deploy: run.py enables it next to the project's stdout callback, so that it can
time one step of the role (the backup) inside a whole run, and show where a run's time goes.
With one host and the linear strategy a task ends when the next one starts.
"""

from __future__ import annotations

import json
import os
import time

from ansible.plugins.callback import CallbackBase


def _origins(task) -> list[str]:
    """The file:line of the task and of each block or import it sits in, innermost first."""
    out = []
    obj = task
    while obj is not None:
        try:
            path = obj.get_path()
        except Exception:  # a block without a data source has no path
            path = ""
        if path:
            out.append(path)
        obj = getattr(obj, "_parent", None)
    return out


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "bench_timer"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._tasks: list[dict] = []
        self._started = time.time()

    def _start(self, task) -> None:
        self._tasks.append(dict(name=task.get_name(), origins=_origins(task), start=time.time()))

    def v2_playbook_on_task_start(self, task, is_conditional):
        self._start(task)

    def v2_playbook_on_handler_task_start(self, task):
        self._start(task)

    def v2_playbook_on_stats(self, stats):
        out = os.environ.get("BENCH_TIMER_FILE")
        if not out:
            return
        end = time.time()
        for task, nxt in zip(self._tasks, self._tasks[1:] + [dict(start=end)]):
            task["seconds"] = round(nxt["start"] - task["start"], 4)
        with open(out, "w") as handle:
            json.dump(dict(started=self._started, ended=end, tasks=self._tasks), handle, indent=1)
