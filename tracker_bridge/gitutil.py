"""Thin helpers over the real git CLI, shared by workspaces and the local git code host."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

# Commits made by the daemon carry this identity, whatever the machine's git configuration says.
BOT_NAME = "tracker-bridge"
BOT_EMAIL = "tracker-bridge@localhost"


class GitError(Exception):
    def __init__(self, args: list[str], returncode: int, stderr: str) -> None:
        self.returncode = returncode
        self.stderr = stderr.strip()
        super().__init__(f"git {' '.join(args)} failed ({returncode}): {self.stderr}")


def git_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        GIT_AUTHOR_NAME=BOT_NAME,
        GIT_AUTHOR_EMAIL=BOT_EMAIL,
        GIT_COMMITTER_NAME=BOT_NAME,
        GIT_COMMITTER_EMAIL=BOT_EMAIL,
        GIT_TERMINAL_PROMPT="0",
    )
    return env


def git(cwd: Path, *args: str, check: bool = True, env: dict[str, str] | None = None) -> str:
    """Run git in `cwd` and return its standard output, stripped."""
    proc = subprocess.run(
        ["git", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=env or git_env(),
        check=False,
    )
    if check and proc.returncode != 0:
        raise GitError(list(args), proc.returncode, proc.stderr)
    return proc.stdout.strip()


def git_ok(cwd: Path, *args: str) -> bool:
    """True when the git command exits 0 (for questions like "is A an ancestor of B?")."""
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, env=git_env(), check=False).returncode == 0
