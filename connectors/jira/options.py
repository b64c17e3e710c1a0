"""The `options = { ... }` of a `kind = "jira"` tracker, validated with messages that name the key and the fix."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tracker_bridge.config import ConfigError, TrackerConfig

KNOWN = {
    "board": "id of the agile board whose columns name the stages (e.g. 12); absent: stages are status names",
    "auth": '"basic" (email + API token, Jira Cloud) or "pat" (personal access token, Jira Data Center)',
    "api_version": '"3" (Jira Cloud, ADF bodies; the default) or "2" (Jira Data Center, wiki-markup bodies)',
    "overlap_minutes": "how far each poll reaches back behind the last one (default 2)",
    "page_size": "issues per search page, 1-100 (default 100)",
    "project": "project key that doctor checks the workflow and permissions of (default: from `query`)",
    "timeout": "seconds per HTTP request (default 30)",
}


@dataclass(frozen=True)
class JiraOptions:
    board: int | None = None
    pat: bool = False
    api_version: str = "3"
    overlap_minutes: int = 2
    page_size: int = 100
    project: str | None = None
    timeout: float = 30.0

    @classmethod
    def parse(cls, cfg: TrackerConfig) -> JiraOptions:
        key = f'trackers (name "{cfg.name}").options'
        opts: dict[str, Any] = dict(cfg.options)
        problems: list[str] = []
        for name in sorted(set(opts) - set(KNOWN)):
            known = "; ".join(f"{k}: {v}" for k, v in KNOWN.items())
            problems.append(
                f"{key}.{name}: unknown option for kind = 'jira'. Fix: remove it; known options are {known}"
            )

        board = opts.get("board")
        if board is not None and (isinstance(board, bool) or not str(board).isdigit()):
            problems.append(f"{key}.board = {board!r}: not a board id. Fix: use the number in the board's URL, e.g. 12")
        auth = opts.get("auth", "basic" if cfg.user else "pat")
        if auth not in ("basic", "pat"):
            problems.append(f'{key}.auth = {auth!r}: unknown. Fix: use "basic" (Cloud email + API token) or "pat"')
        if auth == "basic" and not cfg.user:
            problems.append(
                f'trackers (name "{cfg.name}").user: missing for basic auth. '
                'Fix: set user = "<the bot account\'s email>", or options = { auth = "pat" } for a Data Center token'
            )
        version = str(opts.get("api_version", "2" if auth == "pat" else "3"))
        if version not in ("2", "3"):
            problems.append(f'{key}.api_version = {version!r}: unsupported. Fix: use "3" (Cloud) or "2" (Data Center)')
        ints: dict[str, int] = {}
        for name, default, low, high in (("overlap_minutes", 2, 1, 60), ("page_size", 100, 1, 100)):
            value = opts.get(name, default)
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                problems.append(f"{key}.{name} = {value!r}: out of range. Fix: use a whole number from {low} to {high}")
            else:
                ints[name] = value
        timeout = opts.get("timeout", 30.0)
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
            problems.append(f"{key}.timeout = {timeout!r}: not a positive number of seconds. Fix: e.g. timeout = 30")
        project = opts.get("project")
        if project is not None and not isinstance(project, str):
            problems.append(f'{key}.project = {project!r}: not a project key. Fix: e.g. project = "PAY"')
        if not cfg.token_env:
            problems.append(
                f'trackers (name "{cfg.name}").token_env: missing. '
                "Fix: set token_env to the NAME of the environment variable holding the Jira API token"
            )
        if problems:
            raise ConfigError(problems)
        return cls(
            board=int(board) if board is not None else None,
            pat=auth == "pat",
            api_version=version,
            overlap_minutes=ints["overlap_minutes"],
            page_size=ints["page_size"],
            project=project,
            timeout=float(timeout),
        )
