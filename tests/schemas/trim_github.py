"""Trim GitHub's REST description (13 MB, 800+ paths) to the operations tracker-bridge uses.

Keeps the listed paths (only the listed methods) and every component they reference, transitively, so the
simulator's validator sees exactly what GitHub documents for those calls. Redo the trim on a newer copy with:

    python tests/schemas/trim_github.py /path/to/api.github.com.json tests/schemas/github/api.github.com.trimmed.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

# path template -> methods tracker-bridge (connector or simulator test helpers) calls
KEEP: dict[str, tuple[str, ...]] = {
    "/user": ("get",),
    "/rate_limit": ("get",),
    "/orgs/{org}/projectsV2/{project_number}/items": ("get",),
    "/users/{username}/projectsV2/{project_number}/items": ("get",),
    "/orgs/{org}/projectsV2/{project_number}/items/{item_id}": ("get", "patch"),
    "/users/{username}/projectsV2/{project_number}/items/{item_id}": ("get", "patch"),
    "/repos/{owner}/{repo}": ("get",),
    "/repos/{owner}/{repo}/issues/{issue_number}": ("get",),
    "/repos/{owner}/{repo}/issues/{issue_number}/comments": ("get", "post"),
    "/repos/{owner}/{repo}/issues/comments/{comment_id}": ("patch",),
    "/repos/{owner}/{repo}/issues/{issue_number}/labels": ("get", "post"),
    "/repos/{owner}/{repo}/issues/{issue_number}/labels/{name}": ("delete",),
    "/repos/{owner}/{repo}/issues/{issue_number}/events": ("get",),
    "/repos/{owner}/{repo}/collaborators/{username}/permission": ("get",),
    "/repos/{owner}/{repo}/branches/{branch}": ("get",),
    "/repos/{owner}/{repo}/pulls": ("get", "post"),
    "/repos/{owner}/{repo}/pulls/{pull_number}": ("get", "patch"),
    "/repos/{owner}/{repo}/pulls/{pull_number}/merge": ("put",),
    "/repos/{owner}/{repo}/pulls/{pull_number}/requested_reviewers": ("post",),
    "/repos/{owner}/{repo}/pulls/{pull_number}/reviews": ("get",),
    "/repos/{owner}/{repo}/pulls/{pull_number}/comments": ("get",),
    "/repos/{owner}/{repo}/commits/{ref}/check-runs": ("get",),
    "/repos/{owner}/{repo}/commits/{ref}/status": ("get",),
    "/repos/{owner}/{repo}/actions/jobs/{job_id}/logs": ("get",),
}


def _refs(node: Any, found: set[str]) -> None:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/components/"):
            found.add(ref)
        for v in node.values():
            _refs(v, found)
    elif isinstance(node, list):
        for v in node:
            _refs(v, found)


def trim(spec: dict[str, Any]) -> dict[str, Any]:
    paths: dict[str, Any] = {}
    for template, methods in KEEP.items():
        item = spec["paths"][template]
        paths[template] = {k: v for k, v in item.items() if k in methods or k == "parameters"}
    components: dict[str, dict[str, Any]] = {}
    pending: set[str] = set()
    _refs(paths, pending)
    seen: set[str] = set()
    while pending:
        ref = pending.pop()
        if ref in seen:
            continue
        seen.add(ref)
        _, _, section, name = ref.split("/", 3)
        node = spec["components"][section][name]
        components.setdefault(section, {})[name] = node
        _refs(node, pending)
    return {
        "openapi": spec["openapi"],
        "info": {**spec["info"], "x-trimmed-by": "tests/schemas/trim_github.py"},
        "servers": spec.get("servers", []),
        "paths": paths,
        "components": {s: dict(sorted(v.items())) for s, v in sorted(components.items())},
    }


def main(argv: list[str]) -> None:
    source, target = Path(argv[1]), Path(argv[2])
    trimmed = trim(json.loads(source.read_text(encoding="utf-8")))
    target.write_text(json.dumps(trimmed, indent=1, sort_keys=False) + "\n", encoding="utf-8")
    print(f"{len(trimmed['paths'])} paths, {sum(map(len, trimmed['components'].values()))} components -> {target}")


if __name__ == "__main__":
    main(sys.argv)
