"""Which repository a ticket changes: one pure function, so every routing rule is a table test.

Why this exists: one board often spans several repositories. A GitHub Project is usually organisation-wide and holds
issues from many repositories; Jira, Linear and GitLab boards span repositories too. A tracker's `repo` may therefore
be a list, and each ticket is routed, first rule that applies wins:

1. the ticket names its repository itself (the local tracker's `repo:` front matter): that name, as before;
2. a person chose: a label `repo:<name>` or a `[repo=<name>]` tag in the description names a `[[repos]]` entry;
3. the issue lives in a repository (GitHub Projects: owner/repo#12, GitLab: group/project#3) that is configured:
   its own repository, so the pull request lands next to the issue it closes;
4. the tracker's first repository.

A ticket that matches none (a label or tag naming a repository that is not configured, or a tracker without any
repository) is not guessed at: the caller declines it listing the choices (`lifecycle.unrouted`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from tracker_bridge.config import RepoConfig, TrackerConfig
from tracker_bridge.models import Ticket

LABEL_PREFIX = "repo:"
_TAG = re.compile(r"\[repo=([^\]\s]+)\]", re.IGNORECASE)
_OWN_REPO_KINDS = {"github": "github", "gitlab": "gitlab"}  # tracker kind -> the code host its issues live on


@dataclass(frozen=True)
class Route:
    """Where a ticket goes: `repo` (a [[repos]] name) and why; or `repo` None with `problem` and the `choices`."""

    repo: str | None
    why: str = ""
    problem: str = ""
    choices: tuple[str, ...] = ()


def project_path(url: str) -> str:
    """The owner/repo (GitHub) or group/subgroup/project (GitLab) path a clone URL names, lower-cased."""
    if "://" in url:
        path = urlsplit(url).path
    elif ":" in url:
        path = url.split(":", 1)[1]  # git@host:group/project.git
    else:
        path = url
    return path.strip("/").removesuffix(".git").lower()


def issue_project(ref: str) -> str | None:
    """The repository part of an issue reference: owner/repo#12 -> owner/repo; PAY-12 -> None."""
    path, sep, number = ref.rpartition("#")
    if not sep or not path or "/" not in path or not number.isdigit():
        return None
    return path.lower()


def requested_repo(ticket: Ticket) -> tuple[str, str] | None:
    """The repository a person asked for on the ticket, with where they asked: the label wins over the tag."""
    for label in ticket.labels:
        if label.lower().startswith(LABEL_PREFIX) and label[len(LABEL_PREFIX) :].strip():
            return label[len(LABEL_PREFIX) :].strip(), f"the label {label!r}"
    found = _TAG.search(ticket.description or "")
    if found:
        return found.group(1), f"the tag [repo={found.group(1)}] in the description"
    return None


def route(ticket: Ticket, tracker: TrackerConfig, repos: Sequence[RepoConfig]) -> Route:
    """The [[repos]] entry `ticket` changes (see the module docstring for the rules and their order)."""
    names = tuple(r.name for r in repos)
    if ticket.repo:
        return Route(ticket.repo, "named by the ticket")
    asked = requested_repo(ticket)
    if asked is not None:
        name, where = asked
        for r in repos:
            if r.name.lower() == name.lower():
                return Route(r.name, f"chosen by {where}")
        return Route(None, problem=f"{where} names the repository {name!r}, which is not configured", choices=names)
    host = _OWN_REPO_KINDS.get(tracker.kind)
    own = issue_project(ticket.ref) if host else None
    if own is not None:
        for r in repos:
            paths = {project_path(r.url), str(r.options.get("project", "")).strip("/").lower(), r.name.lower()}
            if r.host == host and own in paths:
                return Route(r.name, f"the issue's own repository {own}")
    configured = tracker.repo_names
    if configured:
        return Route(configured[0], "the tracker's first repository")
    return Route(None, problem="its tracker has no repository (`repo`) and the ticket names none", choices=names)
