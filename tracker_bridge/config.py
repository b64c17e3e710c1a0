"""Configuration: one TOML file read with pydantic-settings, overridable by TRACKER_BRIDGE__SECTION__KEY.

Every mistake becomes a `ConfigError` whose lines name the key, the value found and the fix, so the CLI can exit 2
with a message a person can act on. Paths are relative to the configuration file, not to the working directory.
"""

from __future__ import annotations

import copy
import difflib
import json
import os
import tomllib
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from tracker_bridge import claude_models, secrets
from tracker_bridge.protocols import Problem

DEFAULT_CONFIG_NAME = "tracker-bridge.toml"
ENV_PREFIX = "TRACKER_BRIDGE__"

TrackerKind = Literal["jira", "linear", "github", "gitlab", "local"]
HostKind = Literal["github", "gitlab", "local"]
BackendKind = Literal["claude-code", "anthropic", "command"]


class ConfigError(Exception):
    """A configuration that cannot be used. `problems` holds one line per mistake: key, value, fix."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class BridgeConfig(_Section):
    state: str = Field(default="sqlite:///tracker-bridge.db", description="SQLAlchemy URL of the state store")
    state_dir: str = Field(default=".tracker-bridge", description="folder for workspaces and run traces")
    poll_interval: float = Field(default=30, gt=0, description="seconds between polls")
    max_concurrent_runs: int = Field(default=2, ge=1, description="agent runs at the same time")
    retry_attempts: int = Field(
        default=8, ge=1, description="tries of a step that meets a transient remote error (clone, push) before it fails"
    )
    retry_backoff: float = Field(
        default=30, ge=0, description="seconds before the second retry; doubled for each later one (at most 30 min)"
    )
    cycle_deadline: float = Field(
        default=120, gt=0, description="seconds a cycle may spend; work left over waits for the next cycle"
    )
    log_format: Literal["console", "json"] = "console"
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        default="info", description="least severe log line written"
    )
    lease_seconds: float = Field(default=30, ge=2, description="one daemon per state store: its lease, renewed")
    shutdown_grace: float = Field(default=60, ge=0, description="seconds SIGTERM waits for runs before interrupting")
    keep_workspaces: float = Field(default=7, ge=0, description="days a failed ticket's workspace is kept")
    max_open_reviews: int | None = Field(
        default=None, ge=1, description="per repository: agent pull requests awaiting review before dispatch waits"
    )
    request_review: bool = Field(
        default=True,
        description="ask the person who triggered a ticket to review its new pull request (where the host can)",
    )
    # Tracker user -> code-host username for review requests, where the two differ (a Jira or Linear user is not a
    # GitHub login). Matched like names everywhere (case and surrounding spaces ignored); a user not listed is asked
    # under the tracker's name.
    reviewers: dict[str, str] = Field(
        default_factory=dict, description="tracker user -> code-host username to ask for review"
    )
    queue: str = Field(
        default="local",
        description='where agent runs execute: "local" (this process\'s pool) or the PostgreSQL URL of a procrastinate '
        "queue that `tracker-bridge worker` processes take them from",
    )

    @field_validator("queue")
    @classmethod
    def _queue_url(cls, value: str) -> str:
        if value == "local" or value.split("://", 1)[0] in ("postgresql", "postgresql+psycopg", "postgres"):
            return value
        raise ValueError(
            'queue must be "local" or a PostgreSQL URL (postgresql+psycopg://user@host/db, usually the state '
            "store's own database)"
        )


class WebConfig(_Section):
    enabled: bool = Field(default=False, description="serve the dashboard, JSON API, metrics and webhooks")
    listen: str = Field(default="127.0.0.1:8787", description="host:port to listen on")
    webhook_secret_env: str = Field(
        default="TRACKER_BRIDGE_WEBHOOK_SECRET", description="environment variable holding the webhook secret"
    )
    webhook_max_bytes: int = Field(
        default=1024 * 1024, ge=1024, description="largest webhook body accepted (413 beyond it, read no further)"
    )
    api_token_env: str = Field(
        default="TRACKER_BRIDGE_API_TOKEN",
        description="environment variable holding the bearer token for the API, the controls and (when listen is "
        "not loopback) the pages",
    )

    @field_validator("listen")
    @classmethod
    def _host_port(cls, value: str) -> str:
        host, sep, port = value.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError("listen must be host:port, e.g. 127.0.0.1:8787 or [::1]:8787")
        if ":" in host and not (host.startswith("[") and host.endswith("]")):
            raise ValueError(f"an IPv6 address needs brackets: [{host}]:{port}")
        return value

    @property
    def host(self) -> str:
        """The address to bind: an IPv6 address without its brackets."""
        return self.listen.rpartition(":")[0].removeprefix("[").removesuffix("]")

    @property
    def port(self) -> int:
        return int(self.listen.rpartition(":")[2])


class TriggerConfig(_Section):
    label: str = "agent-ready"
    column: str = "Agent"
    allowed_actors: list[str] = Field(default_factory=list, description="empty: anyone who can label")
    mention: str = Field(
        default="@tracker-bridge", min_length=1, description="a comment mentioning it asks the agent for a change"
    )
    # The approval workflow (issue 15): a person approves a mid-score ticket's plan with this label, or with a
    # comment holding `approve_mention` and the word "approve" (on trackers that expose comments with authors).
    approve_label: str = Field(default="agent-approved", min_length=1)
    approve_mention: str = Field(default="@tracker-bridge", min_length=1)


class StagesConfig(_Section):
    queued: str = "Agent"
    running: str = "In Progress"
    review: str = "In Review"
    done: str = "Done"
    declined: str = "Needs Refinement"
    failed: str = "Needs Human"
    # Where a planned ticket waits for a person's approval (issue 15); unset: the card stays where it is.
    awaiting_approval: str | None = None

    def as_mapping(self) -> dict[str, str]:
        """The configured columns by stage (an unset optional column is left out)."""
        return {k: v for k, v in self.model_dump().items() if v is not None}


class ScoringConfig(_Section):
    threshold: float = Field(default=0.6, ge=0.0, le=1.0)
    repo_analysis: bool = Field(default=True, description="look at the repository for tests of the area")
    llm: bool = Field(default=False, description="blend in an LLM judge on the Anthropic API")
    llm_model: str = claude_models.DEFAULT_MODEL
    llm_weight: float = Field(default=0.25, ge=0.0, le=1.0)
    api_key_env: str = "ANTHROPIC_API_KEY"
    base_url: str | None = None
    # The approval workflow of mid-score tickets (issue 15): a score in [approval_threshold, threshold) is not
    # declined but planned (a read-only plan run under plan_max_cost_usd) and run once a person approves the plan.
    # At or above `threshold` the feature is off.
    approval_threshold: float = Field(
        default=0.55, ge=0.0, le=1.0, description="scores between this and threshold are planned and need approval"
    )
    plan_max_cost_usd: float = Field(default=0.50, gt=0, description="the dollar cap of one plan run")
    llm_cache: bool = Field(default=True, description="cache the LLM judge's answer by ticket content")
    # What the score serves (docs/scoring.md): clarity's share of the two fitted factors. Unset: the weights
    # table's own (0.1, ranking by the chance the agent finishes); 0.8 or more: declining vague tickets first.
    clarity_share: float | None = Field(
        default=None, gt=0.0, le=1.0, description="clarity's share of the fitted factors (unset: the table's)"
    )
    # Where `tracker-bridge calibrate` wrote refitted weights; set from [bridge] state_dir, not a key of the file.
    _weights_dir: Path | None = PrivateAttr(default=None)

    @property
    def weights_dir(self) -> Path | None:
        return self._weights_dir


class ModelPrice(_Section):
    """US dollars per million tokens."""

    input: float = Field(ge=0)
    output: float = Field(ge=0)
    cache_write: float | None = Field(default=None, ge=0)
    cache_read: float | None = Field(default=None, ge=0)


def _default_prices() -> dict[str, ModelPrice]:
    # Anthropic's list prices for the current models, with their source and date: tracker_bridge/claude_models.py.
    # Override one in [agent.prices.<model>] when it changes.
    return {name: ModelPrice(**asdict(price)) for name, price in claude_models.PRICES.items()}


class AgentConfig(_Section):
    backend: BackendKind = "claude-code"
    model: str = claude_models.DEFAULT_MODEL
    max_turns: int = Field(default=40, ge=1)
    max_tokens: int | None = Field(default=None, ge=1, description="input+output tokens per run; none: no cap")
    max_cost_usd: float = Field(default=3.0, gt=0)
    timeout: float = Field(default=1800, gt=0, description="seconds of wall time per run")
    stall_timeout: float = Field(
        default=300, gt=0, description="seconds without any event from the agent before it is killed and retried"
    )
    max_attempts: int = Field(
        default=3, ge=1, description="agent attempts per run when the model API fails transiently or the agent stalls"
    )
    daily_budget_usd: float = Field(default=50.0, gt=0)
    max_iterations: int = Field(default=2, ge=0, description="extra runs after review feedback or failing CI")
    test_retries: int = Field(default=1, ge=0, description="agent turns given the failing test output")
    command: str | None = Field(default=None, description="shell command for backend = 'command'")
    claude_path: str = "claude"
    allowed_tools: list[str] = Field(default_factory=lambda: ["Read", "Edit", "Write", "Glob", "Grep", "Bash"])
    api_key_env: str = "ANTHROPIC_API_KEY"
    base_url: str | None = Field(default=None, description="Anthropic API base URL; none: the SDK's default")
    prompt_template: str | None = Field(default=None, description="path of a prompt template; none: built-in")
    sandbox: Literal["auto", "bubblewrap", "none"] = "auto"
    allow_unsandboxed: bool = Field(
        default=False, description="let sandbox = 'none' run the agent as the daemon's user, unconfined"
    )
    pass_env: list[str] = Field(
        default_factory=list, description="environment variables handed to the agent (e.g. OPENAI_API_KEY)"
    )
    forbidden_paths: list[str] = Field(default_factory=lambda: [".github/workflows/**", ".gitlab-ci.yml"])
    max_diff_lines: int = Field(default=2000, ge=1)
    prices: dict[str, ModelPrice] = Field(default_factory=_default_prices)

    @model_validator(mode="after")
    def _command_backend_needs_command(self) -> AgentConfig:
        if self.backend == "command" and not (self.command or "").strip():
            raise ValueError(
                "backend = 'command' needs `command = \"...\"` in [agent]. Fix: add the command that runs your "
                "agent, or choose another backend"
            )
        return self

    @model_validator(mode="after")
    def _unsandboxed_only_on_purpose(self) -> AgentConfig:
        if self.sandbox == "none" and not self.allow_unsandboxed:
            raise ValueError(
                'sandbox = "none" runs the agent unconfined: it can read the state folder, the configuration and '
                'the daemon\'s files. Fix: use sandbox = "auto" or "bubblewrap", or, to accept that, set '
                "allow_unsandboxed = true in [agent]"
            )
        return self


class TrackerConfig(_Section):
    name: str
    kind: TrackerKind
    url: str = Field(description="API base URL, or the tickets folder for kind = 'local'")
    user: str | None = None
    token_env: str | None = Field(default=None, description="name of the environment variable holding the token")
    query: str = Field(default="", description="JQL, Linear team key, GitHub org/number, GitLab project path")
    repo: str | list[str] | None = Field(
        default=None,
        description="name of the [[repos]] entry its tickets change, or a list of them (docs/repositories.md)",
    )
    options: dict[str, Any] = Field(default_factory=dict, description="connector-specific settings")

    def token(self) -> str | None:
        return secrets.get(self.token_env)

    @property
    def repo_names(self) -> tuple[str, ...]:
        """The tracker's repositories, the default one first (`repo` as one name or a list)."""
        if self.repo is None:
            return ()
        return (self.repo,) if isinstance(self.repo, str) else tuple(self.repo)


