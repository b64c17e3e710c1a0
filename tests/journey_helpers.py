"""Setting up a whole journey for tests: a sample repository with a failing test, tickets, an agent, a config.

Built on the same builders as `tracker-bridge demo`, so what the demo shows is what the tests prove.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from connectors.local import TicketFile
from tracker_bridge.cli import app
from tracker_bridge.demo import (
    GOOD_TICKET,
    VAGUE_TICKET,
    make_sample_repo,
    make_stand_in_agent,
    make_ticket_folder,
    write_config,
)
from tracker_bridge.gitutil import git
from tracker_bridge.protocols import STATUS_MARKER

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Journey:
    root: Path
    config: Path
    tickets: Path
    repo: Path

    def ticket(self, key: str) -> TicketFile:
        return TicketFile(self.tickets / f"{key}.md")

    def column(self, key: str) -> str:
        return str(self.ticket(key).meta.get("status"))

    def comment_count(self, key: str) -> int:
        return (self.tickets / f"{key}.md").read_text(encoding="utf-8").count(STATUS_MARKER)

    def agent_branches(self) -> list[str]:
        out = git(self.repo, "for-each-ref", "--format=%(refname:short)", "refs/heads/agent/")
        return [b for b in out.splitlines() if b]

    def pull_requests(self) -> list[dict[str, Any]]:
        pulls = self.repo / ".git" / "tracker-bridge" / "pulls"
        return [json.loads(p.read_text()) for p in sorted(pulls.glob("*.json"))] if pulls.is_dir() else []

    def merge(self, branch: str) -> None:
        git(self.repo, "merge", "-q", "--no-ff", "-m", f"Merge {branch}", branch)

    def snapshot(self) -> dict[str, str]:
        """Every ticket file's text, to show that a cycle changed nothing."""
        return {p.name: p.read_text(encoding="utf-8") for p in sorted(self.tickets.glob("*.md"))}

    def cli(self, *args: str) -> Any:
        result = CliRunner().invoke(app, [*args, "-c", str(self.config)], catch_exceptions=False)
        return result

    def run_once(self) -> Any:
        result = self.cli("run", "--once")
        assert result.exit_code == 0, result.output
        return result

    def status(self) -> list[dict[str, Any]]:
        result = self.cli("status", "--json")
        assert result.exit_code == 0, result.output
        return list(json.loads(result.stdout))

    def run_daemon_process(
        self, env: dict[str, str] | None = None, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        """`tracker-bridge run --once` as a real process (so it can be SIGKILLed)."""
        return subprocess.run(
            [sys.executable, "-m", "tracker_bridge.cli", "run", "--once", "-c", str(self.config)],
            cwd=self.root,
            env={**os.environ, **(env or {})},
            capture_output=True,
            text=True,
            timeout=timeout,
        )


def make_journey(
    root: Path,
    *,
    tickets: dict[str, str] | None = None,
    agent_command: str | None = None,
    extra_config: str = "",
) -> Journey:
    repo = make_sample_repo(root / "repo")
    folder = make_ticket_folder(root / "tickets", tickets or {"DEMO-1": GOOD_TICKET, "DEMO-2": VAGUE_TICKET})
    if agent_command is None:
        agent = make_stand_in_agent(root / "agent.py")
        agent_command = f"{Path(sys.executable).as_posix()} {agent.as_posix()}"
    config = write_config(root, agent_command=agent_command, tickets="tickets", repo="repo", extra=extra_config)
    return Journey(root=root, config=config, tickets=folder, repo=repo)
