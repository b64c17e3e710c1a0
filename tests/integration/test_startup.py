"""Start-up as a new operator meets it: `run` refuses a setup that would fail every ticket it takes, every
configuration failure exits 2 with the key and the fix, and the CLI has --version, `python -m` and completion."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.journey_helpers import Journey
from tracker_bridge import __version__
from tracker_bridge.cli import app


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output


def test_run_refuses_to_start_without_the_agent_cli_and_touches_no_ticket(journey: Journey) -> None:
    claude = 'backend = "claude-code"\nclaude_path = "no-claude"'
    journey.config.write_text(journey.config.read_text().replace('backend = "command"', claude))
    before = journey.snapshot()
    code, output = invoke("run", "--once", "-c", str(journey.config))
    assert code == 2, output
    assert "tracker-bridge cannot start" in output
    assert "[agent] claude_path = 'no-claude': the Claude Code CLI is not on PATH" in output
    assert "Fix: npm install -g @anthropic-ai/claude-code" in output
    assert journey.snapshot() == before  # no ticket was taken, failed or commented
    assert journey.status() == []


def test_run_refuses_a_required_sandbox_that_cannot_work(journey: Journey, monkeypatch: pytest.MonkeyPatch) -> None:
    from tracker_bridge.agents import sandbox

    monkeypatch.setattr(sandbox, "find_bwrap", lambda: None)  # as on a machine without bubblewrap
    required = 'timeout = 300\nsandbox = "bubblewrap"'
    journey.config.write_text(journey.config.read_text().replace("timeout = 300", required))
    before = journey.snapshot()
    code, output = invoke("run", "--once", "-c", str(journey.config))
    assert code == 2, output
    assert '[agent] sandbox = "bubblewrap": bubblewrap (bwrap) is not installed' in output
    assert "Fix: apt-get install -y bubblewrap" in output
    assert journey.snapshot() == before


def test_an_invalid_board_file_exits_2_naming_it(journey: Journey) -> None:
    (journey.tickets / "board.yaml").write_text("columns: [Backlog, Agent\n")
    for command in ("run", "doctor"):
        args = [command, "--once"] if command == "run" else [command]
        code, output = invoke(*args, "-c", str(journey.config))
        assert code == 2, (command, output)
        assert "board.yaml" in output and "not valid YAML" in output and "Fix:" in output
        assert "Traceback" not in output


def test_state_store_failures_exit_2_naming_the_key(journey: Journey) -> None:
    good = journey.config.read_text()
    journey.config.write_text(good.replace('state = "sqlite:///state.db"', 'state = "state.db"'))
    for command in ("run", "status", "doctor"):
        code, output = invoke(command, "-c", str(journey.config))
        assert code == 2, (command, output)
        assert "[bridge] state = 'state.db': not a database URL" in output
    # A well-formed URL that cannot be opened (the folder does not exist): still the key and the fix.
    journey.config.write_text(good.replace("sqlite:///state.db", "sqlite:///no/such/folder/state.db"))
    for command in ("run", "status"):
        code, output = invoke(command, "-c", str(journey.config))
        assert code == 2, (command, output)
        text = " ".join(output.split())
        assert "[bridge] state = " in text and "no/such/folder does not exist" in text, text
        assert "Fix: create it or change the path" in text


def test_a_folder_passed_as_the_configuration_exits_2(journey: Journey) -> None:
    code, output = invoke("doctor", "-c", str(journey.root))
    assert code == 2
    assert "is a folder" in output and f"Fix: pass -c {journey.config}" in output


def test_a_bad_file_does_not_stop_doctor_and_is_listed(journey: Journey) -> None:
    (journey.tickets / "DEMO-9.md").write_bytes(b"---\ntitle: x\nlabels: 5\n---\n")
    code, output = invoke("doctor", "-c", str(journey.config))
    assert code == 0, output
    assert "ticket DEMO-9 is skipped" in output and "labels = 5 is not a list" in output


def test_version_python_m_and_completion() -> None:
    code, output = invoke("--version")
    assert code == 0 and output.strip() == f"tracker-bridge {__version__}"
    module = subprocess.run(
        [sys.executable, "-m", "tracker_bridge", "--version"], capture_output=True, text=True, cwd="/", timeout=60
    )
    assert module.returncode == 0 and module.stdout.strip() == f"tracker-bridge {__version__}"
    # Typer's own switch for tests: the shell is named instead of detected from the parent processes (under a
    # test runner's worker processes there may be no shell among them to detect).
    no_detection = {**os.environ, "_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION": "1"}
    completion = subprocess.run(
        [sys.executable, "-m", "tracker_bridge", "--show-completion", "bash"],
        capture_output=True,
        text=True,
        timeout=60,
        env=no_detection,
    )
    assert completion.returncode == 0 and "_TRACKER_BRIDGE_COMPLETE=complete_bash" in completion.stdout


def test_json_log_mode_writes_only_json_lines_with_ticket_refs(journey: Journey) -> None:
    env = {"TRACKER_BRIDGE__BRIDGE__LOG_FORMAT": "json", "TRACKER_BRIDGE__BRIDGE__LOG_LEVEL": "debug"}
    proc = journey.run_daemon_process(env=env)
    assert proc.returncode == 0, proc.stderr
    events = [json.loads(line) for line in proc.stderr.splitlines() if line.strip()]  # every line is JSON
    names = {e["event"] for e in events}
    assert {"ticket.stage", "run.start"} <= names
    assert all(e["ref"].startswith("DEMO-") for e in events if e["event"] in ("ticket.stage", "run.start"))
    assert {e["level"] for e in events} >= {"info"}


def test_log_level_warning_hides_info_lines(journey: Journey) -> None:
    proc = journey.run_daemon_process(env={"TRACKER_BRIDGE__BRIDGE__LOG_LEVEL": "warning"})
    assert proc.returncode == 0, proc.stderr
    assert "ticket.stage" not in proc.stderr and "run.start" not in proc.stderr


def test_library_lines_and_tracebacks_are_json_too(capsys: pytest.CaptureFixture[str]) -> None:
    import logging
    import threading

    from tracker_bridge import logs

    try:
        logs.configure("json", "info")
        logging.getLogger("uvicorn.error").error("uvicorn says")
        logging.getLogger("apscheduler.scheduler").warning("apscheduler says")
        logging.getLogger("apscheduler.executors.default").info("Running job (routine, hidden)")
        worker = threading.Thread(target=lambda: 1 / 0, name="worker")
        worker.start()
        worker.join()
        lines = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line.strip()]
    finally:
        logs.configure()
        threading.excepthook = threading.__excepthook__
        sys.excepthook = sys.__excepthook__
    assert [(x["logger"], x["event"]) for x in lines[:2]] == [
        ("uvicorn.error", "uvicorn says"),
        ("apscheduler.scheduler", "apscheduler says"),
    ]
    assert len(lines) == 3
    crash = lines[2]
    assert crash["event"] == "thread.uncaught_exception" and crash["thread"] == "worker"
    assert "ZeroDivisionError" in crash["exception"]


def test_a_quiet_cycle_logs_at_debug_and_an_eventful_one_at_info(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from tracker_bridge import logs
    from tracker_bridge.engine import CycleReport
    from tracker_bridge.scheduler import Daemon
    from tracker_bridge.store import Store

    class Engine:
        def __init__(self) -> None:
            self.trackers: dict[str, object] = {}
            self.store = Store(f"sqlite:///{tmp_path / 'state.db'}")  # the daemon reads pause requests from it
            self.dispatch_stopped = False
            self.reports = [CycleReport(polled={"demo": 0}), CycleReport(polled={"demo": 1}, started_runs=["DEMO-1"])]

        def cycle(self) -> CycleReport:
            return self.reports.pop(0)

    logs.configure("json", "info")
    try:
        daemon = Daemon(Engine(), 30)  # type: ignore[arg-type]
        daemon._cycle()
        daemon._cycle()
        lines = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line.strip()]
    finally:
        logs.configure()
    cycles = [x for x in lines if x["event"] == "cycle"]
    assert len(cycles) == 1 and cycles[0]["started"] == ["DEMO-1"]


def test_python_m_runs_outside_the_repository() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "tracker_bridge", "doctor", "-c", "/nonexistent/tb.toml"],
        capture_output=True,
        text=True,
        cwd="/",
        env={**os.environ},
        timeout=60,
    )
    assert proc.returncode == 2 and "does not exist" in proc.stderr and "Traceback" not in proc.stderr


def test_demo_refuses_a_folder_that_is_not_empty_without_a_traceback(tmp_path: Path) -> None:
    (tmp_path / "keep.txt").write_text("mine")
    code, output = invoke("demo", "--dir", str(tmp_path))
    assert code == 2, output
    assert "already exists and is not an empty folder" in output and "Fix: pass --dir a new or empty folder" in output
    assert [p.name for p in tmp_path.iterdir()] == ["keep.txt"]  # nothing was written beside the user's file


def test_an_unreachable_jira_is_reported_against_its_url_at_once(
    journey: Journey, monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket
    import time

    with socket.socket() as s:  # a loopback port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("TB_TEST_JIRA_TOKEN", "t0ken")
    journey.config.write_text(
        journey.config.read_text()
        + f'\n[[trackers]]\nname = "pay"\nkind = "jira"\nurl = "http://127.0.0.1:{port}"\nuser = "bot@acme.com"\n'
        'token_env = "TB_TEST_JIRA_TOKEN"\nquery = "project = PAY"\n'
    )
    start = time.monotonic()
    code, output = invoke("doctor", "-c", str(journey.config))
    assert time.monotonic() - start < 10
    assert code == 2, output
    assert f"trackers.pay.url: Jira at http://127.0.0.1:{port} could not be reached" in output
    assert "trackers.pay.token_env" not in output
