"""What an agent sees of the daemon under bubblewrap: its workspace and home, nothing of the daemon's own files.

Also the rules around running without a sandbox (`allow_unsandboxed`) and the variables handed to the agent
(`pass_env`), through the real configuration loader and the real `command` backend.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.agent_fixtures import SECRET_ENV, Events, GitDirHost, make_repo, plan
from tracker_bridge.agents import create_backend
from tracker_bridge.agents.handover import agent_workspace
from tracker_bridge.agents.pipeline import execute_run
from tracker_bridge.agents.sandbox import Sandbox, SandboxError, sandbox_status
from tracker_bridge.cli import app
from tracker_bridge.config import ConfigError, Settings, load_settings
from tracker_bridge.models import RunOutcome

needs_bwrap = pytest.mark.skipif(not sandbox_status()[0], reason=f"no usable bubblewrap: {sandbox_status()[1]}")


def write_config(tmp_path: Path, agent: str) -> Path:
    (tmp_path / "tickets").mkdir(exist_ok=True)
    if not (tmp_path / "origin").exists():
        make_repo(tmp_path / "origin")
    config = tmp_path / "tracker-bridge.toml"
    config.write_text(
        f"""
[bridge]
state = "sqlite:///{tmp_path / "state.db"}"
state_dir = "{tmp_path / "state"}"

[agent]
backend = "command"
{agent}

[[trackers]]
name = "t"
kind = "local"
url = "{tmp_path / "tickets"}"
repo = "r"
token_env = "FAKE_TRACKER_TOKEN"

[[repos]]
name = "r"
host = "local"
url = "{tmp_path / "origin"}"
token_env = "FAKE_HOST_TOKEN"
"""
    )
    return config


def load(config: Path) -> Settings:
    return load_settings(config, check_secrets=False)


SPY = """
import os, pathlib, sys
state, config, db, other = sys.argv[1:5]
seen = []
for label, path in (("state", state), ("other", other)):
    try:
        seen.append(f"{label} lists {sorted(os.listdir(path))}")
    except OSError as exc:
        seen.append(f"{label} unreadable {exc.errno}")
for label, path in (("config", config), ("db", db), ("other-file", other + "/secret.txt")):
    try:
        seen.append(f"{label} reads {pathlib.Path(path).read_bytes()[:60]!r}")
    except OSError as exc:
        seen.append(f"{label} unreadable {exc.errno}")
seen.append("env " + " ".join(sorted(f"{k}={v}" for k, v in os.environ.items())))
pathlib.Path("seen.txt").write_text("\\n".join(seen) + "\\n")
"""


@needs_bwrap
def test_an_agent_under_bubblewrap_sees_nothing_of_the_daemon(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in SECRET_ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-openai-for-the-agent")
    spy = tmp_path / "spy.py"
    spy.write_text(SPY)
    state = tmp_path / "state"
    other = state / "workspaces" / "OTHER-7"
    other.mkdir(parents=True)
    (other / "secret.txt").write_text("another ticket's code")
    (state / "runs" / "OTHER-7").mkdir(parents=True)
    (state / "runs" / "OTHER-7" / "attempt-1.jsonl").write_text('{"kind": "prompt"}\n')
    (tmp_path / "state.db").write_bytes(b"SQLite format 3\x00 the daemon's store")
    config = write_config(
        tmp_path,
        f'command = "{sys.executable} {spy} {state} {tmp_path / "tracker-bridge.toml"} {tmp_path / "state.db"} '
        f'{other}"\npass_env = ["OPENAI_API_KEY"]',
    )
    s = load(config)
    p = plan(tmp_path, s)
    report = execute_run(p, host=GitDirHost(tmp_path / "origin"), backend=create_backend(s), settings=s,
                         secrets=list(SECRET_ENV), on_event=Events())  # fmt: skip
    assert report.outcome is RunOutcome.SUCCEEDED, report.reason
    seen = (agent_workspace(p.workspace) / "seen.txt").read_text()
    lines = dict(line.split(" ", 1) for line in seen.splitlines())
    # the state folder is an empty tmpfs: only the path down to this run's own workspace exists in it
    assert lines["state"] == "lists ['workspaces']" or lines["state"].startswith("lists ['traces'"), seen
    assert "OTHER-7" not in seen and "runs" not in lines["state"]
    assert lines["other"].startswith("unreadable"), seen
    assert lines["other-file"].startswith("unreadable"), seen
    # the configuration file and the state database are masked (a read-only null device: nothing to read)
    assert lines["config"] in ("reads b''", "unreadable 13") and lines["db"] in ("reads b''", "unreadable 13"), seen
    # the variable named in pass_env reached the agent, no token did
    assert "OPENAI_API_KEY=sk-openai-for-the-agent" in lines["env"]
    assert not [v for v in SECRET_ENV.values() if v in seen]


def test_no_sandbox_needs_allow_unsandboxed(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load(write_config(tmp_path, 'command = "true"\nsandbox = "none"'))
    [problem] = caught.value.problems
    assert "[agent]" in problem or "agent.sandbox" in problem
    assert "allow_unsandboxed = true" in problem and "Fix:" in problem
    s = load(write_config(tmp_path, 'command = "true"\nsandbox = "none"\nallow_unsandboxed = true'))
    assert Sandbox.for_settings(s).mode == "rlimits"


def test_auto_without_bubblewrap_refuses_to_run_unconfined(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("tracker_bridge.agents.sandbox.find_bwrap", lambda: None)
    with pytest.raises(SandboxError, match="allow_unsandboxed = true"):
        Sandbox.choose("auto", allow_unsandboxed=False)
    assert Sandbox.choose("auto", allow_unsandboxed=True).mode == "rlimits"


def test_a_token_named_in_pass_env_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load(write_config(tmp_path, 'command = "true"\npass_env = ["OPENAI_API_KEY", "FAKE_HOST_TOKEN"]'))
    [problem] = caught.value.problems
    assert "pass_env" in problem and "FAKE_HOST_TOKEN" in problem and "Fix: remove 'FAKE_HOST_TOKEN'" in problem
    config = tmp_path / "tracker-bridge.toml"
    for command in ("run", "doctor"):
        result = CliRunner().invoke(app, [command, "--once", "-c", str(config)] if command == "run" else
                                    [command, "-c", str(config)])  # fmt: skip
        assert result.exit_code == 2 and "FAKE_HOST_TOKEN" in result.output, result.output


def test_doctor_spells_out_what_an_unsandboxed_agent_can_reach(tmp_path: Path) -> None:
    config = write_config(
        tmp_path, 'command = "true"\nsandbox = "none"\nallow_unsandboxed = true\npass_env = ["OPENAI_API_KEY"]'
    )
    text = config.read_text().replace('token_env = "FAKE_TRACKER_TOKEN"\n', "").replace(
        'token_env = "FAKE_HOST_TOKEN"\n', ""
    )
    config.write_text(text)
    result = CliRunner().invoke(app, ["doctor", "-c", str(config)], env={"OPENAI_API_KEY": ""})
    output = " ".join(result.output.split())
    assert "the agent runs unsandboxed ([agent] allow_unsandboxed = true); it can reach:" in output, output
    assert f"the state folder {tmp_path / 'state'}" in output
    assert str(config) in output and "the network" in output
    assert "pass_env hands the agent OPENAI_API_KEY (not set)" in output
