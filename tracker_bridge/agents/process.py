"""Starting agent processes so that they can be stopped whole and die with the daemon."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

_PR_SET_PDEATHSIG = 1


def child_setup(death_signal: int = signal.SIGKILL) -> None:
    # Own process group, so a cap or timeout kills the agent and everything it started; and a signal when the
    # daemon dies, so a killed daemon leaves no agent working on behind its back.
    os.setsid()
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, death_signal)
    except OSError:
        pass


def start(
    argv: Sequence[str] | str,
    *,
    cwd: Path,
    env: Mapping[str, str],
    shell: bool = False,
    stdin: int | None = subprocess.PIPE,
) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        argv,
        cwd=cwd,
        env=dict(env),
        shell=shell,
        stdin=stdin,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        preexec_fn=child_setup,
    )


def kill_group(proc: subprocess.Popen[bytes]) -> None:
    """Kill the process and its whole group; waits for it."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def scrubbed_env(secrets: Sequence[str], extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The daemon's environment without any variable that holds a tracker, code-host or API secret."""
    env = {k: v for k, v in os.environ.items() if k not in set(secrets) and not k.startswith("TRACKER_BRIDGE__")}
    if extra:
        env.update(extra)
    return env
