"""Configuration: the TOML contract, environment overrides, and errors that name the key and the fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from tracker_bridge.config import ConfigError, load_settings

MINIMAL = """
[[trackers]]
name = "demo"
kind = "local"
url = "./tickets"
repo = "demo"

[[repos]]
name = "demo"
host = "local"
url = "./repo"
"""


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "tickets").mkdir()
    (tmp_path / "repo" / ".git").mkdir(parents=True)
    return tmp_path


def write(folder: Path, text: str) -> Path:
    path = folder / "tracker-bridge.toml"
    path.write_text(text)
    return path


def problems(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    return info.value.problems


def test_contract_defaults_and_relative_paths(folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir("/")
    settings = load_settings(write(folder, MINIMAL))
    assert settings.bridge.poll_interval == 30 and settings.bridge.max_concurrent_runs == 2
    assert settings.trigger.label == "agent-ready" and settings.trigger.column == "Agent"
    assert settings.stages.review == "In Review" and settings.stages.failed == "Needs Human"
    assert settings.scoring.threshold == 0.6 and settings.agent.backend == "claude-code"
    # Paths are relative to the configuration file, not to the working directory.
    assert settings.path(settings.trackers[0].url) == (folder / "tickets").resolve()
    assert settings.state_url == f"sqlite:///{(folder / 'tracker-bridge.db').resolve()}"


def test_environment_overrides_a_value(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRACKER_BRIDGE__AGENT__MAX_TURNS", "7")
    monkeypatch.setenv("TRACKER_BRIDGE__BRIDGE__POLL_INTERVAL", "2.5")
    settings = load_settings(write(folder, MINIMAL + "\n[agent]\nmax_turns = 40\n"))
    assert settings.agent.max_turns == 7
    assert settings.bridge.poll_interval == 2.5


def test_unknown_key_is_an_error_with_a_suggestion(folder: Path) -> None:
    [line] = problems(write(folder, MINIMAL + "\n[agent]\nmax_turn = 3\n"))
    assert line.startswith("[agent] max_turn: unknown key")
    assert "did you mean 'max_turns'" in line


def test_wrong_value_names_key_value_and_fix(folder: Path) -> None:
    [line] = problems(write(folder, MINIMAL + '\n[bridge]\nmax_concurrent_runs = "two"\n'))
    assert line.startswith("[bridge] max_concurrent_runs = 'two'")
    assert "Fix: use a whole number" in line


def test_wrong_kind_lists_the_choices(folder: Path) -> None:
    [line] = problems(write(folder, MINIMAL.replace('kind = "local"', 'kind = "trello"')))
    assert line.startswith('trackers[0] (name "demo").kind = \'trello\'')
    assert "'jira', 'linear', 'github', 'gitlab' or 'local'" in line


def test_missing_token_variable_names_the_variable(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("JIRA_API_TOKEN", raising=False)
    text = MINIMAL + """
[[trackers]]
name = "pay"
kind = "jira"
url = "https://acme.atlassian.net"
token_env = "JIRA_API_TOKEN"
"""
    [line] = problems(write(folder, text))
    assert "trackers[1] (name \"pay\").token_env = 'JIRA_API_TOKEN'" in line
    assert "export JIRA_API_TOKEN=" in line
    monkeypatch.setenv("JIRA_API_TOKEN", "secret")
    assert load_settings(folder / "tracker-bridge.toml").trackers[1].token() == "secret"


def test_unreadable_repository_and_unknown_repo_reference(folder: Path) -> None:
    text = MINIMAL.replace('url = "./repo"', 'url = "./nowhere"').replace('repo = "demo"', 'repo = "payments"')
    found = problems(write(folder, text))
    assert any("repo = 'payments': no [[repos]] entry" in p and "Fix:" in p for p in found)
    assert any("url = './nowhere'" in p and "not a readable git repository" in p for p in found)


def test_command_backend_needs_a_command(folder: Path) -> None:
    [line] = problems(write(folder, MINIMAL + '\n[agent]\nbackend = "command"\n'))
    assert "[agent]" in line and "needs `command" in line


def test_missing_file_and_bad_toml(tmp_path: Path) -> None:
    [line] = problems(tmp_path / "none.toml")
    assert "does not exist" in line and "-c FILE" in line
    [line] = problems(write(tmp_path, "[agent\n"))
    assert "not valid TOML" in line


def test_the_example_configuration_is_valid(tmp_path: Path) -> None:
    example = Path(__file__).resolve().parents[2] / "config" / "tracker-bridge.example.toml"
    (tmp_path / "tickets").mkdir()
    (tmp_path / "demo-repo" / ".git").mkdir(parents=True)
    copy = tmp_path / "tracker-bridge.toml"
    copy.write_text(example.read_text())
    settings = load_settings(copy)
    assert [t.kind for t in settings.trackers] == ["local"]
    assert settings.agent.forbidden_paths == [".github/workflows/**", ".gitlab-ci.yml"]
