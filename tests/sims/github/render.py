"""GitHub's REST shapes for the simulator's objects (the fields the REST description marks required, plus the ones
clients read)."""

from __future__ import annotations

from typing import Any

from tests.sims.github.world import Comment, Event, Issue, Item, Project, Pull, Repo, World, iso


class Renderer:
    def __init__(self, world: World, base_url: str) -> None:
        self.world = world
        self.base = base_url  # the API root, also used for html URLs

    def user(self, login: str) -> dict[str, Any]:
        uid = self.world.user(login)
        return {
            "login": login,
            "id": uid,
            "node_id": f"U_{uid}",
            "avatar_url": f"{self.base}/avatars/{login}",
            "url": f"{self.base}/users/{login}",
            "html_url": f"{self.base}/{login}",
            "type": "Bot" if login.endswith("[bot]") else "User",
            "site_admin": False,
        }

    def label(self, repo: Repo, name: str) -> dict[str, Any]:
        return {
            "id": abs(hash((repo.full_name, name))) % 10**9,
            "node_id": f"LA_{name}",
            "url": f"{self.base}/repos/{repo.full_name}/labels/{name}",
            "name": name,
            "color": "ededed",
            "default": False,
            "description": None,
        }

    def repo(self, repo: Repo, viewer: str | None = None) -> dict[str, Any]:
        role = repo.collaborators.get(viewer or "", "")
        return {
            "id": repo.id,
            "node_id": f"R_{repo.id}",
            "name": repo.name,
            "full_name": repo.full_name,
            "owner": self.user(repo.owner),
            "private": repo.private,
            "html_url": f"{self.base}/{repo.full_name}",
            "url": f"{self.base}/repos/{repo.full_name}",
            "default_branch": repo.default_branch,
            "permissions": {
                "admin": role == "admin",
                "maintain": role in ("admin", "maintain"),
                "push": role in ("admin", "maintain", "write"),
                "triage": role in ("admin", "maintain", "write", "triage"),
                "pull": bool(role),
            },
        }

    def issue(self, issue: Issue) -> dict[str, Any]:
        repo = issue.repo
        return {
            "id": issue.id,
            "node_id": issue.node_id,
            "url": f"{self.base}/repos/{repo.full_name}/issues/{issue.number}",
            "repository_url": f"{self.base}/repos/{repo.full_name}",
            "html_url": f"{self.base}/{repo.full_name}/issues/{issue.number}",
            "number": issue.number,
            "state": issue.state,
            "title": issue.title,
            "body": issue.body,
            "user": self.user(issue.user),
            "labels": [self.label(repo, n) for n in issue.labels],
            "assignee": None,
            "assignees": [],
            "milestone": None,
            "locked": False,
            "comments": len(issue.comments),
            "closed_at": None,
            "created_at": iso(issue.created_at),
            "updated_at": iso(issue.updated_at),
            "author_association": "MEMBER",
        }

    def comment(self, issue: Issue | Pull, c: Comment) -> dict[str, Any]:
        repo = issue.repo
        return {
            "id": c.id,
            "node_id": f"IC_{c.id}",
            "url": f"{self.base}/repos/{repo.full_name}/issues/comments/{c.id}",
            "html_url": f"{self.base}/{repo.full_name}/issues/{issue.number}#issuecomment-{c.id}",
            "issue_url": f"{self.base}/repos/{repo.full_name}/issues/{issue.number}",
            "body": c.body,
            "user": self.user(c.user),
            "created_at": iso(c.created_at),
            "updated_at": iso(c.updated_at),
            "author_association": "MEMBER",
        }

    def event(self, issue: Issue, e: Event) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": e.id,
            "node_id": f"LE_{e.id}",
            "url": f"{self.base}/repos/{issue.repo.full_name}/issues/events/{e.id}",
            "actor": self.user(e.actor),
            "event": e.event,
            "commit_id": None,
            "commit_url": None,
            "created_at": iso(e.created_at),
        }
        if e.label is not None:
            out["label"] = {"name": e.label, "color": "ededed"}
        return out

    def item(self, item: Item, field_ids: set[int]) -> dict[str, Any]:
        project = item.project
        kind = "users" if project.is_user else "orgs"
        fields: list[dict[str, Any]] = []
        for f in project.fields:
            if f.data_type == "title":
                fields.append({"id": f.id, "name": f.name, "data_type": "title", "value": {"raw": item.issue.title}})
            elif f.id in field_ids and f.data_type == "single_select":
                value = None
                for o in f.options:
                    if o.id == item.status:
                        value = {"id": o.id, "name": {"raw": o.name, "html": o.name}, "color": "GRAY"}
                fields.append({"id": f.id, "name": f.name, "data_type": "single_select", "value": value})
        return {
            "id": item.id,
            "node_id": item.node_id,
            "project_url": f"{self.base}/{kind}/{project.owner}/projectsV2/{project.number}",
            "content_type": "Issue",
            "content": self.issue(item.issue),
            "creator": self.user(project.owner),
            "created_at": iso(item.created_at),
            "updated_at": iso(item.updated_at),
            "archived_at": iso(item.updated_at) if item.archived else None,
            "item_url": f"{self.base}/{kind}/{project.owner}/projectsV2/{project.number}/items/{item.id}",
            "fields": fields,
        }

    def pull(self, pr: Pull) -> dict[str, Any]:
        repo = pr.repo
        sha = pr.head_sha
        # GitHub's test merge of head into base: `mergeable` false and `mergeable_state` "dirty" on a conflict;
        # null / "unknown" once the pull request is closed
        clean = repo.merges_cleanly(pr.base, pr.head) if pr.state == "open" else None
        return {
            "id": pr.id,
            "node_id": f"PR_{pr.id}",
            "number": pr.number,
            "url": f"{self.base}/repos/{repo.full_name}/pulls/{pr.number}",
            "html_url": f"{self.base}/{repo.full_name}/pull/{pr.number}",
            "state": pr.state,
            "locked": False,
            "title": pr.title,
            "body": pr.body,
            "user": self.user(pr.user),
            "draft": pr.draft,
            "merged": pr.merged,
            "merged_at": iso(pr.merged_at),
            "merge_commit_sha": pr.merge_commit_sha,
            "closed_at": iso(pr.updated_at) if pr.state == "closed" else None,
            "created_at": iso(pr.created_at),
            "updated_at": iso(pr.updated_at),
            "mergeable": clean,
            "mergeable_state": "unknown" if clean is None else "clean" if clean else "dirty",
            "requested_reviewers": [self.user(r) for r in pr.requested_reviewers],
            "requested_teams": [],
            "labels": [],
            "head": {"ref": pr.head, "sha": sha, "label": f"{repo.owner}:{pr.head}", "repo": self.repo(repo)},
            "base": {
                "ref": pr.base,
                "sha": repo.branch_sha(pr.base),
                "label": f"{repo.owner}:{pr.base}",
                "repo": self.repo(repo),
            },
        }

    def project_items_url(self, project: Project) -> str:
        kind = "users" if project.is_user else "orgs"
        return f"{self.base}/{kind}/{project.owner}/projectsV2/{project.number}/items"
