"""The whole journey with a real agent backend: `tracker-bridge run --once` (a real process) on a local Markdown
tracker and a local git repository, the agent talking to the loopback fake of the Anthropic Messages API. The ticket
must end in review with the agent's branch as its pull request, the tests passing, and the cost and trace recorded.

The backend is chosen the way an operator can: TRACKER_BRIDGE__AGENT__BACKEND and ..._BASE_URL override the file.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.journey_helpers import Journey, make_journey
from tests.sims.fake_anthropic import FakeAnthropic, Turn, text, tool
from tracker_bridge.demo import GOOD_TICKET

OLD_LINE = 'return re.sub(r"[^A-Za-z0-9]", "-", text.strip())'
NEW_LINE = 'return re.sub(r"[^a-z0-9]+", "-", text.strip().lower()).strip("-")'
TEST_COMMAND = f"{Path(sys.executable).as_posix()} -m pytest -q -p no:cacheprovider"
COST = 4 * (1200 * 3 + 150 * 15) / 1e6  # 4 turns of 1200 in / 150 out at claude-sonnet-4-5 list prices


def run_with_agent(tmp_path: Path, backend: str, script: list[Turn]) -> tuple[Journey, FakeAnthropic]:
    journey = make_journey(tmp_path, tickets={"DEMO-1": GOOD_TICKET}, agent_command="false")
    with FakeAnthropic(script=script) as fake:
        env = {
            "TRACKER_BRIDGE__AGENT__BACKEND": backend,
            "TRACKER_BRIDGE__AGENT__BASE_URL": fake.url,
            "TRACKER_BRIDGE__AGENT__MODEL": "claude-sonnet-4-5",
            "ANTHROPIC_API_KEY": "fake",
        }
        proc = journey.run_daemon_process(env=env, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return journey, fake


def check_in_review_with_cost_and_trace(journey: Journey) -> None:
    assert journey.column("DEMO-1") == "In Review", journey.ticket("DEMO-1").comment
    [branch] = journey.agent_branches()
    # the pull request's tests pass: check the branch out as a reviewer would and run them
    review = journey.root / "review"
    subprocess.run(["git", "clone", "-q", "-b", branch, str(journey.repo), str(review)], check=True)
    assert NEW_LINE in (review / "textkit" / "slug.py").read_text(encoding="utf-8")
    tests = subprocess.run(TEST_COMMAND.split(), cwd=review, capture_output=True, text=True, check=False)
    assert tests.returncode == 0, tests.stdout
    [row] = journey.status()
    assert row["stage"] == "review" and row["pr_url"].endswith(branch)
    assert row["cost_usd"] == pytest.approx(COST, rel=1e-3)
    shown = journey.cli("trace", "DEMO-1")
    assert shown.exit_code == 0, shown.output
    assert "tool_call" in shown.output and "outcome: succeeded" in shown.output and f"${COST:.4f}" in shown.output


@pytest.mark.skipif(shutil.which("claude") is None, reason="the Claude Code CLI is not on PATH")
def test_claude_code_takes_a_ticket_to_review(tmp_path: Path) -> None:
    slug = str(tmp_path / ".tracker-bridge" / "workspaces" / "DEMO-1.agent" / "textkit" / "slug.py")
    script = [
        tool("Read", "Reading the slug module.", file_path=slug),
        tool("Edit", file_path=slug, old_string=OLD_LINE, new_string=NEW_LINE),
        tool("Bash", "Running the tests.", command=TEST_COMMAND, description="run the tests"),
        text("slugify() now lower-cases and collapses separators; the tests pass."),
    ]
    journey, fake = run_with_agent(tmp_path, "claude-code", script)
    assert "2 passed" in FakeAnthropic.result_text(fake.tool_results()[2])
    check_in_review_with_cost_and_trace(journey)


def test_builtin_anthropic_agent_takes_a_ticket_to_review(tmp_path: Path) -> None:
    script = [
        tool("read_file", "Reading the slug module.", path="textkit/slug.py"),
        tool("edit_file", path="textkit/slug.py", old_text=OLD_LINE, new_text=NEW_LINE),
        tool("run_command", "Running the tests.", command=TEST_COMMAND),
        tool("finish", summary="slugify() now lower-cases and collapses separators."),
    ]
    journey, fake = run_with_agent(tmp_path, "anthropic", script)
    assert "2 passed" in FakeAnthropic.result_text(fake.tool_results()[2])
    check_in_review_with_cost_and_trace(journey)


def test_a_cap_moves_the_ticket_to_failed_with_the_reason(tmp_path: Path) -> None:
    dear = Turn([{"type": "tool_use", "name": "list_files", "input": {}}], input_tokens=400_000, output_tokens=10)
    journey, _ = run_with_agent(tmp_path, "anthropic", [dear] * 5)
    assert journey.column("DEMO-1") == "Needs Human"
    assert "dollar cap reached: $3.60 of max_cost_usd = 3" in (journey.ticket("DEMO-1").comment or "")
    assert journey.agent_branches() == []  # partial work is not proposed


def test_an_overloaded_api_is_retried_and_the_third_attempt_reaches_review(tmp_path: Path) -> None:
    """529 twice, then the API answers: the first two attempts end as transient (not the agent failing), the
    comment shows the retry with its time, and the third attempt takes the ticket to review."""
    journey = make_journey(tmp_path, tickets={"DEMO-1": GOOD_TICKET}, agent_command="false")
    script = [
        tool("read_file", "Reading the slug module.", path="textkit/slug.py"),
        tool("edit_file", path="textkit/slug.py", old_text=OLD_LINE, new_text=NEW_LINE),
        tool("run_command", "Running the tests.", command=TEST_COMMAND),
        tool("finish", summary="slugify() now lower-cases and collapses separators."),
    ]
    overloaded = (529, "overloaded_error", "Overloaded")
    comments: list[str] = []
    with FakeAnthropic(script=script, fail_first=[overloaded, overloaded]) as fake:
        env = {
            "TRACKER_BRIDGE__AGENT__BACKEND": "anthropic",
            "TRACKER_BRIDGE__AGENT__BASE_URL": fake.url,
            "TRACKER_BRIDGE__AGENT__MODEL": "claude-sonnet-4-5",
            "TRACKER_BRIDGE__BRIDGE__RETRY_BACKOFF": "0",  # each retry is due at once: one `run --once` each
            "ANTHROPIC_API_KEY": "fake",
        }
        for _ in range(3):
            proc = journey.run_daemon_process(env=env, timeout=120)
            assert proc.returncode == 0, proc.stdout + proc.stderr
            comments.append(journey.ticket("DEMO-1").comment or "")
    assert "attempt 1 of 3 did not finish" in comments[0] and "Overloaded" in comments[0]
    assert "the agent tries again at" in comments[0] and "(attempt 2 of 3)" in comments[0]
    assert "attempt 2 of 3 did not finish" in comments[1] and "(attempt 3 of 3)" in comments[1]
    assert journey.column("DEMO-1") == "In Review", comments[2]
    store = journey.cli("status", "--json")
    assert json.loads(store.stdout)[0]["stage"] == "review"
    shown = journey.cli("trace", "DEMO-1")
    assert "outcome: succeeded" in shown.output
    assert len(journey.agent_branches()) == 1 and len(journey.pull_requests()) == 1