class RepoConfig(_Section):
    name: str
    host: HostKind
    url: str
    api_url: str | None = None
    token_env: str | None = None
    base_branch: str = "main"
    test_command: str = ""
    # Run in each fresh workspace, sandboxed, with the network, before the agent (docs/repositories.md).
    setup_command: str = Field(default="", description="installs what the tests need, e.g. `uv sync`")
    setup_timeout: float = Field(default=900, gt=0, description="seconds for setup_command and setup.sh together")
    teardown_command: str = Field(default="", description="run in the workspace before it is removed")
    options: dict[str, Any] = Field(default_factory=dict)

    def token(self) -> str | None:
        return secrets.get(self.token_env)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_nested_delimiter="__", extra="forbid", case_sensitive=False
    )

    bridge: BridgeConfig = Field(default_factory=BridgeConfig)
    trigger: TriggerConfig = Field(default_factory=TriggerConfig)
    stages: StagesConfig = Field(default_factory=StagesConfig)
    scoring: ScoringConfig = Field(default_factory=ScoringConfig)
    agent: AgentConfig = Field(default_factory=AgentConfig)
    trackers: list[TrackerConfig] = Field(default_factory=list)
    repos: list[RepoConfig] = Field(default_factory=list)
    web: WebConfig = Field(default_factory=WebConfig)

    # Where the file was; paths in it are relative to this folder. Not a key of the file.
    base_dir: Path = Field(default_factory=Path.cwd, exclude=True)
    # The configuration file itself (hidden from the agent's sandbox). Not a key of the file.
    config_file: Path | None = Field(default=None, exclude=True)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The TOML file arrives as init values, with the environment's overrides already applied by
        # `apply_env_overrides` (which also reaches [[trackers]]/[[repos]] entries by name and rejects unknown
        # sections, which pydantic-settings' own environment source cannot do).
        return (init_settings,)

    @model_validator(mode="after")
    def _scoring_weights_dir(self) -> Settings:
        # The scorer reads calibrated weights from the state folder (tracker-bridge calibrate writes them there).
        self.scoring._weights_dir = self.state_dir
        return self

    @field_validator("trackers")
    @classmethod
    def _unique_tracker_names(cls, trackers: list[TrackerConfig]) -> list[TrackerConfig]:
        names = [t.name for t in trackers]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(
                f"tracker names must be unique; {', '.join(dupes)} appears more than once. "
                "Fix: give each [[trackers]] entry its own name"
            )
        return trackers

    # --- derived values -------------------------------------------------------------------------------------------

    def path(self, value: str) -> Path:
        """A path from the file, resolved against the file's folder."""
        p = Path(value).expanduser()
        return p if p.is_absolute() else (self.base_dir / p).resolve()

    @property
    def state_url(self) -> str:
        url = self.bridge.state
        prefix = "sqlite:///"
        if url.startswith(prefix) and url != "sqlite:///:memory:":
            return prefix + str(self.path(url[len(prefix) :]))
        return url

    @property
    def state_dir(self) -> Path:
        return self.path(self.bridge.state_dir)

    def tracker(self, name: str) -> TrackerConfig:
        for t in self.trackers:
            if t.name == name:
                return t
        raise KeyError(name)

    def repo(self, name: str) -> RepoConfig:
        for r in self.repos:
            if r.name == name:
                return r
        raise KeyError(name)


