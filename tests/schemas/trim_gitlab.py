"""Trim the community GitLab REST v4 description to the paths tracker-bridge uses, plus the components they reference.

Run from the repository root when a newer copy of the description is available:

    python tests/schemas/trim_gitlab.py /path/to/community-15_2-swagger.yml tests/schemas/gitlab/gitlab-v4-trimmed.json

The crawl (encX/gitlab-api-doc-crawler, GitLab 15.2 docs) is approximate. Where python-gitlab's real behaviour and the
crawl differ, python-gitlab wins (it is what talks to real GitLab servers); every such change is applied here, in
PATCHES and EXTRA_PATHS, so it is visible and redone on every trim. Each one is listed in
tests/schemas/gitlab/PROVENANCE.md.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import yaml

# Paths (relative to /api/v4) the GitLab connector, its tests and the simulator use.
KEEP_PATHS = [
    "/version",
    "/user",
    "/users",
    "/projects/{id}",
    "/projects/{id}/issues",
    "/groups/{id}/issues",
    "/projects/{id}/issues/{issue_iid}",
    "/projects/{id}/issues/{issue_iid}/notes",
    "/projects/{id}/issues/{issue_iid}/notes/{note_id}",
    "/projects/{id}/issues/{issue_iid}/resource_label_events",
    "/projects/{id}/labels",
    "/groups/{id}/labels",
    "/projects/{id}/boards",
    "/projects/{id}/boards/{board_id}/lists",
    "/groups/{id}/boards",
    "/groups/{id}/boards/{board_id}/lists",
    "/groups/{id}/members/all/{user_id}",
    "/projects/{id}/repository/branches/{branch}",
    "/projects/{id}/merge_requests",
    "/projects/{id}/merge_requests/{merge_request_iid}",
    "/projects/{id}/merge_requests/{merge_request_iid}/approvals",
    "/projects/{id}/merge_requests/{merge_request_iid}/approve",
    "/projects/{id}/merge_requests/{merge_request_iid}/notes",
    "/projects/{id}/merge_requests/{merge_request_iid}/merge",
    "/projects/{id}/pipelines",
    "/projects/{id}/pipelines/{pipeline_id}/jobs",
    "/projects/{id}/jobs/{job_id}/trace",
]

_ID = {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}
_USER_ID = {"name": "user_id", "in": "path", "required": True, "schema": {"type": "integer"}}

# Endpoints real GitLab serves (and python-gitlab calls) that the crawl lacks.
EXTRA_PATHS: dict[str, dict[str, Any]] = {
    # python-gitlab: project.members_all.get(user_id); documented in GitLab's members API, missing from the crawl.
    "/projects/{id}/members/all/{user_id}": {
        "get": {"operationId": "getProjectMemberAll", "parameters": [_ID, _USER_ID], "responses": {"200": {}}}
    },
    # python-gitlab: gl.personal_access_tokens.get("self"); the crawl only has DELETE.
    "/personal_access_tokens/self": {
        "get": {"operationId": "getPersonalAccessTokenSelf", "parameters": [], "responses": {"200": {}}}
    },
}

_LIST_OR_CSV = {"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]}

# (component schema, property) -> replacement. python-gitlab sends `labels` as a JSON array in request bodies
# (types.CommaSeparatedListAttribute), which GitLab accepts; the crawl says string only.
PATCHES: dict[tuple[str, str], dict[str, Any]] = {
    ("newIssueRequest", "labels"): _LIST_OR_CSV,
    ("editIssueRequest", "labels"): _LIST_OR_CSV,
    ("editIssueRequest", "add_labels"): _LIST_OR_CSV,
    ("editIssueRequest", "remove_labels"): _LIST_OR_CSV,
    ("createMrRequest", "labels"): _LIST_OR_CSV,
    ("updateMrRequest", "labels"): _LIST_OR_CSV,
}


def _refs(node: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/components/schemas/"):
            found.add(ref.rsplit("/", 1)[1])
        for value in node.values():
            found |= _refs(value)
    elif isinstance(node, list):
        for value in node:
            found |= _refs(value)
    return found


def trim(spec: dict[str, Any]) -> dict[str, Any]:
    paths = spec["paths"]
    missing = [p for p in KEEP_PATHS if p not in paths]
    if missing:
        raise SystemExit(f"paths missing from the description: {missing}")
    kept = {p: paths[p] for p in KEEP_PATHS}
    kept.update(EXTRA_PATHS)
    schemas = spec.get("components", {}).get("schemas", {})
    wanted: set[str] = set()
    todo = _refs(kept)
    while todo:
        name = todo.pop()
        if name in wanted or name not in schemas:
            continue
        wanted.add(name)
        todo |= _refs(schemas[name])
    components = {name: schemas[name] for name in sorted(wanted)}
    for (schema, prop), replacement in PATCHES.items():
        components[schema]["properties"][prop] = replacement
    return {
        "openapi": spec["openapi"],
        "info": {**spec["info"], "x-trimmed-by": "tests/schemas/trim_gitlab.py"},
        "paths": kept,
        "components": {"schemas": components},
    }


def main(argv: list[str]) -> None:
    if len(argv) != 3:
        raise SystemExit(f"usage: {argv[0]} SOURCE.yml DEST.json")
    spec = yaml.safe_load(Path(argv[1]).read_text(encoding="utf-8"))
    Path(argv[2]).write_text(json.dumps(trim(spec), indent=1, sort_keys=True) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main(sys.argv)
