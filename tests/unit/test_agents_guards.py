"""Guards on an agent's result, caps of the `command` backend, and the trace a person reads afterwards."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.agent_fixtures import make_repo, run_agent
from tracker_bridge.agents.caps import CapMeter, Throttle, cost_usd, price_of
from tracker_bridge.agents.pipeline import RunReport, forbidden_changes
from tracker_bridge.agents.trace import read_trace, render_trace
from tracker_bridge.config import ModelPrice
from tracker_bridge.gitutil import git
from tracker_bridge.models import RunOutcome, RunUsage
from tracker_bridge.protocols import AgentEvent

FORBIDDEN = [".github/workflows/**", ".gitlab-ci.yml", "secrets/*.key", "infra/"]


@pytest.mark.parametrize(
    ("path", "hit"),
    [
        (".github/workflows/ci.yml", True),
        (".github/workflows/nested/deep.yml", True),
        (".github/dependabot.yml", False),
        (".gitlab-ci.yml", True),
        ("sub/.gitlab-ci.yml", False),  # anchored at the repository root, like GitLab reads it
        ("secrets/prod.key", True),
        ("secrets/nested/prod.key", False),  # * stays within one folder
        ("infra/main.tf", True),
        ("src/app.py", False),
    ],
)
def test_forbidden_path_globs(path: str, hit: bool) -> None:
    assert bool(forbidden_changes([path], FORBIDDEN)) is hit


def command_run(tmp_path: Path, command: str, daily_left: float | None = None, **agent: object) -> RunReport:
    make_repo(tmp_path / "origin")
    report, _, _ = run_agent(tmp_path, daily_left, secrets=[], backend="command", command=command, **agent)
    return report


def test_a_change_to_ci_configuration_is_refused_and_not_proposed(tmp_path: Path) -> None:
    cmd = "sed -i 's/a - b/a + b/' calc.py && mkdir -p .github/workflows && echo 'on: push' > .github/workflows/x.yml"
    report = command_run(tmp_path, cmd)
    assert report.outcome is RunOutcome.REFUSED
    assert report.reason == (
        "the agent changed a path it may not change: .github/workflows/x.yml (matches '.github/workflows/**'); "
        "see [agent] forbidden_paths"
    )
    assert report.commit_sha is None


def test_a_diff_over_max_diff_lines_is_refused(tmp_path: Path) -> None:
    report = command_run(tmp_path, "sed -i 's/a - b/a + b/' calc.py && seq 1 50 > numbers.txt", max_diff_lines=20)
    assert report.outcome is RunOutcome.REFUSED
    assert report.reason == "the diff is too large: 52 lines changed, more than max_diff_lines = 20"


def test_command_backend_success_goes_through_the_daemons_test_run(tmp_path: Path) -> None:
    report = command_run(tmp_path, "test \"$TRACKER_BRIDGE_TICKET\" = DEMO-1 && grep -q 'must be 5' "
                                   "\"$TRACKER_BRIDGE_PROMPT_FILE\" && sed -i 's/a - b/a + b/' calc.py")  # fmt: skip
    assert report.outcome is RunOutcome.SUCCEEDED, report.reason
    assert report.commit_sha and "1 passed" in report.test_output


def test_command_backend_wall_time_cap_kills_the_agent(tmp_path: Path) -> None:
    report = command_run(tmp_path, "echo started > started.txt; sleep 30", timeout=1)
    assert report.outcome is RunOutcome.CAP_REACHED
    assert report.reason == "wall-time cap reached: 1 s of timeout = 1 s"
    ws = tmp_path / "state" / "workspaces" / "DEMO-1"
    assert (ws / "started.txt").exists() and "partial work, not proposed" in git(ws, "log", "-1", "--format=%s")


def test_no_daily_budget_left_means_the_agent_does_not_start(tmp_path: Path) -> None:
    report = command_run(tmp_path, "touch ran.txt", daily_left=0.0)
    assert report.outcome is RunOutcome.CAP_REACHED and report.reason.startswith("DAILY BUDGET reached")
    assert not (tmp_path / "state" / "workspaces" / "DEMO-1" / "ran.txt").exists()


def test_agent_that_changes_nothing(tmp_path: Path) -> None:
    assert command_run(tmp_path, "true").outcome is RunOutcome.NO_CHANGES


def test_trace_renders_events_and_totals(tmp_path: Path) -> None:
    command_run(tmp_path, "sed -i 's/a - b/a + b/' calc.py")
    path = tmp_path / "state" / "traces" / "DEMO-1-1.jsonl"
    kinds = [r["kind"] for r in read_trace(path)]
    assert kinds[:3] == ["workspace", "sandbox", "agent_start"] and kinds[-2:] == ["tests", "result"]
    from rich.console import Console

    console = Console(width=160, record=True)
    console.print(render_trace(path))
    shown = console.export_text()
    assert "outcome: succeeded" in shown and "1 passed" in shown and "agent_start" in shown
    assert "no trace at" in str(render_trace(tmp_path / "missing.jsonl"))


def test_a_trace_cut_short_by_a_crash_still_reads(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_text('{"ts": "x", "kind": "turn", "usage": {"turns": 1, "cost_usd": 0.5}}\n{"ts": "x", "ki')
    assert [r["kind"] for r in read_trace(path)] == ["turn"]


def test_caps_name_the_cap_reached() -> None:
    m = CapMeter(max_turns=3, max_cost_usd=3.0, timeout_s=100, max_tokens=10_000, daily_budget_left_usd=5.0)
    m.set(RunUsage(turns=3, input_tokens=100, output_tokens=10, cost_usd=0.5))
    assert m.exceeded() is None
    assert m.before_turn() == "turn cap reached: 3 turns of max_turns = 3"
    m.set(RunUsage(turns=1, cost_usd=3.12))
    assert m.exceeded() == "dollar cap reached: $3.12 of max_cost_usd = 3"
    m.set(RunUsage(turns=1, input_tokens=9_000, output_tokens=1_000))
    assert m.exceeded() == "token cap reached: 10000 tokens of max_tokens = 10000"
    m.daily_budget_left_usd = 0.4
    m.set(RunUsage(turns=1, cost_usd=0.41))
    assert (m.exceeded() or "").startswith("DAILY BUDGET reached: this run's $0.41 uses up the $0.40")
    m.set(RunUsage())
    m.started -= 101
    assert m.exceeded() == "wall-time cap reached: 101 s of timeout = 100 s"


def test_prices_per_model_including_cache_and_dated_names() -> None:
    prices = {"claude-sonnet-4-5": ModelPrice(input=3, output=15, cache_write=3.75, cache_read=0.3)}
    p = price_of(prices, "claude-sonnet-4-5-20250929")
    assert cost_usd(p, input_tokens=1_000_000, output_tokens=100_000) == pytest.approx(4.5)
    assert cost_usd(p, cache_write_tokens=1_000_000, cache_read_tokens=1_000_000) == pytest.approx(4.05)
    assert price_of(prices, "gpt-9") is None


def test_throttle_passes_forced_events_and_at_most_one_per_interval() -> None:
    got: list[AgentEvent] = []
    emit = Throttle(got.append, interval=60)
    emit(AgentEvent("start"), force=True)
    for _ in range(50):
        emit(AgentEvent("turn"))
    emit(AgentEvent("finished"), force=True)
    assert [e.kind for e in got] == ["start", "finished"] and emit.dropped == 50


@pytest.mark.parametrize("sandbox", ["auto", "none"])
def test_command_backend_gets_the_prompt_on_stdin_and_its_exit_status_counts(tmp_path: Path, sandbox: str) -> None:
    report = command_run(tmp_path, "cat > prompt.txt; grep -q 'must be 5' prompt.txt && exit 3", sandbox=sandbox)
    assert report.outcome is RunOutcome.AGENT_FAILED
    assert report.reason == "the agent command exited with status 3"
    assert '<ticket ref="DEMO-1"' in (tmp_path / "state/workspaces/DEMO-1/prompt.txt").read_text()
