"""The Linear simulator answers like Linear, and says so when a connector uses something it does not implement."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.sims.linear import LinearSim, seed


@pytest.fixture(scope="module")
def sim() -> Iterator[LinearSim]:
    with LinearSim() as s:
        seed(s)
        yield s


def post(
    sim: LinearSim, query: str, variables: dict[str, object] | None = None, auth: str = "lin_api_bot"
) -> httpx.Response:
    return httpx.post(f"{sim.url}/graphql", json={"query": query, "variables": variables or {}},
                      headers={"Authorization": auth})


def test_unknown_fields_are_refused_with_linears_error_shape(sim: LinearSim) -> None:
    r = post(sim, "{ viewer { idd } }")
    assert r.status_code == 400
    err = r.json()["errors"][0]
    assert "Cannot query field 'idd'" in err["message"] and err["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"


def test_a_filter_the_simulator_does_not_implement_is_an_error_not_ignored(sim: LinearSim) -> None:
    r = post(sim, "query($f: IssueFilter) { issues(filter: $f) { nodes { id } } }", {"f": {"priority": {"eq": 1}}})
    assert "not implemented" in r.json()["errors"][0]["message"]


def test_bad_variables_are_refused(sim: LinearSim) -> None:
    r = post(sim, "query($f: IssueFilter) { issues(filter: $f) { nodes { id } } }", {"f": {"nope": 1}})
    assert r.status_code == 400 and r.json()["data"] is None


def test_missing_credentials_and_headers(sim: LinearSim) -> None:
    r = post(sim, "{ viewer { id } }", auth="")
    assert r.status_code == 400 and r.json()["errors"][0]["extensions"]["code"] == "AUTHENTICATION_ERROR"
    ok = post(sim, "{ viewer { id } }")
    assert ok.headers["x-complexity"] == "2" and int(ok.headers["x-ratelimit-requests-remaining"]) < 5000


def test_too_complex_queries_are_refused(sim: LinearSim) -> None:
    r = post(sim, "{ issues(first: 250) { nodes { labels(first: 250) { nodes { id name } } } } }")
    assert r.status_code == 400 and "too complex" in r.json()["errors"][0]["message"]
