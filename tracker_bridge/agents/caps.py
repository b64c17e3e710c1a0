"""Hard caps on one run (turns, tokens, dollars, wall time, today's budget), pricing, and event throttling.

Every backend keeps a `CapMeter`: it adds usage as the run goes and answers "must the run stop now, and why?" with a
reason a person reads in the status comment ("dollar cap reached: $3.12 of max_cost_usd = 3.0").
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from tracker_bridge.config import ModelPrice
from tracker_bridge.models import RunUsage
from tracker_bridge.protocols import AgentEvent, AgentRequest


def price_of(prices: Mapping[str, ModelPrice], model: str) -> ModelPrice | None:
    """The price of `model`; a dated name (claude-sonnet-4-5-20250929) falls back to its undated entry."""
    if model in prices:
        return prices[model]
    best = max((name for name in prices if model.startswith(name)), key=len, default=None)
    return prices[best] if best else None


def cost_usd(
    price: ModelPrice | None,
    *,
    input_tokens: int = 0,
    output_tokens: int = 0,
    cache_write_tokens: int = 0,
    cache_read_tokens: int = 0,
) -> float:
    """Dollars for one call's tokens; cache writes and reads default to the input price when not listed."""
    if price is None:
        return 0.0
    write = price.cache_write if price.cache_write is not None else price.input
    read = price.cache_read if price.cache_read is not None else price.input
    total = input_tokens * price.input + output_tokens * price.output
    total += cache_write_tokens * write + cache_read_tokens * read
    return total / 1_000_000


@dataclass
class CapMeter:
    """Usage so far against the caps of one `AgentRequest`."""

    max_turns: int
    max_cost_usd: float
    timeout_s: float
    max_tokens: int | None = None
    daily_budget_left_usd: float | None = None
    usage: RunUsage = field(default_factory=RunUsage)
    started: float = field(default_factory=time.monotonic)

    @classmethod
    def for_request(cls, request: AgentRequest) -> CapMeter:
        return cls(
            max_turns=request.max_turns,
            max_cost_usd=request.max_cost_usd,
            timeout_s=request.timeout_s,
            max_tokens=request.max_tokens,
            daily_budget_left_usd=request.daily_budget_left_usd,
        )

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    @property
    def time_left(self) -> float:
        return max(self.timeout_s - self.elapsed, 0.0)

    @property
    def dollar_limit(self) -> float:
        """The tighter of the run's dollar cap and what today's budget still allows."""
        if self.daily_budget_left_usd is None:
            return self.max_cost_usd
        return max(min(self.max_cost_usd, self.daily_budget_left_usd), 0.0)

    def add(self, *, turns: int = 0, input_tokens: int = 0, output_tokens: int = 0, cost: float = 0.0) -> None:
        u = self.usage
        self.usage = RunUsage(
            turns=u.turns + turns,
            input_tokens=u.input_tokens + input_tokens,
            output_tokens=u.output_tokens + output_tokens,
            cost_usd=round(u.cost_usd + cost, 6),
        )

    def set(self, usage: RunUsage) -> None:
        self.usage = usage

    def exceeded(self) -> str | None:
        """Why the run must stop now (a cap is reached), or None. Spending caps before time, then turns."""
        u = self.usage
        if self.daily_budget_left_usd is not None and u.cost_usd >= self.daily_budget_left_usd:
            left = max(self.daily_budget_left_usd, 0.0)
            return (
                f"DAILY BUDGET reached: this run's ${u.cost_usd:.2f} uses up the ${left:.2f} "
                "that today's daily_budget_usd still allowed"
            )
        if u.cost_usd >= self.max_cost_usd:
            return f"dollar cap reached: ${u.cost_usd:.2f} of max_cost_usd = {self.max_cost_usd:g}"
        if self.max_tokens is not None and u.tokens >= self.max_tokens:
            return f"token cap reached: {u.tokens} tokens of max_tokens = {self.max_tokens}"
        if self.elapsed >= self.timeout_s:
            return f"wall-time cap reached: {self.elapsed:.0f} s of timeout = {self.timeout_s:g} s"
        return None

    def before_turn(self) -> str | None:
        """Why another model turn may not start (including the turn cap), or None."""
        reason = self.exceeded()
        if reason is None and self.usage.turns >= self.max_turns:
            reason = f"turn cap reached: {self.usage.turns} turns of max_turns = {self.max_turns}"
        return reason

    def wall_time_reason(self) -> str:
        return f"wall-time cap reached: {self.elapsed:.0f} s of timeout = {self.timeout_s:g} s"

    def progress(self) -> str:
        u = self.usage
        return f"turn {u.turns}/{self.max_turns}, {u.tokens} tokens, ${u.cost_usd:.2f} of ${self.max_cost_usd:g}"


class Throttle:
    """Pass events on at most every `interval` seconds (the engine edits a tracker comment per event it gets).

    `force=True` events (start, a cap, the end) always go through; a throttled event is not lost for good: the next
    one that passes carries the latest usage.
    """

    def __init__(self, on_event: Callable[[AgentEvent], None], interval: float = 5.0) -> None:
        self.on_event = on_event
        self.interval = interval
        self._last = float("-inf")
        self.sent = 0
        self.dropped = 0

    def __call__(self, event: AgentEvent, *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last < self.interval:
            self.dropped += 1
            return
        self._last = now
        self.sent += 1
        self.on_event(event)
