"""Configuration failures a new operator meets, each named by key with its fix (issue 17), and environment
overrides that reach every value, including [[trackers]] and [[repos]] entries."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.unit.test_config import MINIMAL, problems, write
from tracker_bridge.config import load_settings


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "tickets").mkdir()
    (tmp_path / "repo" / ".git").mkdir(parents=True)
    return tmp_path


def test_a_state_url_that_is_not_a_url_names_the_key(folder: Path) -> None:
    [line] = problems(write(folder, '[bridge]\nstate = "tracker-bridge.db"\n' + MINIMAL))
    assert line.startswith("[bridge] state = 'tracker-bridge.db': not a database URL")
    assert "Fix: write sqlite:///tracker-bridge.db or postgresql+psycopg://" in line


def test_the_examples_postgresql_url_without_its_driver_says_what_to_install(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)  # as on a machine without the driver
    [line] = problems(write(folder, '[bridge]\nstate = "postgresql+psycopg://bot:pw@db/tb"\n' + MINIMAL))
    assert "[bridge] state = 'postgresql+psycopg://bot:***@db/tb'" in line  # the password is not printed
    assert "the PostgreSQL driver (psycopg 3) is not installed" in line
    assert "Fix: pip install 'tracker-bridge[postgres]'" in line


def test_an_unknown_database_or_driver_is_named(folder: Path) -> None:
    [line] = problems(write(folder, '[bridge]\nstate = "mysql://db/tb"\n' + MINIMAL))
    assert "'mysql' is not a supported state store" in line
    [line] = problems(write(folder, '[bridge]\nstate = "postgresql+nosuch://db/tb"\n' + MINIMAL))
    assert "PostgreSQL is reached through psycopg 3" in line and "postgresql+psycopg://db/tb" in line


def test_a_folder_given_as_the_configuration_says_so(folder: Path) -> None:
    write(folder, MINIMAL)
    [line] = problems(folder)
    assert "is a folder" in line and f"Fix: pass -c {folder / 'tracker-bridge.toml'}" in line


def test_a_typo_in_a_price_table_lists_the_price_keys(folder: Path) -> None:
    text = MINIMAL + "\n[agent.prices.my-model]\ninptu = 1.0\ninput = 1.0\noutput = 2.0\n"
    [line] = problems(write(folder, text))
    assert line.startswith("[agent] prices.my-model.inptu: unknown key")
    assert "did you mean 'input'?" in line


def test_a_rule_across_keys_names_them_without_dumping_the_section(folder: Path) -> None:
    [line] = problems(write(folder, MINIMAL + '\n[agent]\nbackend = "command"\nmax_turns = 5\n'))
    assert "max_turns" not in line  # the section's other values are not dumped
    assert "Fix: add the command that runs your agent" in line
    assert "Fix: correct the value" not in line
    twice = MINIMAL + '\n[[trackers]]\nname = "demo"\nkind = "local"\nurl = "./tickets"\n'
    [line] = problems(write(folder, twice))
    assert "demo appears more than once" in line and "Fix: give each [[trackers]] entry its own name" in line


def test_environment_overrides_reach_tracker_and_repo_entries_by_name(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (folder / "other").mkdir()
    monkeypatch.setenv("TRACKER_BRIDGE__TRACKERS__DEMO__URL", "./other")
    monkeypatch.setenv("TRACKER_BRIDGE__REPOS__demo__BASE_BRANCH", "trunk")
    monkeypatch.setenv("TRACKER_BRIDGE__REPOS__DEMO__OPTIONS__DEPTH", "1")
    monkeypatch.setenv("TRACKER_BRIDGE__TRIGGER__ALLOWED_ACTORS", '["ana", "bo"]')
    settings = load_settings(write(folder, MINIMAL))
    assert settings.path(settings.trackers[0].url) == (folder / "other").resolve()
    assert settings.repos[0].base_branch == "trunk" and settings.repos[0].options == {"depth": "1"}
    assert settings.trigger.allowed_actors == ["ana", "bo"]


def test_an_unknown_section_entry_or_key_in_the_environment_is_an_error(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRACKER_BRIDGE__AGNET__MAX_TURNS", "3")
    [line] = problems(write(folder, MINIMAL))
    assert line.startswith("TRACKER_BRIDGE__AGNET__MAX_TURNS: no configuration section [agnet]")
    assert "did you mean TRACKER_BRIDGE__AGENT__...?" in line
    monkeypatch.delenv("TRACKER_BRIDGE__AGNET__MAX_TURNS")

    monkeypatch.setenv("TRACKER_BRIDGE__TRACKERS__PAY__URL", "https://x")
    [line] = problems(write(folder, MINIMAL))
    assert "no [[trackers]] entry named 'pay'" in line and "(defined: demo)" in line
    monkeypatch.delenv("TRACKER_BRIDGE__TRACKERS__PAY__URL")

    monkeypatch.setenv("TRACKER_BRIDGE__AGENT__MAX_TRUNS", "3")
    [line] = problems(write(folder, MINIMAL))
    assert "[agent] max_truns (from TRACKER_BRIDGE__AGENT__MAX_TRUNS): unknown key" in line
    assert "did you mean 'max_turns'?" in line


def test_log_level_is_a_key_with_its_choices(folder: Path) -> None:
    assert load_settings(write(folder, '[bridge]\nlog_level = "debug"\n' + MINIMAL)).bridge.log_level == "debug"
    [line] = problems(write(folder, '[bridge]\nlog_level = "loud"\n' + MINIMAL))
    assert line.startswith("[bridge] log_level = 'loud'") and "Fix: use 'debug', 'info', 'warning' or 'error'" in line