# --- loading ------------------------------------------------------------------------------------------------------

_FIXES = {
    "int_parsing": "use a whole number",
    "int_type": "use a whole number",
    "float_parsing": "use a number",
    "float_type": "use a number",
    "bool_parsing": "use true or false",
    "bool_type": "use true or false",
    "string_type": 'use a quoted string, e.g. "value"',
    "list_type": 'use a list, e.g. ["a", "b"]',
    "greater_than": "use a larger number",
    "greater_than_equal": "use a larger number",
    "less_than_equal": "use a smaller number",
    "missing": "add this key",
}


def _key_name(loc: tuple[int | str, ...], data: dict[str, Any]) -> str:
    """('trackers', 0, 'kind') -> 'trackers[0].kind (name "pay")'; ('agent', 'max_turns') -> '[agent] max_turns'."""
    parts = [p for p in loc if p not in ("function-after", "function-before")]
    if not parts:
        return "(file)"
    if parts[0] in ("trackers", "repos") and len(parts) >= 2 and isinstance(parts[1], int):
        section, idx = str(parts[0]), parts[1]
        entries = data.get(section) or []
        name = entries[idx].get("name") if idx < len(entries) and isinstance(entries[idx], dict) else None
        label = f"{section}[{idx}]" + (f' (name "{name}")' if name else "")
        rest = ".".join(str(p) for p in parts[2:])
        return f"{label}.{rest}" if rest else label
    if len(parts) == 1:
        is_table = parts[0] in Settings.model_fields and parts[0] not in ("trackers", "repos")
        return f"[{parts[0]}]" if is_table else str(parts[0])
    return f"[{parts[0]}] " + ".".join(str(p) for p in parts[1:])


