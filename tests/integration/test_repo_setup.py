"""`[[repos]] setup_command` and `.tracker-bridge/setup.sh`: what a repository's tests need is installed in the fresh
workspace, in the sandbox, with the network, before the agent; the tests then pass with no network. A failing set-up
fails the ticket with its output and spends no agent token.

The package index is local: a tiny wheel (`tbdemo_dep`, not installed on this machine) is built into a folder and
pip installs it from there (`--no-index --find-links`), so nothing leaves the machine.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import json
import shlex
import sys
import zipfile
from pathlib import Path

import pytest

from tests.agent_fixtures import make_repo
from tests.journey_helpers import CALC_AGENT, CALC_TICKET, CALC_TITLE, run_once
from tracker_bridge.agents.sandbox import Sandbox, sandbox_status
from tracker_bridge.agents.setup import remove_workspace
from tracker_bridge.config import RepoConfig
from tracker_bridge.gitutil import git
from tracker_bridge_connectors.local import TicketFile

PY = shlex.quote(sys.executable)
TEST_WITH_DEP = (
    "import tbdemo_dep\nfrom calc import add\n\n\ndef test_add():\n    assert add(2, 3) == tbdemo_dep.FIVE\n"
)
TEST_COMMAND = f"env PYTHONPATH=.deps {PY} -m pytest -q -p no:cacheprovider"


def build_wheel(folder: Path) -> Path:
    """tbdemo_dep-1.0-py3-none-any.whl, written by hand (a wheel is a zip with a dist-info): no build backend."""
    folder.mkdir(parents=True, exist_ok=True)
    files = {
        "tbdemo_dep/__init__.py": "FIVE = 5\n",
        "tbdemo_dep-1.0.dist-info/METADATA": "Metadata-Version: 2.1\nName: tbdemo_dep\nVersion: 1.0\n",
        "tbdemo_dep-1.0.dist-info/WHEEL": (
            "Wheel-Version: 1.0\nGenerator: hand\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        ),
    }
    record = []
    for name, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
        record.append(f"{name},sha256={digest},{len(text.encode())}")
    record.append("tbdemo_dep-1.0.dist-info/RECORD,,")
    files["tbdemo_dep-1.0.dist-info/RECORD"] = "\n".join(record) + "\n"
    wheel = folder / "tbdemo_dep-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        for name, text in files.items():
            zf.writestr(name, text)
    return wheel


@pytest.fixture
def isolated() -> None:
    if not sandbox_status("auto")[0]:
        pytest.skip("bubblewrap cannot isolate here: the no-network test run cannot be shown")


def write_setup_config(tmp: Path, setup_command: str, extra_repo: str = "") -> tuple[Path, Path, Path]:
    """A local ticket folder with the calc bug labelled, the calc repository whose test imports tbdemo_dep, a
    configuration running the calc agent in bubblewrap. Returns (config, tickets, repo)."""
    repo = make_repo(
        tmp / "repo", {"test_calc.py": TEST_WITH_DEP, ".tracker-bridge/setup.sh": "echo ok > .setup-ran\n"}
    )
    tickets = tmp / "tickets"
    tickets.mkdir()
    (tickets / "DEMO-1.md").write_text(
        f"---\ntitle: {CALC_TITLE}\nstatus: Todo\nlabels: [agent-ready]\n---\n{CALC_TICKET}", encoding="utf-8"
    )
    agent = tmp / "agent.py"
    agent.write_text(CALC_AGENT)
    config = tmp / "tracker-bridge.toml"
    config.write_text(
        f"""
[bridge]
state = "sqlite:///{tmp / "state.db"}"
state_dir = "{tmp / "state"}"

[agent]
backend = "command"
command = "{sys.executable} {agent}"
sandbox = "bubblewrap"

[[trackers]]
name = "demo"
kind = "local"
url = "{tickets}"
repo = "shop"

