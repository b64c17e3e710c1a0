"""The dashboard, JSON API, metrics and webhooks, on the state a real journey left."""

from __future__ import annotations

import hashlib
import hmac

import pytest
from starlette.testclient import TestClient

from tests.journey_helpers import Journey
from tracker_bridge.config import load_settings
from tracker_bridge.store import Store
from tracker_bridge.web import create_app, verify_webhook


@pytest.fixture
def client(journey: Journey, monkeypatch: pytest.MonkeyPatch) -> tuple[TestClient, list[int]]:
    journey.run_once()
    monkeypatch.setenv("TRACKER_BRIDGE_WEBHOOK_SECRET", "s3cret")
    settings = load_settings(journey.config)
    woken: list[int] = []
    app = create_app(settings, Store(settings.state_url), wake=lambda: woken.append(1))
    return TestClient(app), woken


def test_dashboard_and_api_show_the_tickets(client: tuple[TestClient, list[int]]) -> None:
    http, _ = client
    page = http.get("/")
    assert page.status_code == 200 and "DEMO-1" in page.text and "succeeded" in page.text
    listing = http.get("/tickets")
    assert "DEMO-2" in listing.text and "Needs Refinement" in listing.text
    tickets = {t["ref"]: t for t in http.get("/api/tickets").json()}
    assert tickets["DEMO-1"]["stage"] == "review" and tickets["DEMO-2"]["stage"] == "declined"
    detail = http.get("/api/tickets/demo/DEMO-1").json()
    assert detail["runs"][0]["outcome"] == "succeeded"
    assert {e["kind"] for e in detail["effects"]} >= {"move", "comment", "push", "open_pr"}
    trace = http.get(f"/api/runs/{detail['runs'][0]['id']}/trace").json()
    assert any(event["kind"] == "tests" and event["passed"] for event in trace)
    assert "clarity" in http.get("/tickets/demo/DEMO-2").text
    assert http.get("/api/tickets/demo/NOPE-1").status_code == 404


def test_metrics_count_tickets_by_stage_and_runs(client: tuple[TestClient, list[int]]) -> None:
    http, _ = client
    text = http.get("/metrics").text
    assert 'tracker_bridge_tickets{stage="review"} 1.0' in text
    assert 'tracker_bridge_tickets{stage="declined"} 1.0' in text
    assert 'tracker_bridge_runs_total{outcome="succeeded"} 1.0' in text
    assert "tracker_bridge_cycle_duration_seconds_bucket" in text
    assert 'tracker_bridge_build_info{python="' in text
    assert "process_cpu_seconds_total" in text or "python_info" in text
    # the ticket in review keeps its workspace: the gauge shows the disk it uses
    used = next(line for line in text.splitlines() if line.startswith("tracker_bridge_workspace_bytes "))
    assert float(used.split()[1]) > 0


def test_only_a_signed_webhook_wakes_the_poll_loop(client: tuple[TestClient, list[int]]) -> None:
    http, woken = client
    body = b'{"action":"labeled"}'
    good = "sha256=" + hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
    assert http.post("/webhooks/demo", content=body, headers={"X-Hub-Signature-256": "sha256=00"}).status_code == 401
    assert http.post("/webhooks/demo", content=body).status_code == 401
    assert woken == []
    assert http.post("/webhooks/demo", content=body, headers={"X-Hub-Signature-256": good}).status_code == 202
    assert http.post("/webhooks/nope", content=body, headers={"X-Hub-Signature-256": good}).status_code == 404
    assert woken == [1]


def test_each_tracker_kind_takes_only_its_own_signature_scheme() -> None:
    body = b"{}"
    mac = hmac.new(b"k", body, hashlib.sha256).hexdigest()
    every = {
        "x-hub-signature-256": f"sha256={mac}",
        "x-hub-signature": f"sha256={mac}",
        "linear-signature": mac,
        "x-gitlab-token": "k",
    }
    own = {"github": "x-hub-signature-256", "jira": "x-hub-signature", "linear": "linear-signature",
           "gitlab": "x-gitlab-token"}
    for kind, header in own.items():
        assert verify_webhook("k", body, {header: every[header]}, kind), kind
        for other, value in every.items():
            if other != header:
                assert not verify_webhook("k", body, {other: value}, kind), f"{kind} took {other}"
    # The example: a GitLab token on a GitHub tracker is refused.
    assert not verify_webhook("k", body, {"x-gitlab-token": "k"}, "github")
    assert not verify_webhook("k", body + b" ", {"linear-signature": mac}, "linear")
    assert not verify_webhook("k", body, {"x-gitlab-token": "K"}, "gitlab")
    assert not verify_webhook("k", body, {"x-hub-signature-256": mac}, "github")  # the sha256= prefix is required


def test_a_gitlab_token_on_a_local_tracker_is_refused(client: tuple[TestClient, list[int]]) -> None:
    http, woken = client
    response = http.post("/webhooks/demo", content=b"{}", headers={"X-Gitlab-Token": "s3cret"})
    assert response.status_code == 401 and "x-hub-signature-256" in response.text
    assert woken == []
