# A callback plugin of rewind's Ansible test (tests/ansible.rs): records the
# result of every task on every host as one JSON line in $REWIND_RECORD, so
# that the test reads what each script printed and how it exited without
# parsing Ansible's display. Ansible's own output is left as it is.
import json
import os
import time

from ansible.plugins.callback import CallbackBase


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "rewind_record"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self):
        super().__init__()
        self._out = open(os.environ["REWIND_RECORD"], "a", buffering=1)

    def _record(self, status, result):
        r = result._result
        self._out.write(
            json.dumps(
                {
                    "status": status,
                    "host": result._host.get_name(),
                    "task": result._task.get_name(),
                    "rc": r.get("rc"),
                    "changed": bool(r.get("changed")),
                    "stdout": r.get("stdout", ""),
                    "stderr": r.get("stderr", ""),
                    "msg": str(r.get("msg", "")),
                    "time": time.time(),
                }
            )
            + "\n"
        )

    def v2_playbook_on_task_start(self, task, is_conditional):
        self._out.write(json.dumps({"start": task.get_name(), "time": time.time()}) + "\n")

    def v2_runner_on_ok(self, result):
        self._record("ok", result)

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._record("failed", result)

    def v2_runner_on_skipped(self, result):
        self._record("skipped", result)

    def v2_runner_on_unreachable(self, result):
        self._record("unreachable", result)
