"""The `claude-code` backend: the real Claude Code CLI against the loopback fake of the Anthropic Messages API.

Claude Code reads ANTHROPIC_BASE_URL and ANTHROPIC_API_KEY (set from `[agent] base_url` and `api_key_env`); the
backend gives it a throwaway home, CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1 and IS_SANDBOX=1 (we run as root).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.agent_fixtures import TEST_COMMAND, Events, agent_env, run_agent
from tests.sims.fake_anthropic import FakeAnthropic, Turn, text, tool
from tracker_bridge.agents.pipeline import RunPlan, RunReport
from tracker_bridge.agents.trace import read_trace
from tracker_bridge.gitutil import git
from tracker_bridge.models import RunOutcome

pytestmark = pytest.mark.skipif(
    shutil.which("claude") is None,
    reason="the Claude Code CLI is not on PATH (npm install -g @anthropic-ai/claude-code)",
)

DEAR = Turn([{"type": "tool_use", "name": "Bash", "input": {"command": "true", "description": "x"}}],
            input_tokens=100_000, output_tokens=10)  # fmt: skip  # $0.30 a turn at $3/M input


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return agent_env(tmp_path, monkeypatch, api_key="fake")


def run(
    tmp_path: Path, fake: FakeAnthropic, daily_left: float | None = None, **agent: Any
) -> tuple[RunReport, RunPlan, Events]:
    # The costs asserted below are claude-sonnet-4-5's list prices ($3 / $15 per million): pin that model.
    agent = {"model": "claude-sonnet-4-5", **agent}
    return run_agent(tmp_path, daily_left, backend="claude-code", base_url=fake.url, **agent)


def fix_script(workspace: Path) -> list[Turn]:
    calc = str(workspace / "calc.py")
    return [
        tool("Read", "Let me read calc.py.", file_path=calc),
        tool("Edit", file_path=calc, old_string="return a - b", new_string="return a + b"),
        tool("Bash", "Running the tests.", command=TEST_COMMAND, description="run the tests"),
        tool("WebFetch", url="http://example.com/", prompt="summarize"),  # not in allowed_tools: denied
        tool("Bash", command="env", description="show the environment"),
        text("add() now adds; the test passes."),
    ]


def test_claude_code_fixes_the_bug_tests_pass_trace_and_cost_recorded(env: Path) -> None:
    with FakeAnthropic() as fake:
        fake.script = fix_script(env / "state" / "workspaces" / "DEMO-1.agent")  # where the agent works
        report, p, events = run(env, fake)
        results = [FakeAnthropic.result_text(r) for r in fake.tool_results()]
        main = fake.main_requests
    assert report.outcome is RunOutcome.SUCCEEDED, report.reason
    assert report.commit_sha == git(p.workspace, "rev-parse", "HEAD")
    assert (p.workspace / "calc.py").read_text() == "def add(a, b):\n    return a + b\n"
    assert "1 passed" in report.test_output  # the daemon's own test run
    assert "1 passed" in results[2]  # the agent's run of the tests, through the CLI's Bash tool
    # Claude Code streamed from the fake with the configured model; the prompt carried the ticket
    assert all(r.body["stream"] is True and r.body["model"] == "claude-sonnet-4-5" for r in main)
    assert "add(2, 3) must be 5" in str(main[0].body["messages"][0]["content"])
    # 6 turns of 1200 input / 150 output tokens at $3 / $15 per million, as the CLI's total_cost_usd says
    assert report.usage.turns == 6
    assert (report.usage.input_tokens, report.usage.output_tokens) == (7200, 900)
    assert report.usage.cost_usd == pytest.approx((7200 * 3 + 900 * 15) / 1e6)
    # the agent sees no tracker or code-host token, and its home is a throwaway one
    assert "tracker-secret-4711" not in results[4] and "host-secret-4712" not in results[4]
    assert f"HOME={p.trace_path.with_name('DEMO-1-1.home')}" in results[4]
    records = read_trace(p.trace_path)
    denied = [r for r in records if r["kind"] == "permission_denied"]
    assert [d["tool"] for d in denied] == ["WebFetch"]
    assert "permission denied 1 time(s): WebFetch" in report.summary
    assert [r["tool"] for r in records if r["kind"] == "tool_call"] == ["Read", "Edit", "Bash", "WebFetch", "Bash"]
    final = next(r for r in records if r["kind"] == "agent_final")
    assert final["total_cost_usd"] == pytest.approx(report.usage.cost_usd)
    # progress reached on_event, throttled: start, at most one more progress event in this fast run, the end
    assert events[0].kind == "start" and events[-1].kind == "tests"
    assert len(events) <= 5


def test_turn_cap_stops_claude_code(env: Path) -> None:
    with FakeAnthropic(default=tool("Bash", command="echo more >> notes.txt", description="x")) as fake:
        report, p, _ = run(env, fake, max_turns=2)
    assert report.outcome is RunOutcome.CAP_REACHED
    assert report.reason.startswith("turn cap reached: ") and report.reason.endswith("of max_turns = 2")
    assert len(fake.main_requests) <= 3
    assert report.commit_sha is None
    assert "partial work, not proposed" in git(p.workspace, "log", "-1", "--format=%s")


def test_dollar_cap_stops_claude_code(env: Path) -> None:
    with FakeAnthropic(default=DEAR) as fake:
        report, _, _ = run(env, fake, max_cost_usd=0.5)
    assert report.outcome is RunOutcome.CAP_REACHED
    assert report.reason.startswith("dollar cap reached: $0.6") and report.reason.endswith("of max_cost_usd = 0.5")
    assert len(fake.main_requests) == 2


def test_daily_budget_stops_claude_code(env: Path) -> None:
    with FakeAnthropic(default=DEAR) as fake:
        report, _, _ = run(env, fake, daily_left=0.5)
    assert report.outcome is RunOutcome.CAP_REACHED
    assert report.reason.startswith("DAILY BUDGET reached")
    assert len(fake.main_requests) == 2


def _processes_with(marker: str) -> list[int]:
    found = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                if marker in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace"):
                    found.append(int(pid))
            except OSError:
                continue
    return found


def test_wall_time_cap_kills_claude_code_and_everything_it_started(env: Path) -> None:
    script = [tool("Bash", command="sleep 41.25", description="wait", timeout=60000)]
    with FakeAnthropic(script=script) as fake:
        report, _, _ = run(env, fake, timeout=4)
    assert report.outcome is RunOutcome.CAP_REACHED
    assert report.reason.startswith("wall-time cap reached: 4 s of timeout = 4 s")
    assert _processes_with("sleep 41.25") == []


def test_without_bubblewrap_claude_code_runs_under_limits_and_the_trace_says_so(env: Path) -> None:
    with FakeAnthropic() as fake:
        fake.script = [*fix_script(env / "state" / "workspaces" / "DEMO-1.agent")[:3], text("Fixed.")]
        report, p, _ = run(env, fake, sandbox="none")
    assert report.outcome is RunOutcome.SUCCEEDED, report.reason
    sandbox = next(r for r in read_trace(p.trace_path) if r["kind"] == "sandbox")
    assert sandbox["mode"] == "rlimits" and "resource limits only" in sandbox["message"]
