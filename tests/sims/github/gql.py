"""GraphQL for the GitHub simulator: graphql-core executes queries against GitHub's official schema.

A query that GitHub would reject (unknown field, wrong argument, bad variable) fails here the same way:
HTTP 200 with {"errors": [{"message", "locations"}]}. Resolvers exist only for what tracker-bridge asks for; they
are plain dicts whose callables receive (info, **arguments), which graphql-core's default resolver supports.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import graphql

from tests.sims.github.world import Issue, Item, Project, iso

if TYPE_CHECKING:
    from tests.sims.github import GitHubSim

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "schemas" / "github" / "schema.graphql"


@lru_cache(maxsize=1)
def github_schema() -> graphql.GraphQLSchema:
    """The official schema, built once per test session (it is 1.2 MB). It defines two fields of
    EnterpriseOwnerInfo twice, hence assume_valid."""
    sdl = SCHEMA_PATH.read_text(encoding="utf-8")
    return graphql.build_schema(sdl, assume_valid_sdl=True, assume_valid=True)


class GitHubGraphQLError(Exception):
    """An error as GitHub reports it, with its `type` (NOT_FOUND, FORBIDDEN, ...)."""

    def __init__(self, message: str, kind: str = "NOT_FOUND") -> None:
        super().__init__(message)
        self.kind = kind


def _error_json(err: graphql.GraphQLError) -> dict[str, Any]:
    out: dict[str, Any] = {"message": err.message}
    if err.locations:
        out["locations"] = [{"line": loc.line, "column": loc.column} for loc in err.locations]
    if err.path:
        out["path"] = list(err.path)
    original = err.original_error
    if isinstance(original, GitHubGraphQLError):
        out["type"] = original.kind
    return out


def _connection(nodes: list[Any], first: int | None = None, last: int | None = None) -> dict[str, Any]:
    total = len(nodes)
    if first is not None:
        nodes = nodes[:first]
    if last is not None:
        nodes = nodes[-last:] if last else []
    return {
        "nodes": nodes,
        "totalCount": total,
        "pageInfo": {"hasNextPage": len(nodes) < total, "hasPreviousPage": False, "endCursor": None},
    }


class Resolvers:
    def __init__(self, sim: GitHubSim, viewer: str, scopes: str | None = None) -> None:
        self.sim = sim
        self.viewer = viewer
        # a classic token's scopes; None for fine-grained and app tokens (their permissions are not modelled)
        self.scopes = None if scopes is None else {s.strip() for s in scopes.split(",") if s.strip()}

    def require(self, field: str, *accepted: str) -> None:
        """GitHub's answer when a classic token lacks the scope a field needs."""
        if self.scopes is not None and not self.scopes & set(accepted):
            raise GitHubGraphQLError(
                f"Your token has not been granted the required scopes to execute this query. The '{field}' field "
                f"requires one of the following scopes: {list(accepted)}, but your token has only been granted the: "
                f"{sorted(self.scopes)} scopes. Please modify your token's scopes at: https://github.com/settings/tokens.",
                kind="INSUFFICIENT_SCOPES",
            )

    def root(self) -> dict[str, Any]:
        return {
            "viewer": lambda info: self.actor(self.viewer),
            "organization": self.organization,
            "user": self.user,
            "repository": self.repository,
            "rateLimit": self.rate_limit,
            "node": self.node,
            "updateProjectV2ItemFieldValue": self.update_item_field_value,
            "addProjectV2ItemById": self.add_item,
        }

    # --- queries ---------------------------------------------------------------------------------------------------

    def actor(self, login: str | None) -> dict[str, Any] | None:
        if login is None:
            return None
        return {"__typename": "User", "login": login, "id": f"U_{self.sim.world.user(login)}"}

    def organization(self, info: Any, login: str) -> dict[str, Any]:
        if login not in self.sim.world.orgs:
            raise GitHubGraphQLError(f"Could not resolve to an Organization with the login of '{login}'.")
        return self.owner(login, is_user=False)

    def user(self, info: Any, login: str) -> dict[str, Any]:
        if login not in self.sim.world.users or login in self.sim.world.orgs:
            raise GitHubGraphQLError(f"Could not resolve to a User with the login of '{login}'.")
        return self.owner(login, is_user=True)

    def owner(self, login: str, is_user: bool) -> dict[str, Any]:
        def project_v2(info: Any, number: int) -> dict[str, Any]:
            self.require("projectV2", "read:project", "project")
            project = self.sim.project(login, number, is_user)
            if project is None:
                raise GitHubGraphQLError(f"Could not resolve to a ProjectV2 with the number {number}.")
            return self.project(project)

        return {"__typename": "User" if is_user else "Organization", "login": login, "projectV2": project_v2}

    def project(self, p: Project) -> dict[str, Any]:
        def field(info: Any, name: str) -> dict[str, Any] | None:
            for f in p.fields:
                if f.name == name:
                    if f.data_type == "single_select":
                        options = [{"id": o.id, "name": o.name, "nameHTML": o.name, "color": "GRAY"} for o in f.options]
                        return {
                            "__typename": "ProjectV2SingleSelectField",
                            "id": f.node_id,
                            "databaseId": f.id,
                            "name": f.name,
                            "dataType": "SINGLE_SELECT",
                            "options": lambda info, _options=options, **_: _options,
                        }
                    return {"__typename": "ProjectV2Field", "id": f.node_id, "databaseId": f.id, "name": f.name}
            return None

        kind = "users" if p.is_user else "orgs"
        return {
            "__typename": "ProjectV2",
            "id": p.node_id,
            "number": p.number,
            "title": p.title,
            "url": f"{self.sim.url}/{kind}/{p.owner}/projects/{p.number}",
            "closed": False,
            "field": field,
            "items": lambda info, first=None, last=None, **_: _connection(
                [self.item(it) for it in p.items if not it.archived], first, last
            ),
        }

    def item(self, it: Item) -> dict[str, Any]:
        def value_by_name(info: Any, name: str) -> dict[str, Any] | None:
            status = it.project.status
            if name != status.name or it.status is None:
                return None
            return {
                "__typename": "ProjectV2ItemFieldSingleSelectValue",
                "id": f"PVTFSV_{it.id}",
                "name": it.status_name,
                "optionId": it.status,
                "updatedAt": iso(it.status_updated),
                "createdAt": iso(it.status_updated),
                "creator": self.actor(it.status_setter),
            }

        return {
            "__typename": "ProjectV2Item",
            "id": it.node_id,
            "isArchived": it.archived,
            "type": "ISSUE",
            "updatedAt": iso(it.updated_at),
            "createdAt": iso(it.created_at),
            "project": lambda info: self.project(it.project),
            "content": lambda info: self.issue(it.issue),
            "fieldValueByName": value_by_name,
        }

    def repository(self, info: Any, owner: str, name: str, **_: Any) -> dict[str, Any]:
        repo = self.sim.world.repos.get(f"{owner}/{name}")
        if repo is None:
            raise GitHubGraphQLError(f"Could not resolve to a Repository with the name '{owner}/{name}'.")

        def issue(info: Any, number: int) -> dict[str, Any]:
            found = repo.issues.get(number)
            if found is None:
                raise GitHubGraphQLError(f"Could not resolve to an Issue with the number of {number}.")
            return self.issue(found)

        return {
            "__typename": "Repository",
            "id": f"R_{repo.id}",
            "name": repo.name,
            "nameWithOwner": repo.full_name,
            "issue": issue,
        }

    def issue(self, i: Issue) -> dict[str, Any]:
        def project_items(info: Any, first: int | None = None, last: int | None = None, **kw: Any) -> dict[str, Any]:
            include_archived = kw.get("includeArchived", True)
            items = [
                self.item(it)
                for p in self.sim.world.projects
                for it in p.items
                if it.issue is i and (include_archived or not it.archived)
            ]
            return _connection(items, first, last)

        comments = [
            {
                "__typename": "IssueComment",
                "id": f"IC_{c.id}",
                "databaseId": c.id,
                "body": c.body,
                "author": self.actor(c.user),
                "createdAt": iso(c.created_at),
            }
            for c in i.comments
        ]
        return {
            "__typename": "Issue",
            "id": i.node_id,
            "number": i.number,
            "title": i.title,
            "body": i.body,
            "url": f"{self.sim.url}/{i.repo.full_name}/issues/{i.number}",
            "state": i.state.upper(),
            "updatedAt": iso(i.updated_at),
            "createdAt": iso(i.created_at),
            "labels": lambda info, first=None, last=None, **_: _connection(
                [{"__typename": "Label", "name": n} for n in i.labels], first, last
            ),
            "comments": lambda info, first=None, last=None, **_: _connection(comments, first, last),
            "projectItems": project_items,
        }

    def rate_limit(self, info: Any, **_: Any) -> dict[str, Any]:
        g = self.sim.world.graphql
        return {
            "cost": 1,
            "limit": g.limit,
            "remaining": g.remaining,
            "used": g.used,
            "nodeCount": 1,
            "resetAt": iso(None) or "",
        }

    def node(self, info: Any, id: str) -> dict[str, Any] | None:
        for p in self.sim.world.projects:
            if p.node_id == id:
                return self.project(p)
            for it in p.items:
                if it.node_id == id:
                    return self.item(it)
        return None

    # --- mutations -------------------------------------------------------------------------------------------------

    def _project_by_id(self, node_id: str) -> Project:
        for p in self.sim.world.projects:
            if p.node_id == node_id:
                return p
        raise GitHubGraphQLError(f"Could not resolve to a node with the global id of '{node_id}'")

    def update_item_field_value(self, info: Any, input: dict[str, Any]) -> dict[str, Any]:
        self.require("updateProjectV2ItemFieldValue", "project")
        project = self._project_by_id(input["projectId"])
        item = next((it for it in project.items if it.node_id == input["itemId"]), None)
        if item is None:
            raise GitHubGraphQLError(f"Could not resolve to a node with the global id of '{input['itemId']}'")
        if input["fieldId"] != project.status.node_id:
            raise GitHubGraphQLError(f"Could not resolve to a node with the global id of '{input['fieldId']}'")
        option_id = (input.get("value") or {}).get("singleSelectOptionId")
        if option_id not in {o.id for o in project.status.options}:
            raise GitHubGraphQLError("The single select option Id does not belong to the field", kind="UNPROCESSABLE")
        self.sim.set_status(item, project.status.option_by_id(option_id).name, by=self.viewer)
        return {"clientMutationId": input.get("clientMutationId"), "projectV2Item": self.item(item)}

    def add_item(self, info: Any, input: dict[str, Any]) -> dict[str, Any]:
        self.require("addProjectV2ItemById", "project")
        project = self._project_by_id(input["projectId"])
        issue = next(
            (i for r in self.sim.world.repos.values() for i in r.issues.values() if i.node_id == input["contentId"]),
            None,
        )
        if issue is None:
            raise GitHubGraphQLError(f"Could not resolve to a node with the global id of '{input['contentId']}'")
        item = project.item_for(issue) or self.sim.add_to_project(project, issue)
        return {"clientMutationId": input.get("clientMutationId"), "item": self.item(item)}


def execute(sim: GitHubSim, viewer: str, body: Any, scopes: str | None = None) -> tuple[int, dict[str, Any]]:
    """Run one GraphQL request as GitHub would: (HTTP status, JSON body)."""
    if not isinstance(body, dict) or not isinstance(body.get("query"), str):
        return 400, {"message": "Problems parsing JSON", "documentation_url": "https://docs.github.com/graphql"}
    try:
        document = graphql.parse(body["query"])
    except graphql.GraphQLError as err:
        return 200, {"errors": [_error_json(err)]}
    schema = github_schema()
    errors = graphql.validate(schema, document)
    if errors:
        return 200, {"errors": [_error_json(e) for e in errors]}
    sim.world.graphql.spend(1)
    sim.world.graphql_points += 1
    result = graphql.execute(
        schema,
        document,
        root_value=Resolvers(sim, viewer, scopes).root(),
        variable_values=body.get("variables") or {},
        operation_name=body.get("operationName"),
    )
    assert not hasattr(result, "__await__")
    out: dict[str, Any] = {"data": result.data}  # type: ignore[union-attr]
    if result.errors:  # type: ignore[union-attr]
        out["errors"] = [_error_json(e) for e in result.errors]  # type: ignore[union-attr]
    return 200, out
