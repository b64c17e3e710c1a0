"""Child processes that can be stopped whole and die with the daemon (agent commands, tests, git)."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess

_PR_SET_PDEATHSIG = 1

# The parent-death signal reaches only the direct child. So the direct child is this small shell guard: it runs the
# command in the background (stdin kept) and, on SIGTERM (the daemon died) or SIGHUP, kills its whole process group,
# grandchildren included. Used for unsandboxed agent commands and for every git command the daemon runs.
GUARD = 'exec 3<&0; trap "kill -KILL 0" TERM HUP; "$@" <&3 3<&- & wait $!'


def child_setup(death_signal: int = signal.SIGKILL) -> None:
    """In the child before exec: its own process group, so a cap or timeout kills the agent and everything it
    started; and `death_signal` when the daemon dies, so a killed daemon leaves no agent working behind its back."""
    os.setsid()
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, death_signal)
    except OSError:
        pass


def kill_group(proc: subprocess.Popen[bytes] | subprocess.Popen[str]) -> None:
    """Kill the process and its whole group; waits for it."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
