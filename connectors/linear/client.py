"""A small typed GraphQL client for Linear on httpx: authentication, rate limits, and Linear's error shapes.

Linear answers a rate-limited request with HTTP 400 and `errors[].extensions.code == "RATELIMITED"`, and says when the
budget refills in X-RateLimit-{Requests,Complexity}-Reset (epoch milliseconds), not in Retry-After. The shared
`send_with_retry` retries 429/5xx; this client adds RATELIMITED through its `retry_if` hook and stretches the
backoff to the reset time Linear announced (capped by `max_wait`), so a burst is waited out rather than lost.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
import structlog

from tracker_bridge.protocols import TrackerError
from tracker_bridge_connectors.linear.documents import Document
from tracker_bridge_connectors.retry import RetryPolicy, send_with_retry

log = structlog.get_logger(__name__)

RATELIMITED = "RATELIMITED"
_AUTH_CODES = frozenset({"AUTHENTICATION_ERROR", "FORBIDDEN"})


class LinearAuthError(TrackerError):
    """Linear refused the credentials (or their scope)."""


class LinearNotFound(TrackerError):
    """The entity asked for does not exist (or is not visible to this key)."""


def authorization_header(token: str, scheme: str = "auto") -> str:
    """Personal API keys go as they are; OAuth access tokens as `Bearer <token>` (Linear accepts no other mix).

    `auto` tells them apart by Linear's prefixes: `lin_api_` for API keys, `lin_oauth_` for OAuth tokens.
    """
    if scheme == "oauth" or (scheme == "auto" and token.startswith("lin_oauth_")):
        return f"Bearer {token}"
    return token


def error_codes(body: Any) -> list[str]:
    if not isinstance(body, dict):
        return []
    return [str((e.get("extensions") or {}).get("code", "")) for e in body.get("errors") or () if isinstance(e, dict)]


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None


def reset_delay(headers: httpx.Headers, now: float | None = None) -> float | None:
    """Seconds until Linear refills the exhausted budget, from X-RateLimit-*-Reset (epoch milliseconds)."""
    now = time.time() if now is None else now
    delays: list[float] = []
    for kind in ("requests", "complexity"):
        remaining = headers.get(f"x-ratelimit-{kind}-remaining")
        reset = headers.get(f"x-ratelimit-{kind}-reset")
        if reset and reset.isdigit() and (remaining is None or remaining.strip() in ("0", "")):
            delays.append(max(0.0, int(reset) / 1000.0 - now))
    return max(delays) if delays else None


@dataclass
class RateLimitStatus:
    """What Linear's last response said about the budgets (for logs and the benchmark)."""

    requests_remaining: int | None = None
    complexity_remaining: int | None = None
    last_complexity: int | None = None


