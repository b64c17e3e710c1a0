"""Jira's error answers -> messages a person can act on.

Never format a JIRAError with str(): its text includes the request headers, and with them the Authorization
header. Only the status code and Jira's own `errorMessages`/`errors` are used.
"""

from __future__ import annotations

from jira.exceptions import JIRAError

from tracker_bridge.protocols import TrackerError


def jira_message(exc: JIRAError) -> str:
    """Jira's own words: `errorMessages` and `errors` joined (the package already parsed them into .text)."""
    text = (exc.text or "").strip()
    return text or "no details in the answer"


def to_tracker_error(exc: JIRAError, doing: str, *, token_env: str | None = None) -> TrackerError:
    status = exc.status_code
    said = jira_message(exc)
    if status == 401:
        fix = f"check `user` and the token in ${token_env}" if token_env else "check the credentials"
        return TrackerError(f"Jira rejected the credentials while {doing} (HTTP 401: {said}). Fix: {fix}")
    if status == 403:
        return TrackerError(
            f"Jira refused {doing} (HTTP 403: {said}). Fix: give the bot account the needed project permission "
            "(Browse projects, Edit issues, Transition issues, Add comments, Edit own comments, Link issues)"
        )
    if status == 404:
        return TrackerError(
            f"Jira found nothing while {doing} (HTTP 404: {said}). "
            "Fix: check the issue key and that the bot account can browse the project"
        )
    if status == 429 or (status is not None and status >= 500):
        return TrackerError(f"Jira kept failing while {doing} (HTTP {status}: {said}) after retries. Fix: try later")
    if status is None:
        return TrackerError(f"Jira could not be reached while {doing}: {said}. Fix: check the tracker's url")
    return TrackerError(f"Jira rejected {doing} (HTTP {status}: {said})")
