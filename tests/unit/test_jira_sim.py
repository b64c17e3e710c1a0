"""The Jira simulator refuses what Jira's API description refuses, and answers the way Jira does."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests
from jira import JIRA
from jira.exceptions import JIRAError

from tests.sims.jira import JiraSim


@pytest.fixture
def sim() -> Iterator[JiraSim]:
    with JiraSim() as s:
        s.create_issue("PAY", "A ticket")
        yield s


def call(sim: JiraSim, method: str, path: str, **kw: object) -> requests.Response:
    return requests.request(method, sim.url + path, auth=("bot@acme.test", "s3cret"), timeout=5, **kw)  # type: ignore[arg-type]


def test_the_jira_packages_numeric_transition_id_is_refused_like_v3_does(sim: JiraSim) -> None:
    # jira.JIRA.transition_issue sends {"transition": {"id": 31}}; REST v3 describes the id as a string.
    client = JIRA(
        sim.url,
        basic_auth=("bot@acme.test", "s3cret"),
        options={"rest_api_version": "3"},
        get_server_info=False,
        max_retries=0,
    )
    with pytest.raises(JIRAError) as caught:
        client.transition_issue("PAY-1", "30")
    assert caught.value.status_code == 400
    assert "is not of type 'string'" in (caught.value.text or "")
    assert sim.status_name("PAY-1") == "To Do"
    answer = call(sim, "POST", "/rest/api/3/issue/PAY-1/transitions", json={"transition": {"id": 30}}).json()
    assert set(answer) == {"errorMessages", "errors"}


def test_unknown_paths_missing_parameters_and_bad_bodies(sim: JiraSim) -> None:
    unknown = call(sim, "GET", "/rest/api/3/issue/PAY-1/nonsense")
    assert unknown.status_code == 404 and unknown.json()["errorMessages"]
    missing = call(sim, "DELETE", "/rest/api/3/issue/PAY-1/remotelink")  # globalId is required
    assert missing.status_code == 400 and "globalId" in missing.json()["errorMessages"][0]
    wrong_type = call(sim, "PUT", "/rest/api/3/issue/PAY-1", json={"update": {"labels": "not-a-list"}})
    assert wrong_type.status_code == 400
    plain = call(sim, "POST", "/rest/api/3/issue/PAY-1/comment", json={"body": "v3 wants ADF, not text"})
    assert plain.status_code == 400 and "Atlassian Document" in plain.json()["errors"]["comment"]
    assert sim.issues["PAY-1"].comments == [] and sim.issues["PAY-1"].labels == []
    assert len(sim.rejected) == 3  # the description refused three; the ADF check is Jira's own


def test_jql_errors_and_authentication_are_answered_like_jira(sim: JiraSim) -> None:
    bad = call(sim, "GET", "/rest/api/3/search/jql", params={"jql": "project = PAY AND colour = red"})
    assert bad.status_code == 400
    assert bad.json() == {
        "errorMessages": ["Field 'colour' does not exist or you do not have permission to view it."],
        "errors": {},
    }
    status = call(sim, "GET", "/rest/api/3/search/jql", params={"jql": 'status = "Nope"'})
    assert status.json()["errorMessages"] == ["The value 'Nope' does not exist for the field 'status'."]
    anonymous = requests.get(sim.url + "/rest/api/3/myself", timeout=5)
    assert anonymous.status_code == 401 and anonymous.json()["errorMessages"]


def test_jql_dates_are_read_in_the_searching_users_time_zone(sim: JiraSim) -> None:
    issue = sim.issues["PAY-1"]
    # The bot's zone is Europe/Paris (UTC+1 in winter): 10:30 UTC is 11:30 there.
    from datetime import UTC, datetime

    sim.touch("PAY-1", datetime(2026, 1, 15, 10, 30, 20, tzinfo=UTC))
    found = call(sim, "GET", "/rest/api/3/search/jql", params={"jql": 'updated >= "2026/01/15 11:30"'}).json()
    assert [i["key"] for i in found["issues"]] == [issue.key]
    later = call(sim, "GET", "/rest/api/3/search/jql", params={"jql": 'updated >= "2026/01/15 11:31"'}).json()
    assert later["issues"] == []


def test_faults_are_injected_before_anything_happens(sim: JiraSim) -> None:
    sim.server.inject(429, count=1, headers={"Retry-After": "3"})
    limited = call(sim, "GET", "/rest/api/3/myself")
    assert limited.status_code == 429 and limited.headers["Retry-After"] == "3"
    assert call(sim, "GET", "/rest/api/3/myself").status_code == 200
