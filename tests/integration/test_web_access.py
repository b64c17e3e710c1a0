"""Who may see and do what on the web port: the API token, the pages off loopback, the controls, the probes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from tracker_bridge.config import ConfigError, Settings, settings_from_dict
from tracker_bridge.control import Controls
from tracker_bridge.loop_health import LoopHealth
from tracker_bridge.models import Stage
from tracker_bridge.store import Store
from tracker_bridge.web import create_app, security_warnings

TOKEN = "correct-horse-battery-staple"


def make_settings(tmp_path: Path, **web: Any) -> Settings:
    (tmp_path / "tickets").mkdir(exist_ok=True)
    return settings_from_dict(
        {
            "bridge": {"state": f"sqlite:///{tmp_path / 'state.db'}", "poll_interval": 10},
            "trackers": [
                {"name": "demo", "kind": "local", "url": "tickets"},
                {"name": "other", "kind": "local", "url": "tickets"},
            ],
            "web": {"enabled": True, **web},
        },
        base_dir=tmp_path,
    )


def app_for(settings: Settings, loop: LoopHealth | None = None) -> tuple[TestClient, Store]:
    store = Store(settings.state_url)
    store.get_or_create_ticket("demo", "DEMO-7", title="Fix the rounding", stage=Stage.RUNNING.value)
    return TestClient(create_app(settings, store, loop=loop)), store


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_with_a_token_the_api_needs_it_and_loopback_pages_stay_open(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRACKER_BRIDGE_API_TOKEN", TOKEN)
    http, _ = app_for(make_settings(tmp_path))
    assert http.get("/api/tickets").status_code == 401
    assert http.get("/api/tickets", headers=bearer("wrong")).status_code == 401
    answer = http.get("/api/tickets", headers=bearer(TOKEN))
    assert answer.status_code == 200 and answer.json()[0]["ref"] == "DEMO-7"
    assert http.get("/api/now", headers=bearer(TOKEN)).json()["running"] == []
    assert http.get("/").status_code == 200  # listen is 127.0.0.1: the pages need no token
    assert "TRACKER_BRIDGE_API_TOKEN" in http.get("/api/tickets").json()["error"]


def test_without_a_token_the_read_api_is_open_and_the_controls_are_off(tmp_path: Path) -> None:
    http, store = app_for(make_settings(tmp_path))
    assert http.get("/api/tickets").status_code == 200
    refused = http.post("/api/pause", headers=bearer("anything"))
    assert refused.status_code == 403 and "TRACKER_BRIDGE_API_TOKEN" in refused.json()["error"]
    assert Controls(store).pending() == []


def test_off_loopback_the_pages_need_the_token_through_a_sign_in(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRACKER_BRIDGE_API_TOKEN", TOKEN)
    http, _ = app_for(make_settings(tmp_path, listen="0.0.0.0:8787"))
    for path in ("/", "/tickets", "/tickets/demo/DEMO-7", "/fragments/now", "/runs/1/trace"):
        answer = http.get(path, follow_redirects=False)
        assert answer.status_code == 303 and answer.headers["location"].startswith("/login"), path
    assert http.get("/metrics").status_code == 401
    assert http.get("/metrics", headers=bearer(TOKEN)).status_code == 200  # a scraper sends the bearer token
    wrong = http.post("/login?next=/tickets", data={"token": "nope"}, follow_redirects=False)
    assert wrong.status_code == 401 and "not right" in wrong.text
    signed_in = http.post("/login?next=/tickets", data={"token": TOKEN}, follow_redirects=False)
    assert signed_in.status_code == 303 and signed_in.headers["location"] == "/tickets"
    cookie = signed_in.headers["set-cookie"]
    assert TOKEN not in cookie and "httponly" in cookie.lower() and "samesite=strict" in cookie.lower()
    assert "DEMO-7" in http.get("/tickets").text  # the cookie is kept by the client
    # The probes stay open for the orchestrator, whatever the token.
    assert http.get("/healthz").status_code == 200
    # The cookie reads; it never works the controls (a cross-site form could send a cookie, not this header).
    assert http.post("/api/pause").status_code == 401


def test_controls_record_requests_only_with_the_bearer_token(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRACKER_BRIDGE_API_TOKEN", TOKEN)
    http, store = app_for(make_settings(tmp_path))
    controls = Controls(store)
    for path in ("/api/pause", "/api/resume", "/api/tickets/DEMO-7/stop", "/api/tickets/DEMO-7/retry"):
        assert http.post(path).status_code == 401, path
        assert http.post(path, headers=bearer("wrong")).status_code == 401, path
    assert controls.pending() == []
    assert http.post("/api/tickets/DEMO-7/stop", headers=bearer(TOKEN)).status_code == 202
    assert http.post("/api/tickets/NOPE-1/retry", headers=bearer(TOKEN)).status_code == 404
    assert http.post("/api/pause", headers=bearer(TOKEN)).json()["paused"] is True
    assert controls.paused()
    assert [(c.kind, c.ref, c.requested_by) for c in controls.pending()] == [
        ("stop", "DEMO-7", "web"),
        ("pause", None, "web"),
    ]
    assert 'id="paused-flag" class="flag paused"' in http.get("/").text
    assert http.post("/api/resume", headers=bearer(TOKEN)).json()["paused"] is False
    # References with a slash and a hash (GitHub, GitLab) travel percent-encoded.
    store.get_or_create_ticket("gh", "acme/app#12", title="A GitHub issue", stage=Stage.FAILED.value)
    assert http.post("/api/tickets/acme%2Fapp%2312/retry", headers=bearer(TOKEN)).json()["ref"] == "acme/app#12"
    assert http.get("/tickets/gh/acme%2Fapp%2312").status_code == 200
    controls.mark_done(controls.pending("stop")[0].id)
    assert [c.kind for c in controls.pending()] == ["pause", "resume", "retry"]


def test_a_warning_names_a_dashboard_open_to_the_network(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert security_warnings(make_settings(tmp_path)) == []
    assert security_warnings(make_settings(tmp_path, listen="[::1]:8787")) == []
    [warning] = security_warnings(make_settings(tmp_path, listen="0.0.0.0:8787"))
    assert "TRACKER_BRIDGE_API_TOKEN" in warning and "0.0.0.0:8787" in warning
    monkeypatch.setenv("TRACKER_BRIDGE_API_TOKEN", TOKEN)
    assert security_warnings(make_settings(tmp_path, listen="0.0.0.0:8787")) == []


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_healthz_follows_the_loop_not_the_trackers(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)  # poll_interval = 10: stalled after 30 s without a finished cycle
    clock = FakeClock()
    loop = LoopHealth(settings.bridge.poll_interval, clock=clock)
    http, store = app_for(settings, loop)
    assert http.get("/healthz").status_code == 200  # the first cycle gets the same grace
    store.save_poll_error("demo", "503 from the tracker")
    loop.cycle_finished(0.4)
    assert http.get("/healthz").status_code == 200  # a failing tracker is no reason to restart the daemon
    clock.now += 31
    stalled = http.get("/healthz")
    assert stalled.status_code == 503 and stalled.json()["seconds_since_cycle"] == 31.0
    loop.cycle_finished(2.0)
    assert http.get("/healthz").json()["ok"] is True
    metrics = http.get("/metrics").text
    assert "tracker_bridge_cycle_duration_seconds_count 2.0" in metrics
    assert 'tracker_bridge_cycle_duration_seconds_bucket{le="0.5"} 1.0' in metrics
    assert "tracker_bridge_last_cycle_timestamp_seconds" in metrics


def test_readyz_says_whether_every_tracker_answered_its_last_poll(tmp_path: Path) -> None:
    http, store = app_for(make_settings(tmp_path))
    first = http.get("/readyz")
    assert first.status_code == 503 and first.json()["trackers"]["demo"] == "not polled yet"
    store.save_cursor("demo", None)
    store.save_poll_error("other", "connection refused")
    failing = http.get("/readyz")
    assert failing.status_code == 503
    assert failing.json()["trackers"] == {"demo": "ok", "other": "last poll failed: connection refused"}
    store.save_cursor("other", "c1")
    assert http.get("/readyz").json() == {"ok": True, "trackers": {"demo": "ok", "other": "ok"}}


def test_an_ipv6_listen_address_needs_brackets(tmp_path: Path) -> None:
    assert make_settings(tmp_path, listen="[::1]:8787").web.host == "::1"
    with pytest.raises(ConfigError) as err:
        make_settings(tmp_path, listen="::1:8787")
    assert "[web] listen" in str(err.value) and "[::1]:8787" in str(err.value)


def test_the_ticket_list_is_paged(tmp_path: Path) -> None:
    http, store = app_for(make_settings(tmp_path))
    for i in range(1, 121):
        store.get_or_create_ticket("demo", f"BULK-{i}", title=f"bulk {i}", stage=Stage.DECLINED.value)
    first = http.get("/tickets").text
    assert "page 1 of 3 (121)" in first and first.count('href="/tickets/demo/') == 50
    last = http.get("/tickets?page=3").text
    assert last.count('href="/tickets/demo/') == 21 and "page 3 of 3" in last
    assert http.get("/tickets?page=999").status_code == 200  # past the end: the last page
    declined = http.get("/tickets?stage=declined&page=3").text
    assert declined.count('href="/tickets/demo/') == 20 and "stage=declined&amp;page=2" in declined
    api = http.get("/api/tickets?page=2").json()
    assert (api["page"], api["pages"], api["total"], len(api["tickets"])) == (2, 3, 121, 50)


def test_a_link_from_a_ticket_never_runs_script(tmp_path: Path) -> None:
    http, store = app_for(make_settings(tmp_path))
    row = store.ticket("demo", "DEMO-7")
    assert row is not None
    store.update_ticket(row.id, url="javascript:alert(1)", pr_url="https://git.example/pr/3", title="<b>bold</b>")
    page = http.get("/tickets/demo/DEMO-7").text
    assert "javascript:" not in page and 'href="https://git.example/pr/3"' in page
    assert "&lt;b&gt;bold&lt;/b&gt;" in page  # titles are escaped
