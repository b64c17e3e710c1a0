"""Failpoints: named places where a test can make the daemon die by SIGKILL, to prove a restart repeats nothing.

Set TRACKER_BRIDGE_FAILPOINT=<name> (e.g. after_push) and the process kills itself, without any clean-up, the
first time it passes that place. Unset (always, in production), a failpoint costs one dictionary lookup.
"""

from __future__ import annotations

import os
import signal

ENV = "TRACKER_BRIDGE_FAILPOINT"

# Every name the engine passes, in journey order; tests iterate over this list.
POINTS = (
    "after_score",
    "after_move",
    "after_comment",
    "after_push",
    "after_open_pr",
    "after_link_pr",
)


def failpoint(name: str) -> None:
    if os.environ.get(ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)
