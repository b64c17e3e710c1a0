"""Prompt templates are checked when the configuration is loaded: a misspelt placeholder is an error, not text
that silently reaches the agent."""

from __future__ import annotations

from pathlib import Path

import pytest

from tracker_bridge.agents.prompt import PLACEHOLDERS, default_template, unknown_placeholders
from tracker_bridge.config import ConfigError, load_settings

CONFIG = """
[agent]
prompt_template = "prompt.md"

[[trackers]]
name = "demo"
kind = "local"
url = "./tickets"
"""


def test_packaged_template_uses_only_known_placeholders() -> None:
    assert unknown_placeholders(default_template()) == []


def test_unknown_placeholders_found_in_both_forms_escapes_left_alone() -> None:
    text = "Fix $titel in ${repo}; costs $$5, $ 3 and $title again, $titel twice"
    assert unknown_placeholders(text) == ["titel", "repo"]


def _load(tmp_path: Path, template: str | None) -> list[str]:
    (tmp_path / "tickets").mkdir(exist_ok=True)
    if template is not None:
        (tmp_path / "prompt.md").write_text(template)
    cfg = tmp_path / "tracker-bridge.toml"
    cfg.write_text(CONFIG)
    with pytest.raises(ConfigError) as info:
        load_settings(cfg)
    return info.value.problems


def test_misspelt_placeholder_is_a_config_error_naming_it_and_the_known_ones(tmp_path: Path) -> None:
    [problem] = _load(tmp_path, "Ticket $ref: $titel\n$description")
    assert "[agent] prompt_template = 'prompt.md'" in problem
    assert "unknown placeholder $titel" in problem
    assert all(f"${name}" in problem for name in PLACEHOLDERS)


def test_missing_template_file_is_a_config_error(tmp_path: Path) -> None:
    [problem] = _load(tmp_path, None)
    assert "cannot read" in problem and "prompt.md" in problem


def test_good_template_loads(tmp_path: Path) -> None:
    (tmp_path / "tickets").mkdir()
    (tmp_path / "prompt.md").write_text("Do $ref: $title. Costs $$1.")
    cfg = tmp_path / "tracker-bridge.toml"
    cfg.write_text(CONFIG)
    assert load_settings(cfg).agent.prompt_template == "prompt.md"
