"""`doctor` checks the agent the way a run uses it: the model is not past its end of life, the Claude Code CLI starts
inside the sandbox (not merely somewhere on PATH)."""

from __future__ import annotations

import shutil
import stat
from datetime import date
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.journey_helpers import Journey
from tracker_bridge import claude_models
from tracker_bridge.agents.sandbox import sandbox_status
from tracker_bridge.cli import app


def doctor(config: Path) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["doctor", "-c", str(config)])
    return result.exit_code, result.output


def use_claude_code(journey: Journey, claude_path: str, model: str | None = None) -> None:
    text = journey.config.read_text().replace('backend = "command"', 'backend = "claude-code"', 1)
    extra = f'claude_path = "{claude_path}"\n' + (f'model = "{model}"\n' if model else "")
    journey.config.write_text(text.replace("[agent]\n", "[agent]\n" + extra, 1))


def test_doctor_warns_on_a_model_at_its_end_of_life(journey: Journey, monkeypatch: pytest.MonkeyPatch) -> None:
    claude = shutil.which("claude")
    if claude is None:
        pytest.skip("the Claude Code CLI is not installed")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-test")
    use_claude_code(journey, claude, model="claude-sonnet-4-5")
    code, output = doctor(journey.config)
    assert "warning:" in output and "'claude-sonnet-4-5' reached its end of life" in output
    assert f'[agent] model = "{claude_models.DEFAULT_MODEL}"' in output  # the fix names a current model
    assert code == 0, output  # a warning, not a refusal


def test_the_default_model_is_current_and_priced() -> None:
    from tracker_bridge.config import AgentConfig, ScoringConfig

    agent = AgentConfig()
    assert agent.model == ScoringConfig().llm_model == claude_models.DEFAULT_MODEL
    assert claude_models.model_warning(agent.model, date(2026, 11, 30)) is None
    assert agent.model in agent.prices and agent.prices[agent.model].output > 0


def test_end_of_life_warns_thirty_days_ahead_and_after() -> None:
    eol = claude_models.end_of_life("claude-opus-4-5")
    assert eol == date(2027, 1, 22)
    assert claude_models.model_warning("claude-opus-4-5", date(2026, 12, 22)) is None  # 31 days ahead
    assert "in 30 days" in (claude_models.model_warning("claude-opus-4-5", date(2026, 12, 23)) or "")
    assert "reached its end of life on 2027-01-22" in (
        claude_models.model_warning("claude-opus-4-5-20251101", date(2027, 2, 1)) or ""
    )
    assert claude_models.end_of_life("claude-sonnet-4-5-20250929") == date(2026, 11, 30)


def test_a_claude_path_the_sandbox_cannot_see_fails_doctor_with_the_fix(
    journey: Journey, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not sandbox_status("auto")[0]:
        pytest.skip("bubblewrap cannot isolate here, so /tmp is not private to the agent")
    elsewhere = tmp_path_factory.mktemp("unpacked") / "claude"  # under /tmp, outside the config's folder
    elsewhere.write_text("#!/bin/sh\necho '2.1.0 (Claude Code)'\n")
    elsewhere.chmod(elsewhere.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-test")
    use_claude_code(journey, str(elsewhere))
    code, output = doctor(journey.config)
    assert code == 2, output
    assert f"[agent] claude_path = '{elsewhere}'" in output
    assert "cannot run inside the sandbox" in output and "outside /tmp" in output


def test_a_claude_path_that_runs_in_the_sandbox_passes(journey: Journey, monkeypatch: pytest.MonkeyPatch) -> None:
    claude = shutil.which("claude")
    if claude is None:
        pytest.skip("the Claude Code CLI is not installed")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-test")
    use_claude_code(journey, claude)
    code, output = doctor(journey.config)
    assert code == 0, output
    assert "problem" not in output and "warning:" not in output
