"""Reading a [[trackers]] entry of kind "linear": team key, API base, token and the connector's own options."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from tracker_bridge.config import ConfigError, TrackerConfig

AUTH_SCHEMES = ("auto", "api_key", "oauth")
KNOWN_OPTIONS = ("auth", "page_size", "max_rate_limit_wait", "timeout", "poll_overlap")
TEAM_KEY = re.compile(r"^[A-Za-z0-9_]{1,7}$")


@dataclass(frozen=True)
class LinearOptions:
    api_base: str
    team_key: str
    token: str
    auth: str = "auto"
    page_size: int = 10
    max_rate_limit_wait: float = 300.0
    timeout: float = 30.0
    poll_overlap: float = 10.0

    @classmethod
    def from_config(cls, cfg: TrackerConfig) -> LinearOptions:
        where = f'trackers (name "{cfg.name}")'
        problems: list[str] = []
        team_key = cfg.query.strip()
        if not TEAM_KEY.match(team_key):
            problems.append(
                f"{where}.query = {cfg.query!r}: not a Linear team key. "
                "Fix: use the team's key as shown in its issue identifiers (ENG for ENG-7)"
            )
        api_base = cfg.url.rstrip("/").removesuffix("/graphql")
        if not api_base.startswith(("http://", "https://")):
            problems.append(f"{where}.url = {cfg.url!r}: not an http(s) URL. Fix: use https://api.linear.app")
        token = cfg.token() or ""
        if not token:
            env = cfg.token_env or "LINEAR_API_KEY"
            problems.append(
                f"{where}.token_env = {cfg.token_env!r}: no token in the environment. "
                f'Fix: set token_env = "{env}" and export {env}=<a Linear personal API key or OAuth token>'
            )
        opts: dict[str, Any] = dict(cfg.options)
        for unknown in sorted(set(opts) - set(KNOWN_OPTIONS)):
            problems.append(
                f"{where}.options.{unknown}: unknown option. Fix: remove it; known: {', '.join(KNOWN_OPTIONS)}"
            )
        auth = opts.get("auth", "auto")
        if auth not in AUTH_SCHEMES:
            problems.append(f"{where}.options.auth = {auth!r}: Fix: use one of {', '.join(AUTH_SCHEMES)}")
        page_size = opts.get("page_size", 10)
        if not isinstance(page_size, int) or isinstance(page_size, bool) or not 1 <= page_size <= 100:
            problems.append(f"{where}.options.page_size = {page_size!r}: Fix: use a whole number from 1 to 100")
        numbers: dict[str, float] = {}
        for name, default in (("max_rate_limit_wait", 300.0), ("timeout", 30.0), ("poll_overlap", 10.0)):
            value = opts.get(name, default)
            if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
                problems.append(f"{where}.options.{name} = {value!r}: Fix: use a number of seconds above 0")
            else:
                numbers[name] = float(value)
        if problems:
            raise ConfigError(problems)
        return cls(
            api_base=api_base,
            team_key=team_key.upper(),
            token=token,
            auth=str(auth),
            page_size=int(page_size),
            max_rate_limit_wait=numbers["max_rate_limit_wait"],
            timeout=numbers["timeout"],
            poll_overlap=numbers["poll_overlap"],
        )
