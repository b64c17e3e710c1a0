"""The Linear GraphQL client: authentication, Linear's rate limits and error shapes, against the simulator."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from tests.sims.linear import LinearSim
from tracker_bridge.protocols import TrackerError
from tracker_bridge_connectors.linear import documents as docs
from tracker_bridge_connectors.linear.client import LinearAuthError, LinearClient, authorization_header
from tracker_bridge_connectors.linear.documents import Document
from tracker_bridge_connectors.retry import RetryPolicy


@pytest.fixture(scope="module")
def shared() -> Iterator[LinearSim]:
    with LinearSim() as sim:
        yield sim


@pytest.fixture()
def sim(shared: LinearSim) -> LinearSim:
    shared.reset()
    return shared


class Sleeper:
    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        time.sleep(seconds)


def client(sim: LinearSim, token: str = "lin_api_bot", **kwargs: object) -> tuple[LinearClient, Sleeper]:
    sleeper = Sleeper()
    policy = RetryPolicy(attempts=4, base_delay=0.01, max_delay=0.05)
    return LinearClient(sim.url, token, policy=policy, sleep=sleeper, **kwargs), sleeper  # type: ignore[arg-type]


def test_api_keys_are_sent_bare_and_oauth_tokens_as_bearer() -> None:
    assert authorization_header("lin_api_123") == "lin_api_123"
    assert authorization_header("lin_oauth_123") == "Bearer lin_oauth_123"
    assert authorization_header("opaque", "oauth") == "Bearer opaque"
    assert authorization_header("opaque", "api_key") == "opaque"


def test_a_refused_key_says_where_to_make_one(sim: LinearSim) -> None:
    c, _ = client(sim, token="lin_api_nope", token_env="LINEAR_API_KEY")
    with pytest.raises(LinearAuthError, match="export it in LINEAR_API_KEY"):
        c.execute(docs.VIEWER)
    # An API key sent the OAuth way is refused like Linear refuses it.
    c, _ = client(sim, auth_scheme="oauth")
    with pytest.raises(LinearAuthError):
        c.execute(docs.VIEWER)


def test_ratelimited_is_waited_out_until_linears_announced_reset(sim: LinearSim) -> None:
    c, sleeper = client(sim, max_wait=5.0)
    sim.exhaust("lin_api_bot", reset_in_s=1.0)
    started = time.monotonic()
    data = c.execute(docs.VIEWER)
    assert data["viewer"]["email"] == "bot@acme.dev"
    # The backoff (0.01 s) was stretched to the reset time from X-RateLimit-Requests-Reset (by however much of
    # the second is left when the first answer arrives: a loaded machine may take a while to send it).
    assert sleeper.waits and sleeper.waits[0] > 0.1
    assert time.monotonic() - started >= 0.95
    assert c.requests_sent == 2


def test_the_wait_for_a_reset_is_capped(sim: LinearSim) -> None:
    c, sleeper = client(sim, max_wait=0.05)
    sim.exhaust("lin_api_bot", reset_in_s=3600)
    with pytest.raises(TrackerError, match="still rate limited after 4 attempts"):
        c.execute(docs.VIEWER)
    assert max(sleeper.waits) <= 0.05


def test_bursts_of_ratelimited_and_5xx_are_retried(sim: LinearSim) -> None:
    c, _ = client(sim)
    sim.inject_ratelimited(2)
    assert c.execute(docs.VIEWER)["viewer"]["id"] == sim.bot.id
    sim.inject_5xx(3)
    assert c.execute(docs.VIEWER)["viewer"]["id"] == sim.bot.id
    assert c.requests_sent == 7


def test_a_lasting_outage_becomes_a_clear_error(sim: LinearSim) -> None:
    c, _ = client(sim)
    sim.inject_5xx(10)
    with pytest.raises(TrackerError, match=r"HTTP 503 .* after 4 attempts.*linearstatus"):
        c.execute(docs.VIEWER)


def test_an_invalid_document_is_refused_like_linear_refuses_it(sim: LinearSim) -> None:
    c, _ = client(sim)
    with pytest.raises(TrackerError, match=r"Cannot query field 'nope'.*GRAPHQL_VALIDATION_FAILED"):
        c.execute(Document("Broken", "query Broken { viewer { nope } }"))
    assert sim.calls[-1].status == 400


def test_rate_limit_headers_are_read(sim: LinearSim) -> None:
    c, _ = client(sim)
    c.execute(docs.VIEWER)
    assert c.limits.requests_remaining == sim.request_limit - 1
    assert c.limits.last_complexity == 2


def test_a_spent_budget_is_waited_for_before_the_next_request(sim: LinearSim) -> None:
    sim.request_limit, sim.window_s = 2, 0.4
    c, sleeper = client(sim, max_wait=5.0)
    for _ in range(3):
        c.execute(docs.VIEWER)
    # The second answer said 0 requests left: the third request waited for the refill and was never refused.
    assert [call.error_codes for call in sim.calls] == [[], [], []]
    assert len(sleeper.waits) == 1 and sleeper.waits[0] > 0.2
