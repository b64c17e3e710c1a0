"""Retrying HTTP calls on httpx: 429 and 5xx are retried with exponential backoff that honours Retry-After.

Used by the connectors that speak HTTP through httpx themselves (GraphQL for GitHub and Linear). The ones built on
a vendor client use that client's own retry (python-gitlab's retry_transient_errors, PyGithub's GithubRetry, the
jira package's ResilientSession) configured to the same policy.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import structlog

log = structlog.get_logger(__name__)

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 6
    base_delay: float = 0.5
    max_delay: float = 60.0

    def backoff(self, attempt: int) -> float:
        return float(min(self.max_delay, self.base_delay * (2 ** (attempt - 1))))


def retry_after_seconds(headers: httpx.Headers, now: float | None = None) -> float | None:
    """Seconds to wait from Retry-After (seconds or an HTTP date) or x-ratelimit-reset (epoch seconds)."""
    value = headers.get("retry-after")
    if value:
        value = value.strip()
        if value.isdigit():
            return float(value)
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        return max(0.0, (when - datetime.now(UTC)).total_seconds())
    if headers.get("x-ratelimit-remaining") == "0" and headers.get("x-ratelimit-reset", "").isdigit():
        return max(0.0, float(headers["x-ratelimit-reset"]) - (now if now is not None else time.time()))
    return None


def send_with_retry(
    client: httpx.Client,
    method: str,
    url: str,
    *,
    policy: RetryPolicy = RetryPolicy(),
    sleep: Callable[[float], None] = time.sleep,
    retry_if: Callable[[httpx.Response], bool] | None = None,
    **kwargs: Any,
) -> httpx.Response:
    """Send a request; retry 429/5xx (and whatever `retry_if` says, e.g. GraphQL RATELIMITED) and network faults.

    The last response is returned as it is when every attempt failed, so the caller reports the real error.
    """
    for attempt in range(1, policy.attempts + 1):
        try:
            response = client.request(method, url, **kwargs)
        except httpx.TransportError as exc:
            if attempt == policy.attempts:
                raise
            delay = policy.backoff(attempt)
            log.warning("http.transport_error", url=url, error=str(exc), retry_in=delay, attempt=attempt)
            sleep(delay)
            continue
        retryable = response.status_code in RETRY_STATUSES or (retry_if is not None and retry_if(response))
        if not retryable or attempt == policy.attempts:
            return response
        hinted = retry_after_seconds(response.headers)
        delay = min(policy.max_delay, hinted) if hinted is not None else policy.backoff(attempt)
        log.warning("http.retry", url=url, status=response.status_code, retry_in=round(delay, 2), attempt=attempt)
        sleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover
