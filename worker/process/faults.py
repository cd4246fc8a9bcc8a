"""Named fault points, for tests that must crash something at one exact step (never set in production).

A crash-consistency claim ("no request is stranded whatever step Redis dies at") is only proven by
making the crash happen at each step on purpose, not by killing things at random and hoping to
hit a window of milliseconds. So the worker calls `fault_point(name)` at each step of the hand-off
between RQ and the request records, and of a webhook delivery. It does nothing unless the process
environment names that point:

- `RIFE_FAULT_POINT=<name>`: the point to act at (the first time it is reached in this process);
- `RIFE_FAULT_ACTION=kill`: SIGKILL this process there (a worker dying at that step), or
  `RIFE_FAULT_ACTION=pause` (the default): create `<RIFE_FAULT_DIR>/<name>.reached`, then wait until
  the test creates `<RIFE_FAULT_DIR>/<name>.go` (at most 120 s), so the test can kill or restart
  Redis or storage while the worker stands exactly there.

Points: `before_prepare` (RQ popped the job, before it records the start), `before_run` (RQ's
bookkeeping done, the job function entered), `before_mark_started` (heartbeat names the request,
before our record says IN_PROGRESS), `after_mark_started`, `before_finish` (result stored, outcome
not recorded), `after_finish` (outcome recorded, before RQ records the job's success),
`webhook_after_claim` (webhook marked sent, before the POST), `webhook_after_post`.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

POINTS = (
    "before_prepare",
    "before_run",
    "before_mark_started",
    "after_mark_started",
    "before_finish",
    "after_finish",
    "webhook_after_claim",
    "webhook_after_post",
)
PAUSE_LIMIT_S = 120.0

_fired: set[str] = set()


def fault_point(name: str) -> None:
    """Act at this step if the environment names it (once per process); otherwise return at once."""
    if os.environ.get("RIFE_FAULT_POINT") != name or name in _fired:
        return
    _fired.add(name)
    if os.environ.get("RIFE_FAULT_ACTION", "pause") == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    folder = Path(os.environ.get("RIFE_FAULT_DIR", "."))
    (folder / f"{name}.reached").touch()
    go = folder / f"{name}.go"
    deadline = time.monotonic() + PAUSE_LIMIT_S
    while not go.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