@dataclass
class LinearClient:
    """POSTs named documents to <base_url>/graphql and returns `data`, or raises TrackerError saying what failed."""

    base_url: str
    token: str
    auth_scheme: str = "auto"
    timeout: float = 30.0
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    max_wait: float = 300.0
    sleep: Callable[[float], None] = time.sleep
    token_env: str = "LINEAR_API_KEY"
    transport: httpx.BaseTransport | None = None
    requests_sent: int = 0
    limits: RateLimitStatus = field(default_factory=RateLimitStatus)

    def __post_init__(self) -> None:
        self._client = httpx.Client(
            base_url=self.base_url.rstrip("/"),
            timeout=self.timeout,
            transport=self.transport,
            event_hooks={"request": [self._count]},
            headers={
                "Authorization": authorization_header(self.token, self.auth_scheme),
                "Content-Type": "application/json",
                "User-Agent": "tracker-bridge",
            },
        )
        self._hinted_wait: float | None = None
        self._spent_until: float | None = None

    def close(self) -> None:
        self._client.close()

    def _count(self, request: httpx.Request) -> None:
        self.requests_sent += 1

    # --- retry hooks ---

    def _retry_if(self, response: httpx.Response) -> bool:
        """RATELIMITED arrives as HTTP 400; remember how long Linear asked us to wait before the retry sleeps."""
        self._hinted_wait = None
        if response.status_code == 400 and RATELIMITED in error_codes(_json(response)):
            self._hinted_wait = reset_delay(response.headers)
            return True
        return False

    def _sleep(self, delay: float) -> None:
        hinted = self._hinted_wait
        self._hinted_wait = None
        self.sleep(min(self.max_wait, max(delay, hinted)) if hinted is not None else delay)

    # --- the one call ---

    def execute(self, document: Document, variables: Mapping[str, Any] | None = None) -> dict[str, Any]:
        payload = {"query": document.text, "variables": dict(variables or {}), "operationName": document.name}
        self._wait_for_budget()
        try:
            response = send_with_retry(
                self._client,
                "POST",
                "/graphql",
                json=payload,
                policy=self.policy,
                sleep=self._sleep,
                retry_if=self._retry_if,
            )
        except httpx.TransportError as exc:
            raise TrackerError(
                f"Linear {document.name}: cannot reach {self.base_url} ({exc}). "
                "Fix: check the tracker's url and the network"
            ) from exc
        self._note_limits(response.headers)
        body = _json(response)
        return self._data_or_raise(document, response, body)

    def _wait_for_budget(self) -> None:
        """When Linear's last answer said the budget is spent, wait for the refill instead of spending a request on
        a certain RATELIMITED."""
        if self._spent_until is None:
            return
        delay = self._spent_until - time.time()
        self._spent_until = None
        if delay > 0:
            log.info("linear.rate_limit_wait", seconds=round(min(delay, self.max_wait), 2))
            self.sleep(min(delay, self.max_wait))

    def _note_limits(self, headers: httpx.Headers) -> None:
        delay = reset_delay(headers)
        self._spent_until = time.time() + delay if delay else None

        def as_int(name: str) -> int | None:
            value = headers.get(name)
            return int(value) if value and value.isdigit() else None

        self.limits = RateLimitStatus(
            as_int("x-ratelimit-requests-remaining"),
            as_int("x-ratelimit-complexity-remaining"),
            as_int("x-complexity"),
        )

    def _data_or_raise(self, document: Document, response: httpx.Response, body: Any) -> dict[str, Any]:
        name = document.name
        codes = error_codes(body)
        if response.status_code in (401, 403) or _AUTH_CODES.intersection(codes):
            raise LinearAuthError(
                f"Linear {name}: the credentials were refused ({_messages(body) or response.status_code}). "
                f"Fix: create a personal API key in Linear (Settings > Security & access > Personal API keys) with "
                f"read and write access to the team, and export it in {self.token_env}"
            )
        if RATELIMITED in codes:
            raise TrackerError(
                f"Linear {name}: still rate limited after {self.policy.attempts} attempts "
                f"(requests left {self.limits.requests_remaining}, "
                f"complexity left {self.limits.complexity_remaining}). "
                "Fix: raise [bridge] poll_interval, or ask Linear support for a higher limit"
            )
        if response.status_code >= 500 or not isinstance(body, dict):
            raise TrackerError(
                f"Linear {name}: HTTP {response.status_code} from {self.base_url}/graphql after "
                f"{self.policy.attempts} attempts. Fix: Linear may be down (https://linearstatus.com); try again later"
            )
        errors = body.get("errors") or []
        if errors:
            message = _messages(body)
            if any("not found" in str(e.get("message", "")).lower() for e in errors if isinstance(e, dict)):
                raise LinearNotFound(f"Linear {name}: {message}")
            raise TrackerError(f"Linear {name}: {message} (HTTP {response.status_code}, codes {', '.join(codes)})")
        data = body.get("data")
        if not isinstance(data, dict):
            raise TrackerError(f"Linear {name}: the answer has no data (HTTP {response.status_code})")
        return data


def _messages(body: Any) -> str:
    if not isinstance(body, dict):
        return ""
    parts = []
    for e in body.get("errors") or ():
        if isinstance(e, dict):
            ext = e.get("extensions") or {}
            parts.append(str(ext.get("userPresentableMessage") or e.get("message") or "unknown error"))
    return "; ".join(parts)
