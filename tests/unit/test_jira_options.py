"""Jira tracker options and the poll cursor: clear configuration errors, JQL dates in the bot's time zone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tracker_bridge.config import ConfigError, TrackerConfig
from tracker_bridge_connectors.jira.cursor import Cursor, build_jql, jql_date
from tracker_bridge_connectors.jira.options import JiraOptions


def cfg(**kw: object) -> TrackerConfig:
    base: dict[str, object] = {
        "name": "pay",
        "kind": "jira",
        "url": "https://acme.atlassian.net",
        "user": "bot@acme.com",
        "token_env": "JIRA_API_TOKEN",
        "query": "project = PAY",
    }
    base.update(kw)
    return TrackerConfig(**base)  # type: ignore[arg-type]


def test_defaults_are_cloud_basic_auth_and_v3() -> None:
    opts = JiraOptions.parse(cfg())
    assert (opts.pat, opts.api_version, opts.board, opts.page_size) == (False, "3", None, 100)


def test_no_user_means_a_data_center_token_on_v2() -> None:
    opts = JiraOptions.parse(cfg(user=None, options={"board": 12}))
    assert (opts.pat, opts.api_version, opts.board) == (True, "2", 12)


def test_mistakes_name_the_key_and_the_fix() -> None:
    with pytest.raises(ConfigError) as caught:
        JiraOptions.parse(
            cfg(user=None, token_env=None, options={"auth": "basic", "board": "main", "bord": 1, "page_size": 500})
        )
    text = "\n".join(caught.value.problems)
    assert "options.bord: unknown option" in text and "board:" in text
    assert "options.board = 'main': not a board id" in text
    assert "options.page_size = 500" in text and "1 to 100" in text
    assert "user: missing for basic auth" in text
    assert "token_env: missing" in text


def test_jql_dates_are_written_in_the_bots_zone_at_minute_precision() -> None:
    moment = datetime(2026, 1, 15, 10, 30, 59, tzinfo=UTC)
    assert jql_date(moment, "Europe/Paris") == '"2026/01/15 11:30"'
    assert jql_date(moment, None) == '"2026/01/15 10:30"'
    jql = build_jql("project = PAY", 'labels = "agent-ready"', moment, timedelta(minutes=2), "UTC")
    expected = '(project = PAY) AND (labels = "agent-ready") AND updated >= "2026/01/15 10:28"'
    assert jql == expected + " ORDER BY created ASC, key ASC"


def test_an_unreadable_cursor_means_a_full_poll_not_a_crash() -> None:
    assert Cursor.decode("not json").since is None
    assert Cursor.decode('{"v": 99}').since is None
    c = Cursor(since=datetime(2026, 1, 1, tzinfo=UTC), seen={"PAY-1": "2026-01-01T00:00:00.000+0000"}, tz="UTC")
    assert Cursor.decode(c.encode()) == c
