# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The deploy's screen output: what changed, what failed, what the role says, and a sign of
life during a long step. A no-op deploy fits on a screen; -v gives the default callback back."""

from __future__ import annotations

DOCUMENTATION = """
    name: db_deploy
    type: stdout
    short_description: quiet output for deploy-db.yml, the default callback with -v
    description:
      - Without -v, ok and skipped results and their task banners are not printed. A debug task
        (or an assert its success_msg) prints its message, a changed result one line per host (per item, with its label), a
        failed or unreachable result prints as the default callback prints it, whole.
      - A task retried with until prints its result's msg on one line per retry.
      - A result with a summary (the deploy's report task) prints it, before the failure if it failed.
      - A result with a notice (what a step of this repository removed or left alone) prints it.
      - A task running longer than still_running_seconds prints "still running" every that
        many seconds.
      - With -v or more, the output is the default callback's.
    extends_documentation_fragment:
      - default_callback
      - result_format_callback
    options:
      still_running_seconds:
        description: Print "still running" for a task running this long, and again every this many seconds; 0 never.
        type: int
        default: 15
        ini:
          - section: callback_db_deploy
            key: still_running_seconds
        env:
          - name: DB_DEPLOY_STILL_RUNNING_SECONDS
    requirements:
      - set as stdout_callback in ansible.cfg
"""

import threading
import time

from ansible import constants as C
from ansible.playbook.task_include import TaskInclude
from ansible.plugins.callback.default import CallbackModule as DefaultCallback
from ansible.utils.fqcn import add_internal_fqcns


def debug_text(result: dict) -> str:
    """The text a debug task asked to show: its msg (a list one line per element) or its var."""
    if "msg" in result:
        msg = result["msg"]
    else:
        shown = {k: v for k, v in result.items() if not k.startswith("_") and k not in ("changed", "failed")}
        if len(shown) != 1:
            return ""
        ((name, msg),) = shown.items()
        return "%s: %s" % (name, msg)
    if isinstance(msg, (list, tuple)):
        return "\n".join(str(line) for line in msg)
    return str(msg)


# What ansible.builtin.assert says without a success_msg: nothing a person needs.
ASSERT_DEFAULT_MSG = "All assertions passed"
ASSERT_ACTIONS = add_internal_fqcns(("assert",))


class CallbackModule(DefaultCallback):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "stdout"
    CALLBACK_NAME = "db_deploy"

    def __init__(self):
        super().__init__()
        self._lock = threading.Lock()
        self._task_name = None
        self._task_started = 0.0
        self._running = set()
        self._next_alive = None
        self._stop = threading.Event()
        self._ticker = None

    def _quiet(self) -> bool:
        return self._display.verbosity < 1

    # --- a sign of life during a long task ---------------------------------------------------

    def _interval(self) -> int:
        try:
            return int(self.get_option("still_running_seconds") or 0)
        except (KeyError, TypeError, ValueError):
            return 15

    def _tick(self):
        while not self._stop.wait(0.5):
            interval = self._interval()
            with self._lock:
                if not (self._running and self._next_alive and interval > 0):
                    continue
                now = time.monotonic()
                if now < self._next_alive:
                    continue
                line = "still running: %s (%d s)" % (self._task_name, round(now - self._task_started))
                self._next_alive += interval
            self._display.display(line, color=C.COLOR_DEBUG)

    def _task_begins(self, task):
        with self._lock:
            self._task_name = task.get_name().strip()
            self._task_started = time.monotonic()
            self._running = set()
            interval = self._interval()
            self._next_alive = self._task_started + interval if interval > 0 else None
        if self._ticker is None and self._quiet() and self._interval() > 0:
            self._ticker = threading.Thread(target=self._tick, name="db_deploy-still-running", daemon=True)
            self._ticker.start()

    def _host_done(self, result):
        with self._lock:
            self._running.discard(result.host.get_name())

    def v2_runner_on_start(self, host, task):
        with self._lock:
            self._running.add(host.get_name())
        super().v2_runner_on_start(host, task)

    # --- banners -----------------------------------------------------------------------------

    def v2_playbook_on_play_start(self, play):
        if not self._quiet():
            return super().v2_playbook_on_play_start(play)
        self._play = play
        name = play.get_name().strip()
        self._display.display("PLAY [%s]%s" % (name, " [CHECK MODE]" if play.check_mode else ""))

    def v2_playbook_on_task_start(self, task, is_conditional):
        self._task_begins(task)
        if not self._quiet():
            return super().v2_playbook_on_task_start(task, is_conditional)
        # The banner waits for a result worth showing (the default's logic when ok is hidden).
        self._task_type_cache[task._uuid] = "TASK"
        self._last_task_name = task.get_name().strip()

    def v2_playbook_on_handler_task_start(self, task):
        self._task_begins(task)
        if not self._quiet():
            return super().v2_playbook_on_handler_task_start(task)
        self._task_type_cache[task._uuid] = "RUNNING HANDLER"
        self._last_task_name = task.get_name().strip()

    def v2_playbook_on_include(self, included_file):
        if not self._quiet():
            super().v2_playbook_on_include(included_file)

    # --- results -----------------------------------------------------------------------------

    def _is_debug(self, result) -> bool:
        """A result whose message is meant for people: debug, or an assert's success_msg."""
        if result.task.action in C._ACTION_DEBUG:
            return True
        return result.task.action in ASSERT_ACTIONS and isinstance(result.result.get("msg"), str) and result.result["msg"] != ASSERT_DEFAULT_MSG

    @staticmethod
    def _is_summary(result) -> bool:
        """The deploy's report task: its result carries the closing summary (lines)."""
        return result.task.action.rpartition(".")[2] == "db_deploy_report" and isinstance(result.result.get("summary"), list)

    def _show_summary(self, result):
        self._display.display("\n".join(str(line) for line in result.result["summary"]))

    def _show_debug(self, result):
        text = debug_text(result.result)
        if text:
            self._display.display(text)

    def v2_runner_on_ok(self, result):
        self._host_done(result)
        if not self._quiet():
            return super().v2_runner_on_ok(result)
        self._handle_warnings_and_exception(result)
        if isinstance(result.task, TaskInclude):
            return
        if result.task.loop and "results" in result.result:
            return  # each item was shown as it came
        if self._is_debug(result):
            self._show_debug(result)
        elif self._is_summary(result):
            self._show_summary(result)
        elif result.result.get("changed", False):
            self._display.display("changed: [%s] %s" % (self.host_label(result), self._last_task_name or result.task.get_name().strip()), color=C.COLOR_CHANGED)
        # What a step removed or left alone, said by the step itself (no task of its own).
        if result.result.get("notice"):
            self._display.display(str(result.result["notice"]))

    def v2_runner_item_on_ok(self, result):
        if not self._quiet():
            return super().v2_runner_item_on_ok(result)
        self._handle_warnings_and_exception(result)
        if isinstance(result.task, TaskInclude):
            return
        if self._is_debug(result):
            self._show_debug(result)
        elif result.result.get("changed", False):
            self._display.display(
                "changed: [%s] %s (item=%s)"
                % (self.host_label(result), self._last_task_name or result.task.get_name().strip(), self._get_item_label(result.result)),
                color=C.COLOR_CHANGED,
            )

    def v2_runner_on_skipped(self, result):
        self._host_done(result)
        if not self._quiet():
            return super().v2_runner_on_skipped(result)
        self._handle_warnings_and_exception(result)

    def v2_runner_item_on_skipped(self, result):
        if not self._quiet():
            return super().v2_runner_item_on_skipped(result)

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._host_done(result)
        if self._quiet() and self._is_summary(result):
            self._show_summary(result)
            # The failure below is the host's: its message, not the summary again.
            for key in ("summary", "summary_file", "report"):
                result.result.pop(key, None)
        super().v2_runner_on_failed(result, ignore_errors)

    def v2_runner_on_unreachable(self, result):
        self._host_done(result)
        super().v2_runner_on_unreachable(result)

    def v2_runner_retry(self, result):
        if not self._quiet():
            return super().v2_runner_retry(result)
        msg = result.result.get("msg")
        if not msg:
            msg = "%s (%d retries left)" % (result.task_name or result.task, result.result.get("retries", 0) - result.result.get("attempts", 0))
        self._display.display("[%s] %s" % (self.host_label(result), " ".join(str(msg).split())), color=C.COLOR_DEBUG)

    # An async task's polls and its end say nothing a person needs: "still running" does.
    def v2_runner_on_async_poll(self, result):
        if not self._quiet():
            super().v2_runner_on_async_poll(result)

    def v2_runner_on_async_ok(self, result):
        if not self._quiet():
            super().v2_runner_on_async_ok(result)

    def v2_playbook_on_stats(self, stats):
        self._stop.set()
        with self._lock:
            self._running = set()
        super().v2_playbook_on_stats(stats)
