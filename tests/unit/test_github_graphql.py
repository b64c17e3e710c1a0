"""Every GraphQL document the connector sends is valid against GitHub's official schema, and the simulator rejects
what GitHub would reject (GraphQL and REST)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import graphql
import httpx
import pytest

from tests.sims.github import GitHubSim
from tests.sims.github.gql import github_schema
from tracker_bridge_connectors.github.client import GitHubAPIError, GitHubClient
from tracker_bridge_connectors.github_projects import queries
from tracker_bridge_connectors.retry import RetryPolicy


@pytest.mark.parametrize("name", sorted(queries.ALL_DOCUMENTS))
def test_every_connector_document_validates_against_the_official_schema(name: str) -> None:
    document = graphql.parse(queries.ALL_DOCUMENTS[name])
    assert graphql.validate(github_schema(), document) == []


def test_all_documents_lists_every_constant() -> None:
    constants = {n for n in dir(queries) if n.isupper() and n != "ALL_DOCUMENTS" and not n.startswith("_")}
    assert constants == set(queries.ALL_DOCUMENTS)


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[GitHubSim]:
    with GitHubSim(tmp_path) as gh:
        gh.create_org("acme")
        yield gh


def _post(sim: GitHubSim, query: str, token: str | None = None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token or sim.token}"}
    return httpx.post(f"{sim.url}/graphql", json={"query": query}, headers=headers)


def test_simulator_rejects_invalid_queries_like_github(sim: GitHubSim) -> None:
    unknown_field = _post(sim, 'query { organization(login: "acme") { projectV2(number: 1) { colour } } }')
    assert unknown_field.status_code == 200
    error = unknown_field.json()["errors"][0]
    assert "Cannot query field 'colour' on type 'ProjectV2'" in error["message"]
    assert error["locations"] == [{"line": 1, "column": 62}]
    assert "data" not in unknown_field.json()

    missing_argument = _post(sim, 'query { organization(login: "acme") { projectV2 { id } } }')
    assert "projectV2(number:)' of type 'Int!' is required" in missing_argument.json()["errors"][0]["message"]

    syntax = _post(sim, "query { organization(login: ")
    assert syntax.status_code == 200 and "Syntax Error" in syntax.json()["errors"][0]["message"]

    not_found = _post(sim, 'query { organization(login: "nobody") { login } }')
    body = not_found.json()
    assert body["data"] == {"organization": None}
    assert body["errors"][0]["type"] == "NOT_FOUND" and body["errors"][0]["path"] == ["organization"]

    assert _post(sim, "query { viewer { login } }", token="bad").status_code == 401


def test_simulator_rejects_rest_requests_github_would_reject(sim: GitHubSim, tmp_path: Path) -> None:
    sim.create_repo("acme/widgets")
    client = GitHubClient(sim.url, sim.token, policy=RetryPolicy(attempts=1))
    with pytest.raises(GitHubAPIError) as err:
        client.rest("POST", "/repos/acme/widgets/issues/1/comments", json_body={"text": "no body field"})
    assert err.value.status == 422
    with pytest.raises(GitHubAPIError) as err:
        client.rest("GET", "/repos/acme/widgets/no-such-thing")
    assert err.value.status == 404
    with pytest.raises(GitHubAPIError) as err:
        client.rest("PUT", "/repos/acme/widgets/issues/1/comments", json_body={"body": "x"})
    assert err.value.status == 404  # GitHub answers an unsupported method with 404 too


def test_conditional_requests_and_rate_limit_headers(sim: GitHubSim) -> None:
    repo = sim.create_repo("acme/widgets")
    sim.create_issue(repo, "A", "x")
    client = GitHubClient(sim.url, sim.token)
    first = client.rest("GET", "/repos/acme/widgets/issues/1/comments", conditional=True)
    second = client.rest("GET", "/repos/acme/widgets/issues/1/comments", conditional=True)
    assert not first.not_modified and second.not_modified and second.data == first.data
    assert int(first.headers["x-ratelimit-remaining"]) == sim.world.core.remaining
    assert sim.world.core.used == 1  # the 304 was free


def test_primary_rate_limit_waits_for_reset(sim: GitHubSim) -> None:
    import time

    sim.world.core.remaining = 0
    sim.world.core.reset = int(time.time()) + 2
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        time.sleep(seconds)

    client = GitHubClient(sim.url, sim.token, policy=RetryPolicy(attempts=3, base_delay=0.01, max_delay=3), sleep=sleep)
    assert client.rest("GET", "/user").data["login"] == sim.bot
    assert slept and 0 < slept[0] <= 3
