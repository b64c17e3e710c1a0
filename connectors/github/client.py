"""GitHub REST and GraphQL over httpx: one client shared by the Projects tracker and the code host.

Why our own small client rather than PyGithub for everything: polling must be cheap, and the cheapest GitHub request
is a conditional one (If-None-Match answered 304 costs no rate limit), which needs the ETag of the previous answer
for the same URL. This client keeps those ETags and answers from its cache on 304.

Rate limits: 429 and 5xx are retried with backoff; a 403/429 that is a primary limit (x-ratelimit-remaining: 0)
waits for x-ratelimit-reset, a secondary limit (retry-after) waits as told; GraphQL `RATE_LIMITED` errors likewise.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx
import structlog

from tracker_bridge_connectors.retry import RetryPolicy, send_with_retry

log = structlog.get_logger(__name__)

DEFAULT_API_URL = "https://api.github.com"
API_VERSION = "2022-11-28"


class GitHubAPIError(Exception):
    """GitHub refused or failed a request; `status` is the HTTP status (200 for GraphQL errors)."""

    def __init__(self, message: str, status: int = 0, errors: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.errors = errors or []

    @property
    def not_found(self) -> bool:
        return self.status == 404 or any(e.get("type") == "NOT_FOUND" for e in self.errors)


def graphql_url(api_url: str) -> str:
    """api.github.com -> https://api.github.com/graphql; GHES https://ghe/api/v3 -> https://ghe/api/graphql."""
    base = api_url.rstrip("/")
    if base.endswith("/api/v3"):
        return base[: -len("/v3")] + "/graphql"
    return base + "/graphql"


def _is_rate_limited(response: httpx.Response) -> bool:
    """A 403 that is a rate limit (primary or secondary), or a GraphQL RATE_LIMITED answer."""
    limited = "retry-after" in response.headers or response.headers.get("x-ratelimit-remaining") == "0"
    if response.status_code == 403 and limited:
        return True
    if response.status_code == 200 and response.request.url.path.endswith("/graphql"):
        try:
            body = response.json()
        except (json.JSONDecodeError, ValueError):
            return False
        errors = body.get("errors") if isinstance(body, dict) else None
        return isinstance(errors, list) and any(isinstance(e, dict) and e.get("type") == "RATE_LIMITED" for e in errors)
    return False


@dataclass
class Counters:
    """What this client has spent: requests sent, of which conditional hits (304, free), GraphQL queries."""

    requests: int = 0
    not_modified: int = 0
    graphql: int = 0
    graphql_points: int = 0
    last_remaining: int | None = None


@dataclass
class _Cached:
    etag: str
    data: Any
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class RestResult:
    data: Any
    headers: httpx.Headers | dict[str, str]
    status: int
    not_modified: bool = False

    @property
    def next_url(self) -> str | None:
        """The rel="next" page from the Link header, if any."""
        link = self.headers.get("link") or self.headers.get("Link") or ""
        for part in link.split(","):
            if 'rel="next"' in part:
                return part.split(";")[0].strip().strip("<>")
        return None