[[repos]]
name = "shop"
host = "local"
url = "{repo}"
base_branch = "main"
test_command = '{TEST_COMMAND}'
setup_command = '{setup_command}'
{extra_repo}
"""
    )
    return config, tickets, repo


def trace_events(tmp: Path) -> list[dict[str, object]]:
    [trace] = sorted((tmp / "state").rglob("*.jsonl"))
    return [json.loads(line) for line in trace.read_text().splitlines() if line.strip()]


def test_setup_installs_what_the_tests_import_and_they_pass_without_network(tmp_path: Path, isolated: None) -> None:
    assert importlib.util.find_spec("tbdemo_dep") is None  # not on this machine: only set-up can bring it
    wheels = build_wheel(tmp_path / "index").parent
    pip = f"{PY} -m pip install --quiet --no-index --find-links {wheels} --target .deps --no-cache-dir tbdemo_dep"
    config, tickets, repo = write_setup_config(tmp_path, pip)

    run_once(config)

    ticket = TicketFile(tickets / "DEMO-1.md")
    assert ticket.meta["status"] == "In Review", ticket.comment
    events = trace_events(tmp_path)
    kinds = [e.get("kind") or e.get("event") for e in events]
    setup = next(e for e in events if (e.get("kind") or e.get("event")) == "setup")
    steps: list[dict[str, object]] = setup["steps"]  # type: ignore[assignment]
    assert setup["ok"] is True and [s["name"] for s in steps] == ["setup_command", ".tracker-bridge/setup.sh"]
    assert kinds.index("setup") < kinds.index("agent_result")  # before the agent
    tests = next(e for e in events if (e.get("kind") or e.get("event")) == "tests")
    assert tests["passed"] is True and "1 passed" in str(tests["output"])
    sandbox = next(e for e in events if (e.get("kind") or e.get("event")) == "sandbox")
    assert sandbox["mode"] == "bubblewrap"  # the daemon's test run has no network there
    # What set-up made (the installed package, the script's file) is not part of the proposed change.
    [branch] = git(repo, "for-each-ref", "--format=%(refname:short)", "refs/heads/agent/").split()
    changed = git(repo, "diff", "--name-only", f"main...{branch}").split()
    assert changed == ["calc.py"]


def test_a_failing_setup_fails_the_ticket_before_any_agent_token(tmp_path: Path, isolated: None) -> None:
    broken = "echo Looking in links: ./index; echo ERROR: No matching distribution found for tbdemo_dep >&2; exit 1"
    config, tickets, repo = write_setup_config(tmp_path, broken)

    run_once(config)

    ticket = TicketFile(tickets / "DEMO-1.md")
    assert ticket.meta["status"] == "Needs Human"
    assert ticket.comment and "set-up failed before the agent started" in ticket.comment
    assert "No matching distribution found for tbdemo_dep" in ticket.comment  # the output's tail, on the ticket
    kinds = [e.get("kind") or e.get("event") for e in trace_events(tmp_path)]
    assert "agent_result" not in kinds and "tests" not in kinds  # the agent never started
    assert not git(repo, "for-each-ref", "refs/heads/agent/")  # nothing pushed


def test_a_setup_that_outlives_setup_timeout_is_stopped(tmp_path: Path, isolated: None) -> None:
    config, tickets, _ = write_setup_config(tmp_path, "echo installing; sleep 30", extra_repo="setup_timeout = 1")
    run_once(config)
    ticket = TicketFile(tickets / "DEMO-1.md")
    assert ticket.meta["status"] == "Needs Human"
    assert ticket.comment and "did not finish within setup_timeout = 1 s" in ticket.comment


def test_teardown_runs_in_the_workspace_before_it_is_removed(tmp_path: Path) -> None:
    workspace = make_repo(tmp_path / "ws")
    repo = RepoConfig(name="r", host="local", url=str(tmp_path), teardown_command="cat calc.py; echo torn down")
    code, output = remove_workspace(workspace, repo, Sandbox.choose("auto", [tmp_path])) or (None, "")
    assert code == 0 and "return a - b" in output and "torn down" in output
    assert not workspace.exists()


def test_doctor_accepts_a_test_program_that_setup_installs(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from tracker_bridge.cli import app

    config, _, _ = write_setup_config(tmp_path, "python3 -m venv env-made-by-setup")
    config.write_text(config.read_text().replace(TEST_COMMAND, "env-made-by-setup/bin/python -m pytest -q"))
    result = CliRunner().invoke(app, ["doctor", "-c", str(config)])
    assert "not on PATH" not in result.output, result.output