def _model_at(loc: tuple[int | str, ...]) -> type[BaseModel] | None:
    """The model whose keys live at `loc`, found by walking the field types: ('agent', 'prices', 'm') -> ModelPrice."""
    current: Any = Settings
    for part in loc:
        if isinstance(current, type) and issubclass(current, BaseModel):
            field = current.model_fields.get(str(part))
            if field is None:
                return None
            current = field.annotation
            continue
        args = [a for a in get_args(current) if a is not type(None)]
        if get_origin(current) in (list, dict) and args:
            current = args[-1]  # the item type; `part` is the index or the table's key
            continue
        return None
    models = [current, *get_args(current)]
    return next((m for m in models if isinstance(m, type) and issubclass(m, BaseModel)), None)


def _describe(err: Any, data: dict[str, Any], env_keys: dict[tuple[Any, ...], str]) -> str:
    loc = tuple(err["loc"])
    key = _key_name(loc, data)
    source = next((f" (from {name})" for path, name in env_keys.items() if loc[: len(path)] == path), "")
    kind = err["type"]
    if kind == "extra_forbidden":
        model = _model_at(loc[:-1])
        known = sorted(model.model_fields) if model else []
        known = [k for k in known if k not in ("base_dir", "config_file")]
        close = difflib.get_close_matches(str(loc[-1]), known, n=1)
        hint = f"did you mean '{close[0]}'?" if close else f"known keys here: {', '.join(known)}"
        return f"{key}{source}: unknown key. Fix: remove it or correct the spelling; {hint}"
    value = err.get("input")
    msg = err["msg"].removeprefix("Value error, ")
    if isinstance(value, dict | list) and kind == "value_error":
        # A rule across several keys of a section: the message names them; the section's dump would only hide it.
        message, _, fix = msg.partition(". Fix: ")
        return f"{key}{source}: {message}. Fix: {fix or 'correct the keys named above'}"
    too_long = isinstance(value, dict | list) and len(repr(value)) > 80  # a whole table says less than its key
    shown = "" if kind == "missing" or too_long else f" = {value!r}"
    if kind == "literal_error":
        fix = "use " + msg.removeprefix("Input should be ")
    else:
        fix = _FIXES.get(kind, "correct the value")
    return f"{key}{shown}{source}: {msg}. Fix: {fix}"


