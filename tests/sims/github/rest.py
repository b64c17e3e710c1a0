"""The REST routes of the GitHub simulator (only those tracker-bridge calls, each checked against the trimmed
official OpenAPI description before it runs)."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from tests.sims.github.world import Issue, Pull, Repo, now
from tests.sims.http import Request, Response

if TYPE_CHECKING:
    from tests.sims.github import GitHubSim

DOCS = "https://docs.github.com/rest"
# Where signed download URLs (job logs) point: on github.com another host; here a path outside the API.
DOWNLOADS = "/_downloads/"
DOWNLOAD_SECRET = "sim-signing-key"


def error(status: int, message: str, **extra: Any) -> Response:
    return Response(status, {"message": message, "documentation_url": DOCS, "status": str(status), **extra})


def not_found() -> Response:
    return error(404, "Not Found")


def validation_failed(*errors: dict[str, Any]) -> Response:
    return error(422, "Validation Failed", errors=list(errors))


def paginate(req: Request, items: list[Any], url: str) -> Response:
    per_page = min(100, int(req.arg("per_page", "30") or 30))
    page = max(1, int(req.arg("page", "1") or 1))
    chunk = items[(page - 1) * per_page : page * per_page]
    headers: dict[str, str] = {}
    if page * per_page < len(items):
        query = {k: v[0] for k, v in req.query.items() if k != "page"}
        headers["Link"] = f'<{url}?{urlencode({**query, "page": page + 1})}>; rel="next"'
    return Response(200, chunk, headers)


_TOKEN = re.compile(r'(-?)([\w-]+):("[^"]*"|\S+)')


def item_matches(q: str, item: Any, project: Any) -> bool:
    """GitHub's project filter syntax, the part we use: is:issue/open/closed, label:a,b, <field>:v1,v2."""
    issue = item.issue
    for neg, key, raw in _TOKEN.findall(q):
        values = [v.strip().strip('"') for v in raw.strip('"').split(",")] if not raw.startswith('"') else [raw[1:-1]]
        key = key.lower()
        if key == "is":
            ok = all(
                (v == "issue") or (v == "open" and issue.state == "open") or (v == "closed" and issue.state == "closed")
                for v in values
            )
        elif key == "label":  # GitHub's filters ignore case
            ok = any(v.casefold() in {name.casefold() for name in issue.labels} for v in values)
        else:
            field = next((f for f in project.fields if f.name.lower().replace(" ", "-") == key), None)
            ok = field is not None and (item.status_name or "").casefold() in {v.casefold() for v in values}
        if bool(neg) == ok:
            return False
    return True


