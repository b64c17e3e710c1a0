"""Shared pieces of the agent tests: a small buggy repository on disk, a git code host over it, settings, a plan."""

from __future__ import annotations

import shlex
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from tracker_bridge.agents import create_backend
from tracker_bridge.agents.pipeline import RunPlan, RunReport, execute_run
from tracker_bridge.config import Settings, settings_from_dict
from tracker_bridge.gitutil import git
from tracker_bridge.models import PullRequest, Ticket
from tracker_bridge.protocols import AgentEvent, Problem

CALC = "def add(a, b):\n    return a - b\n"
TEST_CALC = "from calc import add\n\n\ndef test_add():\n    assert add(2, 3) == 5\n"
TEST_COMMAND = f"{shlex.quote(sys.executable)} -m pytest -q -p no:cacheprovider"


def make_repo(path: Path, files: dict[str, str] | None = None) -> Path:
    """A git repository on `main` with a bug in calc.add and a test that shows it."""
    path.mkdir(parents=True, exist_ok=True)
    content = {"calc.py": CALC, "test_calc.py": TEST_CALC, ".gitignore": "__pycache__/\n.pytest_cache/\n"}
    content.update(files or {})
    for name, text in content.items():
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        (path / name).write_text(text, encoding="utf-8")
    subprocess.run(["git", "init", "-q", "-b", "main", str(path)], check=True)
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", "initial")
    return path


class GitDirHost:
    """A CodeHost over a repository folder: enough for the pipeline, which only clones."""

    name = "dir"

    def __init__(self, origin: Path) -> None:
        self.origin = origin

    def check(self) -> list[Problem]:
        return []

    def clone(self, dest: Path, branch: str | None = None) -> None:
        subprocess.run(["git", "clone", "-q", str(self.origin), str(dest)], check=True)
        if branch and self.branch_exists(branch):
            git(dest, "checkout", "-q", branch)

    def push(self, workspace: Path, branch: str) -> None:
        git(workspace, "push", "-q", "-f", "origin", branch)

    def branch_exists(self, branch: str) -> bool:
        return bool(git(self.origin, "branch", "--list", branch))

    def find_pull_request(self, branch: str) -> PullRequest | None:
        return None

    def open_pull_request(self, branch: str, title: str, body: str) -> PullRequest:
        return PullRequest(id=branch, url=f"file://{self.origin}#{branch}", branch=branch, base="main", title=title)

    def get_pull_request(self, pr_id: str) -> PullRequest:
        raise NotImplementedError


def settings(tmp_path: Path, **agent: Any) -> Settings:
    if agent.get("sandbox") == "none":
        agent.setdefault("allow_unsandboxed", True)  # the tests that ask for no sandbox mean it
    tickets = tmp_path / "tickets"
    tickets.mkdir(exist_ok=True)
    data = {
        "bridge": {"state_dir": str(tmp_path / "state")},
        "agent": {"backend": "command", "command": "true", "timeout": 60, **agent},
        "trackers": [
            {"name": "t", "kind": "local", "url": str(tickets), "repo": "r", "token_env": "FAKE_TRACKER_TOKEN"}
        ],
        "repos": [{"name": "r", "host": "local", "url": str(tmp_path / "origin"), "test_command": TEST_COMMAND,
                   "token_env": "FAKE_HOST_TOKEN"}],
    }  # fmt: skip
    return settings_from_dict(data, base_dir=tmp_path, check_secrets=False)


def ticket(**kw: Any) -> Ticket:
    values: dict[str, Any] = {"ref": "DEMO-1", "tracker": "t", "title": "Fix add", "description": "add(2, 3) must be 5"}
    values.update(kw)
    return Ticket(**values)


def plan(tmp_path: Path, s: Settings, t: Ticket | None = None, daily_left: float | None = None) -> RunPlan:
    t = t or ticket()
    return RunPlan(
        ticket=t,
        repo=s.repo("r"),
        branch=t.branch,
        workspace=tmp_path / "state" / "workspaces" / t.key,
        trace_path=tmp_path / "state" / "traces" / f"{t.key}-1.jsonl",
        feedback=[],
        daily_budget_left_usd=daily_left,
    )


class Events(list[AgentEvent]):
    def __call__(self, event: AgentEvent) -> None:
        self.append(event)


# Two secrets in the environment of an agent run that the agent must never see.
SECRET_ENV = {"FAKE_TRACKER_TOKEN": "tracker-secret-4711", "FAKE_HOST_TOKEN": "host-secret-4712"}


def agent_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, api_key: str) -> Path:
    """What an agent run starts from: the API key, the SECRET_ENV secrets, the buggy repository at `origin`."""
    monkeypatch.setenv("ANTHROPIC_API_KEY", api_key)
    for name, value in SECRET_ENV.items():
        monkeypatch.setenv(name, value)
    make_repo(tmp_path / "origin")
    return tmp_path


def run_agent(
    tmp_path: Path, daily_left: float | None = None, secrets: Sequence[str] = tuple(SECRET_ENV), **agent: Any
) -> tuple[RunReport, RunPlan, Events]:
    """One run of the pipeline on the repository at `origin`, with the `[agent]` settings `agent`."""
    s = settings(tmp_path, **agent)
    p = plan(tmp_path, s, daily_left=daily_left)
    events = Events()
    report = execute_run(p, host=GitDirHost(tmp_path / "origin"), backend=create_backend(s), settings=s,
                         secrets=list(secrets), on_event=events)  # fmt: skip
    return report, p, events
