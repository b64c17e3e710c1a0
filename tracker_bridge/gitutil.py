"""Every git command the daemon runs, hardened: git never executes anything a repository asks it to.

The daemon runs git outside the sandbox, with its credentials at hand. A repository's `.git/config` and its
attributes can make git run programs (hooks, `core.fsmonitor`, clean/smudge filters, diff/merge drivers, `include`
of another config, a credential helper, `core.sshCommand`...). So the daemon only ever runs git on repositories the
agent never saw (its own clones, see `agents/handover.py`), and every git call goes through `git_env()` and
`git_argv()`:

- an environment built from nothing (PATH, HOME, LANG, the bot's identity): no token of the daemon's reaches git
  unless the caller adds it for that one call (as the GitHub and GitLab hosts do with `http.extraHeader`);
- no system or user configuration (`GIT_CONFIG_NOSYSTEM`, `GIT_CONFIG_GLOBAL=/dev/null`);
- on the command line (which beats any repository config): hooks looked up in /dev/null (so there are none), no
  fsmonitor, no attributes file, no credential helper, the transfer low-speed limit. (Git drops command-line
  settings when it starts the receiving side of a push to a repository on disk, so the local code host's own
  server-side hooks still run, as a real server's would: that repository is the operator's, not the agent's.)
- a timeout on every call (the process group is killed, helpers included), and a stalled HTTP transfer aborts
  after `http.lowSpeedTime`; every git process dies with the daemon (a guard shell kills its group on SIGTERM,
  which the kernel sends when the daemon dies).
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from tracker_bridge.agents import process

# Commits made by the daemon carry this identity, whatever the machine's git configuration says.
BOT_NAME = "tracker-bridge"
BOT_EMAIL = "tracker-bridge@localhost"

# Seconds one git command may take. Clones and pushes of big repositories take a while; a stall is caught sooner
# by the low-speed limit (less than LOW_SPEED_BYTES per second for LOW_SPEED_S seconds aborts the transfer).
DEFAULT_TIMEOUT_S = 600.0
LOW_SPEED_BYTES = 1
LOW_SPEED_S = 60
_timeout_s = DEFAULT_TIMEOUT_S


class GitError(Exception):
    def __init__(self, args: list[str], returncode: int, stderr: str) -> None:
        self.returncode = returncode
        self.stderr = stderr.strip()
        super().__init__(f"git {' '.join(args)} failed ({returncode}): {self.stderr}")


class GitTimeout(GitError):
    """A git command did not finish within its timeout and was killed (with everything it started)."""


def set_timeout(seconds: float) -> None:
    """The timeout of every git command from now on (tests shorten it; the daemon keeps the default)."""
    global _timeout_s
    _timeout_s = seconds


def timeout_s() -> float:
    return _timeout_s


def git_env() -> dict[str, str]:
    """The whole environment of a daemon git command: nothing of the daemon's own environment but PATH, HOME (for
    ssh) and the locale; no system or user git configuration."""
    env = {k: os.environ[k] for k in ("PATH", "HOME", "LANG", "LC_ALL", "TZ") if k in os.environ}
    env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
    env.update(
        GIT_CONFIG_NOSYSTEM="1",
        GIT_CONFIG_GLOBAL=os.devnull,
        GIT_AUTHOR_NAME=BOT_NAME,
        GIT_AUTHOR_EMAIL=BOT_EMAIL,
        GIT_COMMITTER_NAME=BOT_NAME,
        GIT_COMMITTER_EMAIL=BOT_EMAIL,
        GIT_TERMINAL_PROMPT="0",
        GIT_ASKPASS="/bin/false",
        SSH_ASKPASS="/bin/false",
        GIT_PAGER="cat",
        GIT_OPTIONAL_LOCKS="0",
    )
    return env


def git_argv(*args: str) -> list[str]:
    """`git` with the settings no repository configuration may override (the command line wins over any file).
    Hooks are looked up in /dev/null, where none can ever be created."""
    return [
        "git",
        "-c", f"core.hooksPath={os.devnull}",
        "-c", "core.fsmonitor=false",
        "-c", f"core.attributesFile={os.devnull}",
        "-c", "credential.helper=",
        "-c", "core.sshCommand=ssh",
        "-c", "protocol.ext.allow=never",
        "-c", "init.defaultBranch=main",
        "-c", f"http.lowSpeedLimit={LOW_SPEED_BYTES}",
        "-c", f"http.lowSpeedTime={LOW_SPEED_S}",
        *args,
    ]  # fmt: skip


def run_git(
    cwd: Path,
    args: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    timeout: float | None = None,
    input_text: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run hardened git in `cwd`; kills its whole process group at the timeout (raises GitTimeout)."""
    limit = _timeout_s if timeout is None else timeout
    argv = ["/bin/sh", "-c", process.GUARD, "tracker-bridge-git", *git_argv(*args)]
    proc = subprocess.Popen(
        argv,
        cwd=cwd,
        env=dict(env) if env is not None else git_env(),
        stdin=subprocess.PIPE if input_text is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: process.child_setup(signal.SIGTERM),
    )
    try:
        out, errors = proc.communicate(input=input_text, timeout=limit)
    except subprocess.TimeoutExpired:
        process.kill_group(proc)
        out, errors = proc.communicate()
        raise GitTimeout(
            list(args), -9, f"git {args[0] if args else ''} did not finish within {limit:g} s and was killed"
        ) from None
    return subprocess.CompletedProcess(argv, proc.returncode, out, errors)


def git(
    cwd: Path, *args: str, check: bool = True, env: Mapping[str, str] | None = None, timeout: float | None = None
) -> str:
    """Run git in `cwd` and return its standard output, stripped."""
    proc = run_git(cwd, args, env=env, timeout=timeout)
    if check and proc.returncode != 0:
        raise GitError(list(args), proc.returncode, proc.stderr)
    return proc.stdout.strip()


def git_ok(cwd: Path, *args: str) -> bool:
    """True when the git command exits 0 (for questions like "is A an ancestor of B?")."""
    return run_git(cwd, args).returncode == 0