def install(sim: GitHubSim) -> None:
    world, render, route = sim.world, sim.render, sim.rest_route

    def repo_of(owner: str, repo: str) -> Repo | None:
        return world.repos.get(f"{owner}/{repo}")

    def issue_of(owner: str, repo: str, number: str) -> Issue | None:
        r = repo_of(owner, repo)
        return r.issues.get(int(number)) if r else None

    def with_issue(fn: Callable[..., Response]) -> Callable[..., Response]:
        def handler(req: Request, owner: str, repo: str, issue_number: str, **kw: str) -> Response:
            issue = issue_of(owner, repo, issue_number)
            return not_found() if issue is None else fn(req, issue, **kw)

        return handler

    @route("GET", "/user")
    def get_user(req: Request) -> Response:
        return Response(200, render.user(sim.viewer(req)))

    @route("GET", "/rate_limit")
    def rate_limit(req: Request) -> Response:
        core = {"limit": world.core.limit, "remaining": world.core.remaining, "reset": world.core.reset, "used": 0}
        return Response(200, {"resources": {"core": core}, "rate": core})

    # --- projects v2 ---------------------------------------------------------------------------------------------

    def items(req: Request, owner: str, number: str, is_user: bool) -> Response:
        project = sim.project(owner, int(number), is_user)
        if project is None:
            return not_found()
        q = req.arg("q") or ""
        raw_fields = req.arg("fields") or ""
        field_ids = {int(f) for f in re.split(r"[,\s]+", raw_fields) if f.isdigit()}
        matching = [it for it in project.items if not it.archived and item_matches(q, it, project)]
        per_page = min(100, int(req.arg("per_page", "30") or 30))
        after = req.arg("after")
        start = 0
        if after:
            ids = [str(it.id) for it in matching]
            start = ids.index(after) + 1 if after in ids else len(matching)
        chunk = matching[start : start + per_page]
        headers: dict[str, str] = {}
        if start + per_page < len(matching):
            query = {k: v[0] for k, v in req.query.items() if k != "after"}
            url = render.project_items_url(project)
            headers["Link"] = f'<{url}?{urlencode({**query, "after": chunk[-1].id})}>; rel="next"'
        return Response(200, [render.item(it, field_ids) for it in chunk], headers)

    def item_patch(req: Request, owner: str, number: str, item_id: str, is_user: bool) -> Response:
        project = sim.project(owner, int(number), is_user)
        item = next((it for it in project.items if str(it.id) == item_id), None) if project else None
        if project is None or item is None:
            return not_found()
        if req.method == "GET":
            return Response(200, render.item(item, {f.id for f in project.fields}))
        for change in req.json()["fields"]:
            if change["id"] != project.status.id or change["value"] not in {o.id for o in project.status.options}:
                return validation_failed({"resource": "ProjectV2Item", "field": "fields", "code": "invalid"})
            sim.set_status(item, project.status.option_by_id(change["value"]).name, by=sim.viewer(req))
        return Response(200, render.item(item, {f.id for f in project.fields}))

    route("GET", "/orgs/{owner}/projectsV2/{number}/items")(lambda req, owner, number: items(req, owner, number, False))
    route("GET", "/users/{owner}/projectsV2/{number}/items")(lambda req, owner, number: items(req, owner, number, True))
    for method in ("GET", "PATCH"):
        route(method, "/orgs/{owner}/projectsV2/{number}/items/{item_id}")(
            lambda req, owner, number, item_id: item_patch(req, owner, number, item_id, False)
        )
        route(method, "/users/{owner}/projectsV2/{number}/items/{item_id}")(
            lambda req, owner, number, item_id: item_patch(req, owner, number, item_id, True)
        )

    # --- repositories and issues ---------------------------------------------------------------------------------

    @route("GET", "/repos/{owner}/{repo}")
    def get_repo(req: Request, owner: str, repo: str) -> Response:
        r = repo_of(owner, repo)
        return not_found() if r is None else Response(200, render.repo(r, sim.viewer(req)))

    @route("GET", "/repos/{owner}/{repo}/issues/{issue_number}")
    @with_issue
    def get_issue(req: Request, issue: Issue) -> Response:
        return Response(200, render.issue(issue))

    @route("GET", "/repos/{owner}/{repo}/issues/{issue_number}/comments")
    def list_comments(req: Request, owner: str, repo: str, issue_number: str) -> Response:
        # On GitHub a pull request is an issue too: its conversation comments are served here.
        thread: Issue | Pull | None = issue_of(owner, repo, issue_number) or pull_of(owner, repo, issue_number)
        if thread is None:
            return not_found()
        url = f"{render.base}/repos/{thread.repo.full_name}/issues/{thread.number}/comments"
        return paginate(req, [render.comment(thread, c) for c in thread.comments], url)

    @route("POST", "/repos/{owner}/{repo}/issues/{issue_number}/comments")
    @with_issue
    def create_comment(req: Request, issue: Issue) -> Response:
        c = sim.comment(issue, req.json()["body"], by=sim.viewer(req))
        return Response(201, render.comment(issue, c))

    @route("PATCH", "/repos/{owner}/{repo}/issues/comments/{comment_id}")
    def edit_comment(req: Request, owner: str, repo: str, comment_id: str) -> Response:
        r = repo_of(owner, repo)
        for issue in r.issues.values() if r else []:
            for c in issue.comments:
                if str(c.id) == comment_id:
                    if c.user != sim.viewer(req):
                        return error(403, "Must have admin rights to Repository.")
                    c.body, c.updated_at = req.json()["body"], now()
                    issue.touch()
                    return Response(200, render.comment(issue, c))
        return not_found()

    @route("GET", "/repos/{owner}/{repo}/issues/{issue_number}/labels")
    @with_issue
    def list_labels(req: Request, issue: Issue) -> Response:
        return Response(200, [render.label(issue.repo, n) for n in issue.labels])

    @route("POST", "/repos/{owner}/{repo}/issues/{issue_number}/labels")
    @with_issue
    def add_labels(req: Request, issue: Issue) -> Response:
        body = req.json()
        names = body.get("labels", []) if isinstance(body, dict) else body
        for name in names:
            sim.add_label(issue, name if isinstance(name, str) else name["name"], by=sim.viewer(req))
        return Response(200, [render.label(issue.repo, n) for n in issue.labels])

    @route("DELETE", "/repos/{owner}/{repo}/issues/{issue_number}/labels/{name}")
    @with_issue
    def remove_label(req: Request, issue: Issue, name: str) -> Response:
        if name not in issue.labels:
            return error(404, "Label does not exist")
        sim.remove_label(issue, name, by=sim.viewer(req))
        return Response(200, [render.label(issue.repo, n) for n in issue.labels])

    @route("GET", "/repos/{owner}/{repo}/issues/{issue_number}/events")
    @with_issue
    def list_events(req: Request, issue: Issue) -> Response:
        url = f"{render.base}/repos/{issue.repo.full_name}/issues/{issue.number}/events"
        return paginate(req, [render.event(issue, e) for e in issue.events], url)

    @route("GET", "/repos/{owner}/{repo}/collaborators/{username}/permission")
    def permission(req: Request, owner: str, repo: str, username: str) -> Response:
        r = repo_of(owner, repo)
        if r is None:
            return not_found()
        if username not in world.users:
            return error(404, f"{username} is not a user")
        role = r.collaborators.get(username, "read" if not r.private else "none")
        legacy = {"maintain": "write", "triage": "read"}.get(role, role)
        return Response(200, {"permission": legacy, "role_name": role, "user": render.user(username)})

    # --- branches, pull requests, checks -------------------------------------------------------------------------

    @route("GET", "/repos/{owner}/{repo}/branches/{branch}")
    def get_branch(req: Request, owner: str, repo: str, branch: str) -> Response:
        r = repo_of(owner, repo)
        sha = r.branch_sha(branch) if r else None
        if r is None or sha is None:
            return error(404, "Branch not found")
        return Response(200, {"name": branch, "commit": {"sha": sha, "url": ""}, "protected": False})

    @route("GET", "/repos/{owner}/{repo}/pulls")
    def list_pulls(req: Request, owner: str, repo: str) -> Response:
        r = repo_of(owner, repo)
        if r is None:
            return not_found()
        state = req.arg("state", "open")
        head = req.arg("head")
        pulls = sorted(r.pulls.values(), key=lambda p: -p.number)
        if state != "all":
            pulls = [p for p in pulls if p.state == state]
        if head:
            pulls = [p for p in pulls if f"{r.owner}:{p.head}" == head]
        return paginate(req, [render.pull(p) for p in pulls], f"{render.base}/repos/{r.full_name}/pulls")

    @route("POST", "/repos/{owner}/{repo}/pulls")
    def create_pull(req: Request, owner: str, repo: str) -> Response:
        r = repo_of(owner, repo)
        if r is None:
            return not_found()
        body = req.json()
        head = body["head"].split(":", 1)[-1]
        if r.branch_sha(head) is None:
            return validation_failed({"resource": "PullRequest", "field": "head", "code": "invalid"})
        if r.branch_sha(body["base"]) is None:
            return validation_failed({"resource": "PullRequest", "field": "base", "code": "invalid"})
        if any(p.head == head and p.state == "open" for p in r.pulls.values()):
            message = f"A pull request already exists for {r.owner}:{head}."
            return validation_failed({"resource": "PullRequest", "code": "custom", "message": message})
        pr = sim.open_pull(r, head, body.get("title", head), body.get("body") or "", by=sim.viewer(req))
        pr.base = body["base"]
        pr.draft = bool(body.get("draft", False))
        return Response(201, render.pull(pr))

    def pull_of(owner: str, repo: str, number: str) -> Pull | None:
        r = repo_of(owner, repo)
        return r.pulls.get(int(number)) if r else None

    @route("GET", "/repos/{owner}/{repo}/pulls/{pull_number}")
    def get_pull(req: Request, owner: str, repo: str, pull_number: str) -> Response:
        pr = pull_of(owner, repo, pull_number)
        return not_found() if pr is None else Response(200, render.pull(pr))

    @route("PATCH", "/repos/{owner}/{repo}/pulls/{pull_number}")
    def update_pull(req: Request, owner: str, repo: str, pull_number: str) -> Response:
        pr = pull_of(owner, repo, pull_number)
        if pr is None:
            return not_found()
        body = req.json()
        pr.title = body.get("title", pr.title)
        pr.body = body.get("body", pr.body)
        if body.get("state") == "closed":
            sim.close_pull(pr)
        pr.updated_at = now()
        return Response(200, render.pull(pr))

    @route("PUT", "/repos/{owner}/{repo}/pulls/{pull_number}/merge")
    def merge_pull(req: Request, owner: str, repo: str, pull_number: str) -> Response:
        pr = pull_of(owner, repo, pull_number)
        if pr is None:
            return not_found()
        if pr.state != "open":
            return error(405, "Pull Request is not mergeable")
        sim.merge_pull(pr)
        return Response(
            200, {"sha": pr.merge_commit_sha, "merged": True, "message": "Pull Request successfully merged"}
        )

    @route("POST", "/repos/{owner}/{repo}/pulls/{pull_number}/requested_reviewers")
    def request_reviewers(req: Request, owner: str, repo: str, pull_number: str) -> Response:
        pr = pull_of(owner, repo, pull_number)
        if pr is None:
            return not_found()
        logins = (req.json() or {}).get("reviewers") or []
        if pr.user in logins:
            return error(422, "Review cannot be requested from pull request author.")
        if any(login not in world.users or login not in pr.repo.collaborators for login in logins):
            return error(
                422,
                "Reviews may only be requested from collaborators. One or more of the users or teams you specified "
                f"is not a collaborator of the {pr.repo.full_name} repository.",
            )
        for login in logins:
            if login not in pr.requested_reviewers:
                sim.request_review(pr, login)
        return Response(201, render.pull(pr))

    @route("GET", "/repos/{owner}/{repo}/pulls/{pull_number}/reviews")
    def list_reviews(req: Request, owner: str, repo: str, pull_number: str) -> Response:
        pr = pull_of(owner, repo, pull_number)
        if pr is None:
            return not_found()
        reviews = [
            {
                "id": rv.id,
                "node_id": f"PRR_{rv.id}",
                "user": render.user(rv.user),
                "body": rv.body,
                "state": rv.state,
                "html_url": f"{render.base}/{pr.repo.full_name}/pull/{pr.number}#pullrequestreview-{rv.id}",
                "pull_request_url": f"{render.base}/repos/{pr.repo.full_name}/pulls/{pr.number}",
                "submitted_at": rv.submitted_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "commit_id": pr.head_sha,
                "author_association": "MEMBER",
                "_links": {"html": {"href": ""}, "pull_request": {"href": ""}},
            }
            for rv in pr.reviews
        ]
        return paginate(req, reviews, f"{render.base}/repos/{pr.repo.full_name}/pulls/{pr.number}/reviews")

    @route("GET", "/repos/{owner}/{repo}/pulls/{pull_number}/comments")
    def list_review_comments(req: Request, owner: str, repo: str, pull_number: str) -> Response:
        pr = pull_of(owner, repo, pull_number)
        if pr is None:
            return not_found()
        comments = [
            {
                "id": c.id,
                "pull_request_review_id": c.review_id,
                "path": c.path,
                "line": c.line,
                "body": c.body,
                "user": render.user(c.user),
            }
            for c in pr.review_comments
        ]
        return paginate(req, comments, f"{render.base}/repos/{pr.repo.full_name}/pulls/{pr.number}/comments")

    @route("GET", "/repos/{owner}/{repo}/commits/{ref}/check-runs")
    def check_runs(req: Request, owner: str, repo: str, ref: str) -> Response:
        runs = [
            {
                "id": c.id,
                "name": c.name,
                "head_sha": c.head_sha,
                "status": c.status,
                "conclusion": c.conclusion,
                "output": {"title": c.title, "summary": c.title},
                # Actions jobs are check runs of the github-actions app; the check run's id is the job's id.
                "app": {"slug": "github-actions" if c.log is not None else "external-ci"},
                "details_url": f"{render.base}/{owner}/{repo}/actions/runs/1/job/{c.id}",
            }
            for c in world.check_runs
            if c.head_sha == ref
        ]
        return Response(200, {"total_count": len(runs), "check_runs": runs})

    @route("GET", "/repos/{owner}/{repo}/actions/jobs/{job_id}/logs")
    def job_logs(req: Request, owner: str, repo: str, job_id: str) -> Response:
        # GitHub answers 302 with a short-lived signed URL on another host (Location), not the log itself.
        run = next((c for c in world.check_runs if str(c.id) == job_id and c.log is not None), None)
        if run is None or repo_of(owner, repo) is None:
            return not_found()
        signature = hashlib.sha256(f"{job_id}:{DOWNLOAD_SECRET}".encode()).hexdigest()[:32]
        location = f"{render.base}{DOWNLOADS}job-logs/{job_id}?urlSigningMethod=HMACV1&urlSignature={signature}"
        return Response(302, None, {"Location": location})

    def job_log_download(req: Request, job_id: str) -> Response:
        signature = hashlib.sha256(f"{job_id}:{DOWNLOAD_SECRET}".encode()).hexdigest()[:32]
        run = next((c for c in world.check_runs if str(c.id) == job_id and c.log is not None), None)
        if run is None or req.arg("urlSignature", "") != signature:
            return Response(
                403, "<Error><Code>AuthenticationFailed</Code></Error>", {"Content-Type": "application/xml"}
            )
        return Response(200, run.log or "", {"Content-Type": "text/plain; charset=utf-8"})

    sim.server.add_route("GET", DOWNLOADS + "job-logs/{job_id}", job_log_download)

    @route("GET", "/repos/{owner}/{repo}/commits/{ref}/status")
    def combined_status(req: Request, owner: str, repo: str, ref: str) -> Response:
        statuses = world.statuses.get(ref, [])
        states = {s.state for s in statuses}
        overall = (
            "failure"
            if states & {"failure", "error"}
            else "pending"
            if "pending" in states or not states
            else "success"
        )
        return Response(
            200,
            {
                "state": overall,
                "sha": ref,
                "total_count": len(statuses),
                "statuses": [
                    {"id": s.id, "context": s.context, "state": s.state, "description": s.description} for s in statuses
                ],
            },
        )
