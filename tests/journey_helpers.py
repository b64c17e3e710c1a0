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

import pytest
from typer.testing import CliRunner

from tests.agent_fixtures import TEST_COMMAND
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
from tracker_bridge_connectors.local import TicketFile

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
    state_url: str | None = None,
) -> Journey:
    repo = make_sample_repo(root / "repo")
    folder = make_ticket_folder(root / "tickets", tickets or {"DEMO-1": GOOD_TICKET, "DEMO-2": VAGUE_TICKET})
    if agent_command is None:
        agent = make_stand_in_agent(root / "agent.py")
        agent_command = f"{Path(sys.executable).as_posix()} {agent.as_posix()}"
    config = write_config(root, agent_command=agent_command, tickets="tickets", repo="repo", extra=extra_config)
    if state_url is not None:  # another state store than the demo's SQLite file (the `state_url` fixture)
        text = config.read_text(encoding="utf-8")
        config.write_text(text.replace('state = "sqlite:///state.db"', f"state = {state_url!r}", 1), encoding="utf-8")
    return Journey(root=root, config=config, tickets=folder, repo=repo)


# --- the journeys on a tracker service (GitHub, GitLab, Jira, Linear) -------------------------------------------------

# The calc.add bug of the GitHub and GitLab journeys (the repository is tests.agent_fixtures.make_repo), a vague
# ticket, and an agent script that applies the one known fix.
CALC_TITLE = "calc.add returns the difference instead of the sum"
CALC_TICKET = """## Bug
`add(a, b)` in `calc.py` subtracts instead of adding.

## Steps to reproduce
Run `python -m pytest -q test_calc.py`.

## Expected
`add(2, 3)` returns 5.

## Actual
`add(2, 3)` returns -1, and `test_add` in `test_calc.py` fails.

## Acceptance criteria
- [ ] `add` in `calc.py` returns `a + b`
- [ ] `test_add` in `test_calc.py` passes
"""
VAGUE_TICKET_TEXT = "Improve performance? Maybe explore caching, think about the architecture."
CALC_AGENT = """import pathlib
p = pathlib.Path("calc.py")
p.write_text(p.read_text().replace("a - b", "a + b"))
"""


def write_hosted_config(
    tmp: Path, tracker_toml: str, *, host: str, url: str, api_url: str, token_env: str, extra: str = ""
) -> Path:
    """The config of a calc journey: CALC_AGENT as the agent, `tracker_toml` as the [[trackers]] table, and the
    repository "shop" on the code host `host` (its git `url`, its `api_url`, its token in `token_env`)."""
    agent = tmp / "agent.py"
    agent.write_text(CALC_AGENT)
    cfg = tmp / "tracker-bridge.toml"
    cfg.write_text(
        f"""
[bridge]
state = "sqlite:///{tmp / "state.db"}"
state_dir = "{tmp / "state"}"

{extra}

[agent]
backend = "command"
command = "{sys.executable} {agent}"
sandbox = "none"
allow_unsandboxed = true

{tracker_toml}

[[repos]]
name = "shop"
host = "{host}"
url = "{url}"
api_url = "{api_url}"
token_env = "{token_env}"
base_branch = "main"
test_command = '{TEST_COMMAND}'
"""
    )
    return cfg


def local_calc_tracker(tmp: Path) -> tuple[Path, str]:
    """A ticket folder holding DEMO-1 (the calc.add bug, labelled agent-ready) and the [[trackers]] table for it,
    feeding the repository "shop"."""
    tickets = tmp / "tickets"
    tickets.mkdir()
    (tickets / "DEMO-1.md").write_text(
        f"---\ntitle: {CALC_TITLE}\nstatus: Todo\nlabels: [agent-ready]\n---\n{CALC_TICKET}", encoding="utf-8"
    )
    tracker = f"""
[[trackers]]
name = "demo"
kind = "local"
url = "{tickets}"
repo = "shop"
"""
    return tickets, tracker


def demo_ticket_parts(ticket: str) -> tuple[str, str]:
    """(title, description) of a demo ticket written with YAML front matter."""
    _, front, body = ticket.split("---", 2)
    title = next(line.split(":", 1)[1].strip() for line in front.splitlines() if line.startswith("title:"))
    return title, body.strip()


def sample_repo_and_agent(tmp: Path) -> tuple[Path, Path]:
    """The demo's sample repository (textkit, with its failing test) and its stand-in agent, under `tmp`."""
    return make_sample_repo(tmp / "textkit"), make_stand_in_agent(tmp / "agent.py")


def write_service_config(
    tmp_path: Path,
    tracker_toml: str,
    *,
    repo: Path,
    agent: Path,
    allowed_actors: list[str],
    state_url: str = "sqlite:///state.db",
) -> Path:
    """The config of a demo journey on a tracker service: `tracker_toml` is its [[trackers]] table (feeding the
    repository "textkit"), the code host is the local git repository `repo`, the agent the script `agent`, the state
    store `state_url`."""
    config = tmp_path / "tracker-bridge.toml"
    config.write_text(
        f"""
[bridge]
state = {state_url!r}
state_dir = ".tracker-bridge"

[trigger]
label = "agent-ready"
column = "Agent"
allowed_actors = {json.dumps(allowed_actors)}

[agent]
backend = "command"
command = "{Path(sys.executable).as_posix()} {agent.as_posix()}"
timeout = 120

{tracker_toml.strip()}

[[repos]]
name = "textkit"
host = "local"
url = "{repo.as_posix()}"
base_branch = "main"
test_command = "{Path(sys.executable).as_posix()} -m pytest -q -p no:cacheprovider"
""",
        encoding="utf-8",
    )
    return config


def use_agent_script(tmp: Path, monkeypatch: pytest.MonkeyPatch, source: str, name: str = "agent.py") -> Path:
    """Make the Python `source` the `command` backend's agent of every daemon the test starts (through the
    documented environment override); returns the script's path."""
    agent = tmp / name
    agent.write_text(source, encoding="utf-8")
    monkeypatch.setenv("TRACKER_BRIDGE__AGENT__COMMAND", f"{sys.executable} {agent}")
    return agent


def run_once(config: Path, *, catch_exceptions: bool = True) -> str:
    """`tracker-bridge run --once -c config`, which must succeed; its output."""
    result = CliRunner().invoke(app, ["run", "--once", "-c", str(config)], catch_exceptions=catch_exceptions)
    assert result.exit_code == 0, (result.output, result.exception)
    return result.output


def merge_the_agent_branch(repo: Path) -> None:
    """The merge of the one agent branch into main in the local repository `repo`."""
    branches = git(repo, "branch", "--list", "agent/*", "--format=%(refname:short)").split()
    assert len(branches) == 1
    git(repo, "merge", "-q", "--no-ff", "-m", "merge the agent's fix", branches[0])
