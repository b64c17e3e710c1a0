"""Retrying HTTP calls on httpx: 429 and 5xx are retried with exponential backoff that honours Retry-After.

The retry loop is tenacity's (stop, wait and retry conditions as data); only the policy is ours: which responses
are worth another try, and how long Retry-After / x-ratelimit-reset ask us to wait. These are in-call retries of
seconds; a remote that stays down is retried across cycles by the engine (`lifecycle.RetryPolicy`).

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
from tenacity import RetryCallState, Retrying, retry_if_exception_type, retry_if_result, stop_after_attempt

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

    The last response is returned as it is when every attempt failed, so the caller reports the real error; a
    network fault on the last attempt is raised.
    """

    def retryable(response: httpx.Response) -> bool:
        return response.status_code in RETRY_STATUSES or (retry_if is not None and retry_if(response))

    def wait(state: RetryCallState) -> float:
        outcome = state.outcome
        if outcome is not None and not outcome.failed:
            hinted = retry_after_seconds(outcome.result().headers)
            if hinted is not None:
                return min(policy.max_delay, hinted)
        return policy.backoff(state.attempt_number)

    def before_sleep(state: RetryCallState) -> None:
        outcome = state.outcome
        delay = round(state.upcoming_sleep, 2)
        if outcome is not None and outcome.failed:
            log.warning("http.transport_error", url=url, error=str(outcome.exception()), retry_in=delay,
                        attempt=state.attempt_number)  # fmt: skip
        elif outcome is not None:
            log.warning("http.retry", url=url, status=outcome.result().status_code, retry_in=delay,
                        attempt=state.attempt_number)  # fmt: skip

    def give_up(state: RetryCallState) -> httpx.Response:
        assert state.outcome is not None
        response: httpx.Response = state.outcome.result()  # raises the last network fault, if that is what it was
        return response

    retrying = Retrying(
        stop=stop_after_attempt(policy.attempts),
        wait=wait,
        sleep=sleep,
        retry=retry_if_exception_type(httpx.TransportError) | retry_if_result(retryable),
        before_sleep=before_sleep,
        retry_error_callback=give_up,
    )
    result: httpx.Response = retrying(client.request, method, url, **kwargs)
    return result
