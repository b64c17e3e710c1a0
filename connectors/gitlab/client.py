"""The python-gitlab client both GitLab connectors share: authentication, retries and error messages.

Retries are python-gitlab's own: 429 always (it sleeps for Retry-After, else until RateLimit-Reset, else backs off
exponentially) and, with retry_transient_errors, 5xx and connection failures. python-gitlab takes `max_retries` per
call only, so the client below supplies the configured default to every call.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import gitlab
import requests
from gitlab.exceptions import GitlabAuthenticationError, GitlabError
from gitlab.v4.objects import Project

from tracker_bridge import secrets

DEFAULT_MAX_RETRIES = 6
DEFAULT_TIMEOUT = 30.0
PER_PAGE = 100


class GitLabClient(gitlab.Gitlab):
    """gitlab.Gitlab with a default `max_retries` for every request (python-gitlab's default is 10 per call)."""

    def __init__(
        self, url: str, token: str, *, max_retries: int = DEFAULT_MAX_RETRIES, timeout: float = DEFAULT_TIMEOUT
    ):
        super().__init__(
            url,
            private_token=token,
            timeout=timeout,
            retry_transient_errors=True,
            per_page=PER_PAGE,
            user_agent="tracker-bridge",
        )
        self.default_max_retries = max_retries

    def http_request(self, *args: Any, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("max_retries", self.default_max_retries)
        return super().http_request(*args, **kwargs)


def read_token(token_env: str | None, error: type[Exception], who: str) -> str:
    """The token from the environment variable the configuration names; `error` says how to fix a missing one."""
    if not token_env:
        raise error(
            f"{who}: token_env is not set. Fix: set token_env to the name of the variable holding a GitLab token"
        )
    token = secrets.get(token_env) or ""
    if not token:
        raise error(
            f"{who}: the environment variable {token_env} is empty or not set. "
            f"Fix: export {token_env}=<a GitLab personal, project or group access token with the api scope>"
        )
    return token


def option_int(options: dict[str, Any], key: str, default: int, who: str) -> int:
    value = options.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        from tracker_bridge.config import ConfigError

        raise ConfigError(
            [f"{who}.options.{key} = {value!r}: must be a whole number >= 0. Fix: e.g. {key} = {default}"]
        )
    return value


def explain(exc: Exception, what: str, url: str) -> str:
    """One sentence for a failed GitLab call: what failed, GitLab's answer, and how to fix it."""
    if isinstance(exc, GitlabAuthenticationError):
        return (
            f"{what}: GitLab at {url} rejected the token (401 {exc.error_message}). "
            "Fix: create a new access token with the api scope and export it in the configured token_env"
        )
    if isinstance(exc, GitlabError):
        code = exc.response_code
        message = exc.error_message
        if code == 403:
            return (
                f"{what}: GitLab refused (403 {message}). Fix: give the token the api scope and the bot user at least "
                "the Reporter role (Developer to push and open merge requests)"
            )
        if code == 404:
            return (
                f"{what}: GitLab answered 404 Not Found ({message}). Fix: check the project path or reference, and "
                "that the token's user is a member of the project"
            )
        if code == 429:
            return f"{what}: GitLab kept rate-limiting (429) after every retry. Fix: raise the poll interval"
        return f"{what}: GitLab answered {code}: {message}"
    if isinstance(exc, requests.RequestException):
        return f"{what}: cannot reach GitLab at {url} ({exc.__class__.__name__}: {exc}). Fix: check the url and network"
    return f"{what}: {exc}"


@contextmanager
def translated(error: type[Exception], what: str, url: str) -> Iterator[None]:
    """Turn python-gitlab and requests failures into the connector's error type with a clear message."""
    try:
        yield
    except (GitlabError, requests.RequestException) as exc:
        raise error(explain(exc, what, url)) from exc


# Start-up asks for the project twice: the tracker's check (its role on the board's project) and the code host's
# check (push rights, default branch). Both connectors hold their own client, so the answer is shared here, per
# GitLab, token and project, for a short while: long enough for one start-up, short enough never to hide a change.
_PROJECT_TTL_S = 10.0
_projects: dict[tuple[str, str, str], tuple[float, Project]] = {}
_projects_lock = threading.Lock()


def read_project(client: gitlab.Gitlab, path: str) -> Project:
    """The project `path` with its attributes (one GET), shared by every client of the same GitLab and token."""
    token = hashlib.sha256((client.private_token or "").encode()).hexdigest()
    key = (client.url, token, path)
    now = time.monotonic()
    with _projects_lock:
        hit = _projects.get(key)
        if hit is not None and now - hit[0] < _PROJECT_TTL_S:
            return hit[1]
    project = client.projects.get(path)
    with _projects_lock:
        _projects[key] = (now, project)
    return project


def forget_projects() -> None:
    """Drop the shared project answers (tests that start the daemon twice in one process)."""
    with _projects_lock:
        _projects.clear()