class GitHubClient:
    def __init__(
        self,
        api_url: str | None,
        token: str,
        *,
        token_env: str = "GITHUB_TOKEN",
        policy: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        timeout: float = 30.0,
    ) -> None:
        self.api_url = (api_url or DEFAULT_API_URL).rstrip("/")
        self.graphql_url = graphql_url(self.api_url)
        self.token_env = token_env
        self.policy = policy or RetryPolicy()
        self.sleep = sleep
        self.counters = Counters()
        self._etags: dict[str, _Cached] = {}
        self._http = httpx.Client(
            timeout=timeout,
            headers={
                "Authorization": f"Bearer {token}",
                "Accept": "application/vnd.github+json",
                "X-GitHub-Api-Version": API_VERSION,
                "User-Agent": "tracker-bridge",
            },
        )

    def close(self) -> None:
        self._http.close()

    # --- sending ---------------------------------------------------------------------------------------------------

    def _send(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        try:
            response = send_with_retry(
                self._http, method, url, policy=self.policy, sleep=self.sleep, retry_if=_is_rate_limited, **kwargs
            )
        except httpx.HTTPError as exc:
            raise GitHubAPIError(
                f"cannot reach GitHub at {self.api_url} ({exc}); check the URL and the network"
            ) from exc
        self.counters.requests += 1  # logical requests; retries show in the server's log
        remaining = response.headers.get("x-ratelimit-remaining")
        if remaining is not None and remaining.isdigit():
            self.counters.last_remaining = int(remaining)
        return response

    def url(self, path: str) -> str:
        return path if path.startswith(("http://", "https://")) else self.api_url + path

    def rest(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json_body: Any = None,
        conditional: bool = False,
        allow: tuple[int, ...] = (),
    ) -> RestResult:
        """One REST call. `conditional` GETs send the last ETag and answer from the cache on 304 (free)."""
        url = self.url(path)
        key = url + "?" + "&".join(f"{k}={v}" for k, v in sorted((params or {}).items()))
        headers: dict[str, str] = {}
        cached = self._etags.get(key) if conditional else None
        if cached is not None:
            headers["If-None-Match"] = cached.etag
        response = self._send(method, url, params=params, json=json_body, headers=headers)
        if response.status_code == 304 and cached is not None:
            self.counters.not_modified += 1
            return RestResult(cached.data, cached.headers, 304, not_modified=True)
        if response.status_code in allow:
            return RestResult(_json(response), response.headers, response.status_code)
        if response.status_code >= 400:
            raise self._error(method, url, response)
        data = _json(response)
        etag = response.headers.get("etag")
        if conditional and etag:
            self._etags[key] = _Cached(etag, data, dict(response.headers))
        return RestResult(data, response.headers, response.status_code)

    def rest_pages(self, path: str, *, params: dict[str, Any] | None = None, limit: int = 10) -> list[Any]:
        """Every item of a paginated list (following Link rel="next"), at most `limit` pages."""
        items: list[Any] = []
        result = self.rest("GET", path, params={"per_page": 100, **(params or {})})
        items.extend(result.data or [])
        for _ in range(limit - 1):
            nxt = result.next_url
            if not nxt:
                break
            result = self.rest("GET", nxt)
            items.extend(result.data or [])
        return items

    def graphql(self, document: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        response = self._send("POST", self.graphql_url, json={"query": document, "variables": variables or {}})
        self.counters.graphql += 1
        if response.status_code >= 400:
            raise self._error("POST", self.graphql_url, response)
        body = _json(response)
        if not isinstance(body, dict):
            raise GitHubAPIError("GitHub GraphQL answered something that is not JSON", response.status_code)
        errors = body.get("errors") or []
        if errors:
            messages = "; ".join(str(e.get("message")) for e in errors if isinstance(e, dict))
            raise GitHubAPIError(f"GitHub GraphQL error: {messages}", response.status_code, errors)
        data = body.get("data") or {}
        cost = (data.get("rateLimit") or {}).get("cost") if isinstance(data, dict) else None
        self.counters.graphql_points += int(cost) if isinstance(cost, int) else 1
        return data if isinstance(data, dict) else {}

    # --- errors ----------------------------------------------------------------------------------------------------

    def _error(self, method: str, url: str, response: httpx.Response) -> GitHubAPIError:
        body = _json(response)
        message = body.get("message", "") if isinstance(body, dict) else ""
        what = f"GitHub {method} {urlsplit(url).path} answered {response.status_code}"
        status = response.status_code
        if status == 401:
            hint = f"the token in ${self.token_env} is missing, expired or revoked; create a new one (docs/github.md)"
        elif status == 403 and _is_rate_limited(response):
            reset = response.headers.get("x-ratelimit-reset", "?")
            hint = f"GitHub's rate limit is exhausted until {reset} (epoch seconds); lower the poll frequency"
        elif status == 403:
            scopes = response.headers.get("x-accepted-oauth-scopes")
            need = f" (this call needs the scopes: {scopes})" if scopes else ""
            hint = f"the token lacks a permission{need}; see docs/github.md for the scopes"
        elif status == 404:
            hint = "it does not exist, or the token cannot see it (private repository or project: check the scopes)"
        elif status == 422:
            errors = body.get("errors") if isinstance(body, dict) else None
            hint = f"GitHub rejected the request: {errors or message}"
        else:
            hint = "GitHub had a problem; it will be retried on the next cycle"
        return GitHubAPIError(f"{what}: {message or response.reason_phrase}. {hint}", status)


def _json(response: httpx.Response) -> Any:
    if not response.content:
        return None
    try:
        return response.json()
    except (json.JSONDecodeError, ValueError):
        return None
