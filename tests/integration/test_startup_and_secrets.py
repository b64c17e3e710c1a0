"""Start-up: a rate-limited service is not a configuration error; the daemon's tokens leave its environment block.

- GitHub answering 429 at start-up: the checks are retried, and if it keeps failing the daemon says the failure is
  temporary and exits 1 (exit 2 stays for what the operator must fix); once GitHub answers again it starts.
- An unsandboxed agent (allowed on purpose) looks for the daemon's secret in /proc/<pid>/environ of every ancestor
  process and in its own environment: it finds nothing.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.agent_fixtures import make_repo
from tests.journey_helpers import local_calc_tracker, make_journey, write_hosted_config
from tests.sims.github import GitHubSim
from tests.sims.http import Request, Response
from tracker_bridge import cli
from tracker_bridge.cli import app
from tracker_bridge.gitutil import git
from tracker_bridge_connectors.github import client as github_client
from tracker_bridge_connectors.retry import RetryPolicy


def test_a_rate_limited_start_is_retried_then_reported_as_temporary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cli, "STARTUP_RETRY_DELAYS_S", (0.01, 0.01))
    # Each request's own retries keep their count but not their exponential pauses (half a minute per request).
    monkeypatch.setattr(github_client, "RetryPolicy", lambda: RetryPolicy(base_delay=0.01))
    with GitHubSim(tmp_path / "gh") as gh:
        monkeypatch.setenv("GITHUB_TOKEN", gh.token)
        gh.create_org("acme")
        gh.create_repo("acme/shop", seed=make_repo(tmp_path / "seed"), collaborators={"alice": "write"})
        _, tracker = local_calc_tracker(tmp_path)
        config = write_hosted_config(
            tmp_path, tracker, host="github", url=gh.clone_url("acme/shop"), api_url=gh.url, token_env="GITHUB_TOKEN"
        )
        limited = {"left": 10_000}

        def rate_limit(req: Request) -> Response | None:
            if limited["left"] <= 0:
                return None
            limited["left"] -= 1
            return Response(429, {"message": "API rate limit exceeded"}, {"Retry-After": "0"})

        gh.server.before.insert(0, rate_limit)
        result = CliRunner().invoke(app, ["run", "--once", "-c", str(config)])
        text = " ".join(result.output.split())
        assert result.exit_code == 1, text
        assert "not a configuration problem" in text and "start it again later" in text
        assert "configuration error" not in text

        # rate-limited for a while only: the start-up retry rides it out and the daemon runs its cycle
        limited["left"] = 12
        result = CliRunner().invoke(app, ["run", "--once", "-c", str(config)])
        assert result.exit_code == 0, result.output
        assert "checking again" in result.output


SPY = r"""
import os, pathlib
secret = os.environ["SPY_LOOKS_FOR"][::-1]  # given reversed, so the clue itself is not what it finds
found = []
pid = os.getpid()
while pid > 1:
    try:
        if secret.encode() in pathlib.Path(f"/proc/{pid}/environ").read_bytes():
            found.append(pid)
        stat = pathlib.Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        break
    pid = int(stat.rsplit(")", 1)[1].split()[1])
pathlib.Path("environ-scan.txt").write_text(f"found in {found}\n" if found else "found nowhere\n")
"""


def test_an_unsandboxed_agent_finds_no_token_in_the_daemons_environ(tmp_path: Path) -> None:
    spy = tmp_path / "spy.py"
    spy.write_text(SPY)
    journey = make_journey(tmp_path, agent_command=f"{sys.executable} {spy}")
    text = journey.config.read_text().replace(
        "[agent]\n", '[agent]\nsandbox = "none"\nallow_unsandboxed = true\npass_env = ["SPY_LOOKS_FOR"]\n'
    )
    journey.config.write_text(text)
    secret = "whsec-4f1a-never-in-environ"
    # the spy may only know what to look for; the webhook secret is one of the daemon's secrets
    result = journey.run_daemon_process(env={"TRACKER_BRIDGE_WEBHOOK_SECRET": secret, "SPY_LOOKS_FOR": secret[::-1]})
    assert result.returncode == 0, result.stderr
    # the spy's report is part of the agent's work: read it where the daemon's clone committed it
    ws = tmp_path / ".tracker-bridge" / "workspaces" / "DEMO-1"
    assert (ws / "environ-scan.txt").read_text() == "found nowhere\n"
    assert "environ-scan.txt" in git(ws, "log", "--name-only", "--format=")


def test_the_spy_does_find_a_secret_that_stays_in_the_environment(tmp_path: Path) -> None:
    """The scan above can fail: a variable that is not one of the daemon's secrets is found where it is."""
    spy = tmp_path / "spy.py"
    spy.write_text(SPY)
    journey = make_journey(tmp_path, agent_command=f"{sys.executable} {spy}")
    text = journey.config.read_text().replace(
        "[agent]\n", '[agent]\nsandbox = "none"\nallow_unsandboxed = true\npass_env = ["SPY_LOOKS_FOR"]\n'
    )
    journey.config.write_text(text)
    plain = "not-a-secret-4711"
    result = journey.run_daemon_process(env={"SOME_SETTING": plain, "SPY_LOOKS_FOR": plain[::-1]})
    assert result.returncode == 0, result.stderr
    ws = tmp_path / ".tracker-bridge" / "workspaces" / "DEMO-1"
    assert (ws / "environ-scan.txt").read_text().startswith("found in [")
