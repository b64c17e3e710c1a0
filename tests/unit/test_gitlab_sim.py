"""The GitLab simulator answers like GitLab: the checks that keep the connector tests honest."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.sims.gitlab import BOT_TOKEN, GitLabSim, World, make_world


@pytest.fixture
def world() -> Iterator[World]:
    with GitLabSim() as sim:
        yield make_world(sim)


def api(world: World, method: str, path: str, token: str | None = BOT_TOKEN, **kwargs: object) -> httpx.Response:
    headers = {"PRIVATE-TOKEN": token} if token else {}
    return httpx.request(method, f"{world.sim.url}/api/v4{path}", headers=headers, **kwargs)  # type: ignore[arg-type]


def test_requests_the_api_description_rejects_get_gitlabs_errors(world: World) -> None:
    world.issue("Fix rounding")
    unknown = api(world, "GET", "/projects/acme%2Fshop/nothing-here")
    assert unknown.status_code == 404 and unknown.json() == {"error": "404 Not Found"}
    wrong_method = api(world, "PATCH", "/projects/acme%2Fshop/issues/1", json={})
    assert wrong_method.status_code == 405
    bad_body = api(world, "POST", "/projects/acme%2Fshop/issues/1/notes", json={"confidential": True})
    assert bad_body.status_code == 400 and "body" in bad_body.json()["error"]
    bad_iid = api(world, "GET", "/projects/acme%2Fshop/issues/abc")
    assert bad_iid.status_code == 400
    assert len(world.sim.validation_errors) == 4  # each one recorded, so tests can assert there were none


def test_authentication_and_membership(world: World) -> None:
    assert api(world, "GET", "/user", token=None).status_code == 401
    assert api(world, "GET", "/user", token="nope").json() == {"message": "401 Unauthorized"}
    outsider = world.sim.add_user("mallory", token="glpat-m")
    assert outsider.id and api(world, "GET", "/projects/acme%2Fshop", token="glpat-m").status_code == 404
    world.issue("Fix rounding")
    # A guest cannot edit labels (Reporter and up can).
    assert (
        api(world, "PUT", "/projects/acme%2Fshop/issues/1", token="glpat-guest", json={"labels": "x"}).status_code
        == 403
    )


def test_pagination_headers_are_gitlabs(world: World) -> None:
    for n in range(5):
        world.issue(f"Issue {n}")
    first = api(world, "GET", "/projects/acme%2Fshop/issues", params={"per_page": 2})
    h = first.headers
    assert (h["x-page"], h["x-per-page"], h["x-total"], h["x-total-pages"], h["x-next-page"]) == (
        "1",
        "2",
        "5",
        "3",
        "2",
    )
    assert 'rel="next"' in h["link"] and "page=2" in first.links["next"]["url"]
    assert "ratelimit-remaining" in h
    last = api(world, "GET", "/projects/acme%2Fshop/issues", params={"per_page": 2, "page": 3})
    assert last.headers["x-next-page"] == "" and len(last.json()) == 1


def test_scoped_labels_replace_their_sibling_and_record_events(world: World) -> None:
    world.issue("Fix rounding", labels=["workflow::In Progress", "bug"])
    r = api(world, "PUT", "/projects/acme%2Fshop/issues/1", json={"add_labels": "workflow::In Review"})
    assert r.json()["labels"] == ["bug", "workflow::In Review"]
    events = api(world, "GET", "/projects/acme%2Fshop/issues/1/resource_label_events").json()
    assert [(e["action"], e["label"]["name"], e["user"]["username"]) for e in events[-2:]] == [
        ("remove", "workflow::In Progress", "tracker-bot"),
        ("add", "workflow::In Review", "tracker-bot"),
    ]


def test_updated_after_is_inclusive_and_notes_only_editable_by_their_author(world: World) -> None:
    issue = world.issue("Fix rounding")
    stamp = api(world, "GET", "/projects/acme%2Fshop/issues/1").json()["updated_at"]
    same = api(world, "GET", "/projects/acme%2Fshop/issues", params={"updated_after": stamp}).json()
    assert [i["iid"] for i in same] == [1]
    note = world.sim.comment(world.project, issue.iid, "mine", by=world.alice)
    r = api(world, "PUT", f"/projects/acme%2Fshop/issues/1/notes/{note.id}", json={"body": "hijacked"})
    assert r.status_code == 403 and note.body == "mine"
