"""The CLI contract: exit statuses, `doctor`, and a daemon that refuses to start on a board it cannot serve."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.journey_helpers import Journey
from tracker_bridge.cli import app


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output


def test_unknown_key_exits_2_naming_the_key(journey: Journey) -> None:
    journey.config.write_text(journey.config.read_text() + "\n[scoring]\ntreshold = 0.5\n")
    code, output = invoke("run", "--once", "-c", str(journey.config))
    assert code == 2
    assert "[scoring] treshold: unknown key" in output and "did you mean 'threshold'" in output


def test_missing_column_stops_the_daemon_before_it_acts(journey: Journey) -> None:
    (journey.tickets / "board.yaml").write_text("columns: [Backlog, Agent, In Progress, In Review, Done]\n")
    before = journey.snapshot()
    code, output = invoke("run", "--once", "-c", str(journey.config))
    assert code == 2
    assert "[stages] declined" in output and "'Needs Refinement' is not on the board" in output
    assert "[stages] failed" in output
    assert journey.snapshot() == before  # nothing was touched


def test_doctor_reports_each_problem_and_how_to_fix_it(journey: Journey) -> None:
    code, output = invoke("doctor", "-c", str(journey.config))
    assert code == 0, output
    assert "all checks passed" in output

    (journey.tickets / "board.yaml").write_text("columns: [Backlog, Agent, In Progress, In Review, Done]\n")
    text = journey.config.read_text().replace('base_branch = "main"', 'base_branch = "trunk"')
    journey.config.write_text(text.replace('test_command = "', 'test_command = "nosuchtool '))
    code, output = invoke("doctor", "-c", str(journey.config))
    assert code == 2
    assert "'Needs Refinement' is not on the board" in output
    assert "branch 'trunk' does not exist" in output
    assert "'nosuchtool' is not on PATH" in output
    assert output.count("Fix:") >= 4


def test_doctor_on_a_bad_configuration_exits_2(tmp_path: Path) -> None:
    cfg = tmp_path / "tracker-bridge.toml"
    cfg.write_text('[[trackers]]\nname = "x"\nkind = "local"\nurl = "./missing"\n')
    code, output = invoke("doctor", "-c", str(cfg))
    assert code == 2
    assert "tickets folder" in output and "does not exist" in output


def test_score_explains_one_ticket_without_acting(journey: Journey) -> None:
    before = journey.snapshot()
    code, output = invoke("score", "DEMO-2", "-c", str(journey.config), "--json")
    assert code == 0, output
    import json

    payload = json.loads(output)
    assert payload["ref"] == "DEMO-2" and payload["accepted"] is False
    assert {f["name"] for f in payload["factors"]} >= {"scope", "clarity"}
    assert payload["suggestions"]
    assert journey.snapshot() == before
    code, output = invoke("score", "NOPE-9", "-c", str(journey.config))
    assert code == 1 and "not found" in output


def test_trace_shows_the_run(journey: Journey) -> None:
    journey.run_once()
    code, output = invoke("trace", "DEMO-1", "-c", str(journey.config))
    assert code == 0, output
    assert "outcome: succeeded" in output and "agent_exit" in output


def test_each_bad_configuration_exits_2_with_the_key_and_fix(journey: Journey) -> None:
    good = journey.config.read_text()
    cases = {
        "token": (
            good + '\n[[trackers]]\nname = "pay"\nkind = "jira"\nurl = "http://127.0.0.1:9"\n'
            'token_env = "TB_TEST_UNSET_TOKEN"\n',
            "token_env = 'TB_TEST_UNSET_TOKEN': the environment variable TB_TEST_UNSET_TOKEN is not set",
        ),
        "repo": (good.replace('url = "./repo"', 'url = "./no-such-repo"'), "is not a readable git repository"),
        "value": (good.replace("poll_interval = 5", "poll_interval = -1"), "[bridge] poll_interval = -1"),
    }
    for name, (text, expected) in cases.items():
        journey.config.write_text(text)
        for command in ("run", "doctor", "status"):
            if command == "status" and name == "token":
                continue  # status reads only the store: it needs no token
            args = [command, "--once"] if command == "run" else [command]
            code, output = invoke(*args, "-c", str(journey.config))
            assert code == 2, (name, command, output)
            assert expected in output and "Fix:" in output, (name, command, output)


def test_doctor_says_claude_code_needs_the_api_key(journey: Journey, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    journey.config.write_text(journey.config.read_text().replace('backend = "command"', 'backend = "claude-code"'))
    code, output = invoke("doctor", "-c", str(journey.config))
    assert code == 2
    assert "[agent] api_key_env = 'ANTHROPIC_API_KEY'" in output and "export ANTHROPIC_API_KEY=" in output


def test_doctor_and_run_name_a_misspelt_prompt_placeholder(journey: Journey) -> None:
    (journey.root / "prompt.md").write_text("Work on $ref: $titel\n")
    text = journey.config.read_text()
    journey.config.write_text(text.replace("[agent]\n", '[agent]\nprompt_template = "prompt.md"\n'))
    for command in ("doctor", "run"):
        code, output = invoke(command, "-c", str(journey.config))
        assert code == 2, output
        assert "unknown placeholder $titel" in output and "$title" in output
