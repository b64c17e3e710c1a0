"""`tracker-bridge doctor` for a Jira tracker: credentials, JQL scope, mapped columns, workflow, permissions."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import structlog

from tracker_bridge.protocols import Problem, TrackerError

if TYPE_CHECKING:
    from tracker_bridge_connectors.jira.tracker import JiraTracker

log = structlog.get_logger(__name__)

# Project permissions the bot account needs, and what each is for.
PERMISSIONS = {
    "BROWSE_PROJECTS": "see and search the project's issues",
    "TRANSITION_ISSUES": "move cards (transitions)",
    "EDIT_ISSUES": "add and remove labels, and keep tracker-bridge's issue property",
    "ADD_COMMENTS": "post the status comment",
    "EDIT_OWN_COMMENTS": "edit the status comment in place",
    "LINK_ISSUES": "link the pull request (remote link)",
}
_PROJECT = re.compile(r"\bproject\s*(?:=|in\s*\()\s*\"?([A-Za-z][A-Za-z0-9_]*)\"?", re.IGNORECASE)


def project_key(tracker: JiraTracker) -> str | None:
    if tracker.options.project:
        return tracker.options.project
    m = _PROJECT.search(tracker.query)
    return m.group(1) if m else None


def _unreachable(url: str, timeout: float = 5.0) -> str | None:
    """Why the server cannot be reached (one TCP connect, no retry loop), or None. Skipped behind a proxy, which
    only the HTTP client knows how to cross."""
    import socket
    from urllib.parse import urlsplit

    import requests

    parts = urlsplit(url)
    if not parts.hostname or requests.utils.get_environ_proxies(url):
        return None
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        socket.create_connection((parts.hostname, port), timeout=timeout).close()
    except OSError as exc:
        return f"Jira at {url} could not be reached ({exc.strerror or exc})"
    return None


def check(tracker: JiraTracker, columns: Mapping[str, str]) -> list[Problem]:
    key = f"trackers.{tracker.name}"
    # The server first: an unreachable url is said at once and against `url`, not after the retry loop's backoff
    # and against the token.
    unreachable = _unreachable(str(tracker.client.server_url))
    if unreachable:
        return [Problem(f"{key}.url", unreachable, "check the url and that Jira is reachable from this machine")]
    try:
        me = tracker._myself()
    except TrackerError as exc:
        return [
            Problem(
                f"{key}.token_env",
                str(exc),
                f"create an API token for the bot account and export it as ${tracker.token_env}",
            )
        ]
    problems: list[Problem] = []
    if me.get("active") is False:
        problems.append(
            Problem(f"{key}.user", "the bot account is deactivated in Jira", "reactivate it or use another")
        )

    try:
        tracker._call(
            "GET",
            "search/jql" if tracker.v3 else "search",
            "checking the JQL scope",
            params={"jql": tracker.query or "order by updated", "maxResults": 1, "fields": "summary"},
        )
    except TrackerError as exc:
        problems.append(
            Problem(f"{key}.query", f"the JQL scope {tracker.query!r} is refused: {exc}", "correct the JQL")
        )

    try:
        problems.extend(_column_problems(tracker, columns))
    except TrackerError as exc:
        fix = "check options.board (the number in the board URL)" if tracker.options.board else "check the url"
        problems.append(Problem(f"{key}.options.board" if tracker.options.board else key, str(exc), fix))

    project = project_key(tracker)
    if project is None:
        # Not a blocker (a scope like `filter = 123` is fine), but worth saying: doctor checked less than it could.
        log.warning(
            "jira.doctor.no_project",
            tracker=tracker.name,
            hint='start the query with project = KEY, or set options = { project = "KEY" }',
        )
        return problems
    problems.extend(_workflow_problems(tracker, project, columns))
    problems.extend(_permission_problems(tracker, project))
    return problems


def _column_problems(tracker: JiraTracker, columns: Mapping[str, str]) -> list[Problem]:
    problems = []
    for stage, column in columns.items():
        if not tracker.columns.exists(column):
            where = (
                f"a column to board {tracker.options.board}" if tracker.options.board else "the status to the workflow"
            )
            problems.append(
                Problem(
                    f"stages.{stage}",
                    tracker.columns.describe_missing(column),
                    f"add {where}, or map {stage} to an existing one in [stages]",
                )
            )
    return problems


def _workflow_problems(tracker: JiraTracker, project: str, columns: Mapping[str, str]) -> list[Problem]:
    try:
        data, _ = tracker._call("GET", f"project/{project}/statuses", f"reading the workflow statuses of {project}")
    except TrackerError as exc:
        return [Problem(f"trackers.{tracker.name}.query", str(exc), f"check that project {project} exists")]
    in_project: set[str] = set()
    for issue_type in data or []:
        in_project.update(str(s.get("id")) for s in issue_type.get("statuses") or [])
    problems = []
    for stage, column in columns.items():
        ids = tracker.columns.status_ids(column)
        if ids and not in_project.intersection(ids):
            problems.append(
                Problem(
                    f"stages.{stage}",
                    f"{column!r} is not a status of any workflow of project {project}, so no transition can reach it",
                    f"add the status to {project}'s workflow or map {stage} to one of its statuses",
                )
            )
    return problems


def _permission_problems(tracker: JiraTracker, project: str) -> list[Problem]:
    try:
        data, _ = tracker._call(
            "GET",
            "mypermissions",
            "reading the bot account's permissions",
            params={"projectKey": project, "permissions": ",".join(PERMISSIONS)},
        )
    except TrackerError as exc:
        return [Problem(f"trackers.{tracker.name}.user", str(exc), "check the bot account's access to the project")]
    granted: dict[str, Any] = (data or {}).get("permissions") or {}
    return [
        Problem(
            f"trackers.{tracker.name}.user",
            f"the bot account lacks the {name} permission in {project} (needed to {why})",
            f"grant {name} to the bot account in {project}'s permission scheme",
        )
        for name, why in PERMISSIONS.items()
        if not (granted.get(name) or {}).get("havePermission", False)
    ]
