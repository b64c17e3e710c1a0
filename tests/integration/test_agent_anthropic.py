"""The built-in `anthropic` agent: the real anthropic SDK against the loopback fake of the Messages API, real git,
real bubblewrap for its commands."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.agent_fixtures import TEST_COMMAND, Events, agent_env, run_agent
from tests.sims.fake_anthropic import FakeAnthropic, Turn, text, tool
from tracker_bridge.agents.pipeline import RunPlan, RunReport
from tracker_bridge.agents.sandbox import sandbox_status
from tracker_bridge.agents.trace import read_trace, render_trace
from tracker_bridge.gitutil import git
from tracker_bridge.models import RunOutcome

needs_bwrap = pytest.mark.skipif(not sandbox_status()[0], reason=f"no usable bubblewrap: {sandbox_status()[1]}")

FIX_SCRIPT = [
    tool("read_file", "Let me look at calc.py.", path="calc.py"),
    tool("edit_file", path="calc.py", old_text="return a - b", new_text="return a + b"),
    tool("run_command", "Running the tests.", command=TEST_COMMAND),
    tool("finish", summary="add() now adds; test_add passes."),
]


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return agent_env(tmp_path, monkeypatch, api_key="fake-anthropic-key")


def run(
    tmp_path: Path, fake: FakeAnthropic, daily_left: float | None = None, **agent: Any
) -> tuple[RunReport, RunPlan, Events]:
    # The costs asserted below are claude-sonnet-4-5's list prices ($3 / $15 per million): pin that model.
    agent = {"model": "claude-sonnet-4-5", **agent}
    return run_agent(tmp_path, daily_left, backend="anthropic", base_url=fake.url, **agent)


def test_builtin_agent_fixes_the_bug_and_the_run_is_proposed_with_trace_and_cost(env: Path) -> None:
    with FakeAnthropic(script=list(FIX_SCRIPT)) as fake:
        report, p, events = run(env, fake)
    assert report.outcome is RunOutcome.SUCCEEDED, report.reason
    assert report.commit_sha and "1 passed" in report.test_output
    assert (p.workspace / "calc.py").read_text() == "def add(a, b):\n    return a + b\n"
    assert git(p.workspace, "log", "-1", "--format=%s") == "DEMO-1: Fix add"
    # 4 API turns of 1200 in / 150 out at claude-sonnet-4-5 list prices ($3 / $15 per million)
    assert report.usage.turns == 4
    assert report.usage.cost_usd == pytest.approx(4 * (1200 * 3 + 150 * 15) / 1e6)
    # the agent's own test run went through the sandbox and came back to the model
    results = fake.tool_results()
    assert "1 passed" in FakeAnthropic.result_text(results[2])
    # prompt caching on the system prompt and the tools; the SDK talked to the fake with the configured key
    first = fake.main_requests[0]
    assert first.body["system"][-1]["cache_control"] == {"type": "ephemeral"}
    assert first.body["tools"][-1]["cache_control"] == {"type": "ephemeral"}
    auth = first.headers.get("x-api-key") or first.headers.get("authorization", "")
    assert auth.endswith("fake-anthropic-key")
    assert "add(2, 3) must be 5" in first.body["messages"][0]["content"]
    kinds = [r["kind"] for r in read_trace(p.trace_path)]
    for kind in ("workspace", "sandbox", "turn", "tool_call", "tool_result", "tests", "result"):
        assert kind in kinds
    assert events[0].kind == "start" and events[-1].kind in ("finished", "tests")
    assert "$0.0" in str(render_trace(p.trace_path).renderables[-1])  # type: ignore[union-attr]


@needs_bwrap
def test_agent_commands_have_no_network_no_secrets_and_cannot_write_outside(env: Path) -> None:
    outside = env / "outside.txt"
    with FakeAnthropic() as fake:
        port = fake.url.rsplit(":", 1)[1]
        fake.script = [
            tool("run_command", command=f"curl -sS -m 5 http://127.0.0.1:{port}/v1/models"),
            tool("run_command", command="env"),
            tool("run_command", command=f"echo pwned > {outside}; cat {outside}"),
            tool("run_command", command="echo pwned > /etc/tracker-bridge-test"),
            tool("write_file", path=str(outside), content="pwned"),
            tool("write_file", path="../outside.txt", content="pwned"),
            tool("finish", summary="tried"),
        ]
        report, _, _ = run(env, fake)
        results = [FakeAnthropic.result_text(r) for r in fake.tool_results()]
        models_calls = [r for r in fake.requests if r.path.endswith("/v1/models")]
    assert not models_calls, "the sandboxed curl reached the API server"
    assert results[0].startswith("exit status 7"), results[0]  # curl: failed to connect
    assert "tracker-secret-4711" not in results[1] and "host-secret-4712" not in results[1]
    assert "fake-anthropic-key" not in results[1] and "FAKE_TRACKER_TOKEN" not in results[1]
    assert "HOME=/tmp" in results[1]
    assert not outside.exists(), "a command wrote outside the workspace"
    assert "Read-only file system" in results[3]
    assert "outside the repository" in results[4] and "outside the repository" in results[5]
    assert report.outcome is RunOutcome.NO_CHANGES


def test_turn_cap_stops_a_looping_agent_and_keeps_its_work_unproposed(env: Path) -> None:
    loop = tool("run_command", command="echo more >> notes.txt")
    with FakeAnthropic(default=loop) as fake:
        report, p, events = run(env, fake, max_turns=3)
    assert report.outcome is RunOutcome.CAP_REACHED
    assert report.reason == "turn cap reached: 3 turns of max_turns = 3"
    assert len(fake.main_requests) == 3
    assert report.commit_sha is None
    assert "partial work, not proposed" in git(p.workspace, "log", "-1", "--format=%s")
    assert (p.workspace / "notes.txt").read_text() == "more\nmore\nmore\n"
    assert any(e.kind == "cap_reached" for e in events)


def test_dollar_cap_stops_the_run_when_spend_reaches_max_cost(env: Path) -> None:
    # each turn: 100k input tokens at $3/M = $0.30
    dear = Turn([{"type": "tool_use", "name": "list_files", "input": {}}], input_tokens=100_000, output_tokens=10)
    with FakeAnthropic(default=dear) as fake:
        report, _, _ = run(env, fake, max_cost_usd=1.0)
    assert report.outcome is RunOutcome.CAP_REACHED
    assert report.reason == "dollar cap reached: $1.20 of max_cost_usd = 1"
    assert report.usage.turns == 4


def test_daily_budget_stops_the_run_before_its_own_cap(env: Path) -> None:
    dear = Turn([{"type": "tool_use", "name": "list_files", "input": {}}], input_tokens=100_000, output_tokens=10)
    with FakeAnthropic(default=dear) as fake:
        report, _, _ = run(env, fake, daily_left=0.5, max_cost_usd=3.0)
    assert report.outcome is RunOutcome.CAP_REACHED
    assert report.reason.startswith("DAILY BUDGET reached: this run's $0.60")
    assert report.usage.turns == 2


def test_wall_time_cap_stops_a_slow_command(env: Path) -> None:
    with FakeAnthropic(script=[tool("run_command", command="sleep 30")]) as fake:
        report, _, _ = run(env, fake, timeout=2)
    assert report.outcome is RunOutcome.CAP_REACHED
    assert report.reason.startswith("wall-time cap reached: 2 s of timeout = 2 s")


def test_token_cap(env: Path) -> None:
    with FakeAnthropic(default=tool("list_files")) as fake:
        report, _, _ = run(env, fake, max_tokens=3000)
    assert report.outcome is RunOutcome.CAP_REACHED
    assert report.reason == "token cap reached: 4050 tokens of max_tokens = 3000"


def test_failing_tests_get_one_more_agent_pass_with_the_output(env: Path) -> None:
    script = [
        tool("write_file", path="calc.py", content="def add(a, b):\n    return a * b\n"),
        text("Done."),
        # the retry: the model sees the failing output and fixes it
        tool("edit_file", path="calc.py", old_text="a * b", new_text="a + b"),
        text("Fixed for real."),
    ]
    with FakeAnthropic(script=script) as fake:
        report, p, _ = run(env, fake)
        retry_prompt = fake.main_requests[2].body["messages"][0]["content"]
    assert "assert 6 == 5" in retry_prompt
    assert report.outcome is RunOutcome.SUCCEEDED, report.reason
    assert report.usage.turns == 4
    assert git(p.workspace, "log", "-1", "--format=%s") == "DEMO-1: Fix add (after failing tests)"


def test_tests_still_failing_after_the_retry_fail_the_run(env: Path) -> None:
    script = [tool("write_file", path="calc.py", content="def add(a, b):\n    return 0\n"), text("Done.")]
    with FakeAnthropic(script=script) as fake:
        report, _, _ = run(env, fake)
    assert report.outcome is RunOutcome.TESTS_FAILED
    assert "failed after the agent's change" in report.reason and "assert 0 == 5" in report.test_output


def test_forbidden_path_change_is_refused(env: Path) -> None:
    script = [
        tool("write_file", path="calc.py", content="def add(a, b):\n    return a + b\n"),
        tool("write_file", path=".github/workflows/ci.yml", content="on: push\n"),
        text("Done."),
    ]
    with FakeAnthropic(script=script) as fake:
        report, p, _ = run(env, fake)
    assert report.outcome is RunOutcome.REFUSED
    assert report.reason.startswith("the agent changed a path it may not change: .github/workflows/ci.yml")
    assert report.commit_sha is None
    assert (p.workspace / ".github/workflows/ci.yml").exists()  # kept on the branch for a person to look at


def test_an_api_refusal_fails_the_run_with_the_apis_message(env: Path) -> None:
    with FakeAnthropic(error=(401, "authentication_error", "invalid x-api-key")) as fake:
        report, _, _ = run(env, fake)
    assert report.outcome is RunOutcome.AGENT_FAILED
    assert report.reason.startswith("the Anthropic API failed:") and "invalid x-api-key" in report.reason


def test_a_final_turn_that_goes_over_the_dollar_cap_is_not_proposed(env: Path) -> None:
    script = [
        tool("write_file", path="calc.py", content="def add(a, b):\n    return a + b\n"),
        text("Done.", input_tokens=400_000),  # $1.20 on its own
    ]
    with FakeAnthropic(script=script) as fake:
        report, p, _ = run(env, fake, max_cost_usd=1.0)
    assert report.outcome is RunOutcome.CAP_REACHED
    assert report.reason.startswith("dollar cap reached: $1.2") and report.commit_sha is None
    assert "partial work, not proposed" in git(p.workspace, "log", "-1", "--format=%s")
