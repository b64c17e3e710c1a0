"""The HTTP session under the `jira` client: the project's retry policy for 429 and 5xx, and authentication.

The `jira` package's own ResilientSession retries only 429 and 503 and waits at least two seconds even when
Retry-After says 0; tracker-bridge's policy (tracker_bridge_connectors.retry.RetryPolicy) retries 429 and every 5xx with
exponential backoff, honouring Retry-After. This subclass keeps ResilientSession's error handling (JIRAError with
Jira's `errorMessages`/`errors` parsed) and replaces only the retry loop.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
import requests
import structlog
from jira import JIRA
from jira.resilientsession import ResilientSession, raise_on_error

from tracker_bridge_connectors.retry import RETRY_STATUSES, RetryPolicy, retry_after_seconds

log = structlog.get_logger(__name__)


# A 5xx may come after Jira applied the change; repeating a POST then would add a second comment. 429 always means
# "not done", so it is retried for every method; 5xx only for methods that are safe to repeat.
IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})


class RetryingSession(ResilientSession):
    """A ResilientSession whose retry loop follows tracker-bridge's RetryPolicy."""

    def __init__(
        self,
        timeout: float = 30.0,
        policy: RetryPolicy = RetryPolicy(),
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        super().__init__(timeout=timeout, max_retries=policy.attempts - 1, max_retry_delay=int(policy.max_delay))
        self.policy = policy
        self.sleep = sleep

    def request(  # type: ignore[override]
        self, method: str, url: str | bytes, *args: Any, idempotent: bool | None = None, **kwargs: Any
    ) -> requests.Response:
        """`idempotent=True` lets a POST that is safe to repeat (a remote link upserted by globalId) retry 5xx too."""
        kwargs.pop("_prepare_retry_class", None)
        repeatable = method.upper() in IDEMPOTENT if idempotent is None else idempotent
        prepared = self._jira_prepare(**kwargs)
        response: requests.Response | None = None
        for attempt in range(1, self.policy.attempts + 1):
            try:
                response = requests.Session.request(self, method, url, timeout=self.timeout, **prepared)
            except requests.ConnectionError as exc:
                # A dropped connection may have carried the request: only what is safe to repeat is repeated.
                if attempt == self.policy.attempts or not repeatable:
                    raise
                delay = self.policy.backoff(attempt)
                log.warning("jira.connection_error", url=str(url), error=str(exc), retry_in=delay, attempt=attempt)
                self.sleep(delay)
                continue
            retryable = response.status_code == 429 or (repeatable and response.status_code in RETRY_STATUSES)
            if not retryable or attempt == self.policy.attempts:
                break
            hinted = retry_after_seconds(httpx.Headers(dict(response.headers)))
            delay = min(self.policy.max_delay, hinted) if hinted is not None else self.policy.backoff(attempt)
            log.warning(
                "jira.retry", method=method, url=str(url), status=response.status_code, retry_in=delay, attempt=attempt
            )
            self.sleep(delay)
        raise_on_error(response, **prepared)
        assert response is not None
        return response


def make_client(
    server: str,
    *,
    user: str | None,
    token: str,
    pat: bool,
    api_version: str = "3",
    timeout: float = 30.0,
    policy: RetryPolicy = RetryPolicy(),
) -> JIRA:
    """A `jira.JIRA` speaking REST `api_version` through a RetryingSession.

    get_server_info=False: the client must not spend a request on /serverInfo at every start-up (`run --once`
    starts a process per cycle); `check()` asks for it when doctor runs.
    """
    client = JIRA(
        server=server,
        options={"rest_api_version": api_version, "agile_rest_api_version": "1.0"},
        get_server_info=False,
        max_retries=0,
        timeout=timeout,
    )
    session = RetryingSession(timeout=timeout, policy=policy)
    session.headers.update(client._session.headers)
    session.verify = client._session.verify
    if pat:
        session.headers["Authorization"] = f"Bearer {token}"
    else:
        session.auth = (user or "", token)
    client._session = session
    return client