def load_settings(path: Path | str | None = None, *, check_secrets: bool = True) -> Settings:
    """Read, validate and resolve a configuration file. Raises ConfigError with every problem found."""
    file = Path(path) if path else Path.cwd() / DEFAULT_CONFIG_NAME
    if file.is_dir():
        inside = file / DEFAULT_CONFIG_NAME
        hint = f"pass -c {inside}" if inside.is_file() else "pass the configuration FILE to -c, not its folder"
        raise ConfigError([f"configuration file {file} is a folder. Fix: {hint}"])
    if not file.is_file():
        hint = "pass -c FILE, or copy config/tracker-bridge.example.toml to ./tracker-bridge.toml"
        raise ConfigError([f"configuration file {file} does not exist. Fix: {hint}"])
    try:
        data = tomllib.loads(file.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{file}: not valid TOML ({exc}). Fix: correct the syntax at that line"]) from exc
    except UnicodeDecodeError as exc:
        raise ConfigError([f"{file}: not valid UTF-8 (byte {exc.start}). Fix: save it as UTF-8"]) from exc
    except OSError as exc:
        raise ConfigError([f"{file}: cannot be read ({exc.strerror}). Fix: check the path and permissions"]) from exc
    return settings_from_dict(
        data, base_dir=file.resolve().parent, check_secrets=check_secrets, config_file=file.resolve()
    )


def settings_from_dict(
    data: dict[str, Any],
    *,
    base_dir: Path,
    check_secrets: bool = True,
    environ: Mapping[str, str] | None = None,
    config_file: Path | None = None,
) -> Settings:
    """Validate `data` (a parsed file) with the environment's overrides applied (`environ`: os.environ)."""
    data, env_keys, env_problems = apply_env_overrides(data, os.environ if environ is None else environ)
    if env_problems:
        raise ConfigError(env_problems)
    try:
        settings = Settings(**data, base_dir=base_dir, config_file=config_file)
    except ValidationError as exc:
        raise ConfigError([_describe(e, data, env_keys) for e in exc.errors()]) from exc
    problems = cross_check(settings, check_secrets=check_secrets)
    if problems:
        raise ConfigError(problems)
    return settings


# --- environment overrides ----------------------------------------------------------------------------------------

_ENTRY_SECTIONS = ("trackers", "repos")


def _env_value(raw: str) -> Any:
    """A list or table is written as JSON (`["a", "b"]`); anything else is the string, coerced by the model."""
    text = raw.strip()
    if text[:1] in "[{":
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            return raw
    return raw


def apply_env_overrides(
    data: dict[str, Any], environ: Mapping[str, str]
) -> tuple[dict[str, Any], dict[tuple[Any, ...], str], list[str]]:
    """`data` with every TRACKER_BRIDGE__SECTION__KEY applied; entries of [[trackers]] and [[repos]] are reached
    by their name: TRACKER_BRIDGE__TRACKERS__PAY__URL. Returns (data, {location: variable}, problems)."""
    data = copy.deepcopy(data)
    env_keys: dict[tuple[Any, ...], str] = {}
    problems: list[str] = []
    sections = [k for k in Settings.model_fields if k != "base_dir"]
    for name in sorted(environ):
        if not name.upper().startswith(ENV_PREFIX):
            continue
        parts = [p.lower() for p in name[len(ENV_PREFIX) :].split("__")]
        section = parts[0]
        if section not in sections:
            close = difflib.get_close_matches(section, sections, n=1)
            hint = f"did you mean TRACKER_BRIDGE__{close[0].upper()}__...?" if close else ""
            problems.append(
                f"{name}: no configuration section [{section}]. Fix: unset it or correct the name "
                f"(sections: {', '.join(sections)}) {hint}".rstrip()
            )
            continue
        if section in _ENTRY_SECTIONS:
            entries = data.get(section)
            entries = entries if isinstance(entries, list) else []
            if len(parts) < 3:
                problems.append(
                    f"{name}: names no entry and key. Fix: use {ENV_PREFIX}{section.upper()}__<name>__<KEY>, "
                    f"e.g. {ENV_PREFIX}{section.upper()}__PAY__URL"
                )
                continue
            matches = [
                i for i, e in enumerate(entries) if isinstance(e, dict) and str(e.get("name", "")).lower() == parts[1]
            ]
            if len(matches) != 1:
                known = ", ".join(str(e.get("name")) for e in entries if isinstance(e, dict)) or "none"
                problems.append(
                    f"{name}: no [[{section}]] entry named {parts[1]!r}. Fix: use the name of an entry "
                    f"(defined: {known})"
                )
                continue
            target: dict[str, Any] = entries[matches[0]]
            path: tuple[Any, ...] = (section, matches[0], *parts[2:])
            keys = parts[2:]
        else:
            if len(parts) < 2 or not all(parts[1:]):
                problems.append(f"{name}: names no key. Fix: use {ENV_PREFIX}{section.upper()}__<KEY>")
                continue
            section_data = data.setdefault(section, {})
            if not isinstance(section_data, dict):
                problems.append(f"{name}: [{section}] in the file is not a table. Fix: correct the file")
                continue
            target, path, keys = section_data, (section, *parts[1:]), parts[1:]
        for key in keys[:-1]:
            nested = target.setdefault(key, {})
            if not isinstance(nested, dict):
                nested = target[key] = {}
            target = nested
        target[keys[-1]] = _env_value(environ[name])
        env_keys[path] = name
    return data, env_keys, problems


# --- the state store URL ------------------------------------------------------------------------------------------

def _shown_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not parseable: show it as written (it cannot hold a parsed password either)
        return url


def state_url_problems(settings: Settings) -> list[str]:
    """A state URL that cannot be used (not a URL, an unsupported database, a missing driver or folder), named
    before anything opens it. One check, shared with the CLI: tracker_bridge.state_url."""
    from tracker_bridge.state_url import state_url_problems as problems

    return problems(settings.state_url)


def state_problem(settings: Settings, exc: BaseException) -> Problem:
    """Opening the state store failed although its URL looked right (server down, wrong credentials...)."""
    from tracker_bridge.schema import SchemaTooNew

    if isinstance(exc, SchemaTooNew):
        return Problem("[bridge] state", f"{_shown_url(settings.state_url)}: {exc}", SchemaTooNew.fix)
    return Problem(
        "[bridge] state",
        f"cannot open {_shown_url(settings.state_url)}: {' '.join(str(exc).split())[:300]}",
        "check the URL, that the database server is running and reachable, and the credentials",
    )


def cross_check(settings: Settings, *, check_secrets: bool = True) -> list[str]:
    """Problems no single key shows: references between entries, secrets, local paths."""
    problems: list[str] = state_url_problems(settings)
    repo_names = {r.name for r in settings.repos}
    if not settings.trackers:
        problems.append("trackers: no [[trackers]] entry. Fix: add one (see config/tracker-bridge.example.toml)")
    for i, t in enumerate(settings.trackers):
        key = f'trackers[{i}] (name "{t.name}")'
        for name in t.repo_names:
            if name not in repo_names:
                known = ", ".join(sorted(repo_names)) or "none defined"
                problems.append(
                    f"{key}.repo = {t.repo!r}: no [[repos]] entry has the name {name!r}. "
                    f"Fix: use one of: {known}, or add a [[repos]] entry named {name!r}"
                )
        if t.kind == "local":
            folder = settings.path(t.url)
            if not folder.is_dir():
                problems.append(
                    f"{key}.url = {t.url!r}: the tickets folder {folder} does not exist. "
                    "Fix: create it or point url at a folder of <KEY>.md tickets"
                )
        elif check_secrets:
            problems.extend(_secret_problems(key, t.token_env, required=True))
    for i, r in enumerate(settings.repos):
        key = f'repos[{i}] (name "{r.name}")'
        if r.host == "local":
            repo_path = settings.path(r.url)
            if not (repo_path / ".git").exists() and not (repo_path / "HEAD").is_file():
                problems.append(
                    f"{key}.url = {r.url!r}: {repo_path} is not a readable git repository. "
                    "Fix: point url at a git repository on disk (git init it first)"
                )
        elif check_secrets:
            problems.extend(_secret_problems(key, r.token_env, required=True))
    problems.extend(_prompt_template_problems(settings))
    tokens = {t.token_env for t in settings.trackers} | {r.token_env for r in settings.repos}
    for name in settings.agent.pass_env:
        if name in tokens:
            problems.append(
                f"[agent] pass_env = {settings.agent.pass_env!r}: {name} is a tracker or code-host token_env; the "
                f"agent must never hold the daemon's tokens. Fix: remove {name!r} from pass_env"
            )
    if check_secrets and settings.agent.backend == "anthropic" and not secrets.get(settings.agent.api_key_env):
        problems.append(
            f"[agent] api_key_env = {settings.agent.api_key_env!r}: that environment variable is not set. "
            f"Fix: export {settings.agent.api_key_env}=<your Anthropic API key>"
        )
    return problems


def _prompt_template_problems(settings: Settings) -> list[str]:
    """The prompt template must exist and name only placeholders the prompt builder fills."""
    from tracker_bridge.agents.prompt import template_problem  # late: agents imports this module

    value = settings.agent.prompt_template
    if not value:
        return []
    key = f"[agent] prompt_template = {value!r}"
    try:
        text = settings.path(value).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        return [f"{key}: cannot read {settings.path(value)} ({reason}). Fix: point it at a readable Markdown file"]
    problem = template_problem(text, key)
    return [problem] if problem else []


def _secret_problems(key: str, token_env: str | None, *, required: bool) -> list[str]:
    if not token_env:
        return (
            [f"{key}.token_env: missing. Fix: set token_env to the NAME of the environment variable holding the token"]
            if required
            else []
        )
    if not secrets.get(token_env):
        return [
            f"{key}.token_env = {token_env!r}: the environment variable {token_env} is not set. "
            f"Fix: export {token_env}=<token> before starting tracker-bridge"
        ]
    return []
