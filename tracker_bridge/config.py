"""Configuration: one TOML file read with pydantic-settings, overridable by TRACKER_BRIDGE__SECTION__KEY.

Every mistake becomes a `ConfigError` whose lines name the key, the value found and the fix, so the CLI can exit 2
with a message a person can act on. Paths are relative to the configuration file, not to the working directory.
"""

from __future__ import annotations

import difflib
import os
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

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
    log_format: Literal["console", "json"] = "console"


class WebConfig(_Section):
    enabled: bool = Field(default=False, description="serve the dashboard, JSON API, metrics and webhooks")
    listen: str = Field(default="127.0.0.1:8787", description="host:port to listen on")
    webhook_secret_env: str = Field(
        default="TRACKER_BRIDGE_WEBHOOK_SECRET", description="environment variable holding the webhook secret"
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


class StagesConfig(_Section):
    queued: str = "Agent"
    running: str = "In Progress"
    review: str = "In Review"
    done: str = "Done"
    declined: str = "Needs Refinement"
    failed: str = "Needs Human"

    def as_mapping(self) -> dict[str, str]:
        return dict(self.model_dump())


class ScoringConfig(_Section):
    threshold: float = Field(default=0.6, ge=0.0, le=1.0)
    repo_analysis: bool = Field(default=True, description="look at the repository for tests of the area")
    llm: bool = Field(default=False, description="blend in an LLM judge on the Anthropic API")
    llm_model: str = "claude-sonnet-4-5"
    llm_weight: float = Field(default=0.25, ge=0.0, le=1.0)
    api_key_env: str = "ANTHROPIC_API_KEY"
    base_url: str | None = None


class ModelPrice(_Section):
    """US dollars per million tokens."""

    input: float = Field(ge=0)
    output: float = Field(ge=0)
    cache_write: float | None = Field(default=None, ge=0)
    cache_read: float | None = Field(default=None, ge=0)


def _default_prices() -> dict[str, ModelPrice]:
    # Anthropic's published list prices (USD per million tokens); override in [agent.prices] when they change.
    return {
        "claude-sonnet-4-5": ModelPrice(input=3.0, output=15.0, cache_write=3.75, cache_read=0.30),
        "claude-opus-4-1": ModelPrice(input=15.0, output=75.0, cache_write=18.75, cache_read=1.50),
        "claude-haiku-4-5": ModelPrice(input=1.0, output=5.0, cache_write=1.25, cache_read=0.10),
    }


class AgentConfig(_Section):
    backend: BackendKind = "claude-code"
    model: str = "claude-sonnet-4-5"
    max_turns: int = Field(default=40, ge=1)
    max_tokens: int | None = Field(default=None, ge=1, description="input+output tokens per run; none: no cap")
    max_cost_usd: float = Field(default=3.0, gt=0)
    timeout: float = Field(default=1800, gt=0, description="seconds of wall time per run")
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
    forbidden_paths: list[str] = Field(default_factory=lambda: [".github/workflows/**", ".gitlab-ci.yml"])
    max_diff_lines: int = Field(default=2000, ge=1)
    prices: dict[str, ModelPrice] = Field(default_factory=_default_prices)

    @model_validator(mode="after")
    def _command_backend_needs_command(self) -> AgentConfig:
        if self.backend == "command" and not (self.command or "").strip():
            raise ValueError("backend = 'command' needs `command = \"...\"` in [agent]")
        return self


class TrackerConfig(_Section):
    name: str
    kind: TrackerKind
    url: str = Field(description="API base URL, or the tickets folder for kind = 'local'")
    user: str | None = None
    token_env: str | None = Field(default=None, description="name of the environment variable holding the token")
    query: str = Field(default="", description="JQL, Linear team key, GitHub org/number, GitLab project path")
    repo: str | None = Field(default=None, description="name of the [[repos]] entry its tickets change")
    options: dict[str, Any] = Field(default_factory=dict, description="connector-specific settings")

    def token(self) -> str | None:
        return os.environ.get(self.token_env) if self.token_env else None


class RepoConfig(_Section):
    name: str
    host: HostKind
    url: str
    api_url: str | None = None
    token_env: str | None = None
    base_branch: str = "main"
    test_command: str = ""
    options: dict[str, Any] = Field(default_factory=dict)

    def token(self) -> str | None:
        return os.environ.get(self.token_env) if self.token_env else None


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

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The TOML file arrives as init values; environment variables override it.
        return (env_settings, init_settings)

    @field_validator("trackers")
    @classmethod
    def _unique_tracker_names(cls, trackers: list[TrackerConfig]) -> list[TrackerConfig]:
        names = [t.name for t in trackers]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"tracker names must be unique; {', '.join(dupes)} appears more than once")
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
        return str(parts[0])
    return f"[{parts[0]}] " + ".".join(str(p) for p in parts[1:])


def _model_for(parent: tuple[int | str, ...]) -> type[BaseModel] | None:
    """The model whose keys live at `parent` (the location of the table holding an unknown key)."""
    sections: dict[str, type[BaseModel]] = {
        "bridge": BridgeConfig,
        "trigger": TriggerConfig,
        "stages": StagesConfig,
        "scoring": ScoringConfig,
        "agent": AgentConfig,
        "trackers": TrackerConfig,
        "repos": RepoConfig,
        "web": WebConfig,
    }
    if not parent:
        return Settings
    return sections.get(str(parent[0]))


def _describe(err: Any, data: dict[str, Any]) -> str:
    loc = tuple(err["loc"])
    key = _key_name(loc, data)
    kind = err["type"]
    if kind == "extra_forbidden":
        model = _model_for(loc[:-1])
        known = sorted(model.model_fields) if model else []
        known = [k for k in known if k != "base_dir"]
        close = difflib.get_close_matches(str(loc[-1]), known, n=1)
        hint = f"did you mean '{close[0]}'?" if close else f"known keys here: {', '.join(known)}"
        return f"{key}: unknown key. Fix: remove it or correct the spelling; {hint}"
    value = err.get("input")
    shown = "" if kind == "missing" else f" = {value!r}"
    msg = err["msg"].removeprefix("Value error, ")
    if kind == "literal_error":
        fix = "use " + msg.removeprefix("Input should be ")
    else:
        fix = _FIXES.get(kind, "correct the value")
    return f"{key}{shown}: {msg}. Fix: {fix}"


def load_settings(path: Path | str | None = None, *, check_secrets: bool = True) -> Settings:
    """Read, validate and resolve a configuration file. Raises ConfigError with every problem found."""
    file = Path(path) if path else Path.cwd() / DEFAULT_CONFIG_NAME
    if not file.is_file():
        hint = "pass -c FILE, or copy config/tracker-bridge.example.toml to ./tracker-bridge.toml"
        raise ConfigError([f"configuration file {file} does not exist. Fix: {hint}"])
    try:
        data = tomllib.loads(file.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{file}: not valid TOML ({exc}). Fix: correct the syntax at that line"]) from exc
    except OSError as exc:
        raise ConfigError([f"{file}: cannot be read ({exc.strerror}). Fix: check the path and permissions"]) from exc
    return settings_from_dict(data, base_dir=file.resolve().parent, check_secrets=check_secrets)


def settings_from_dict(data: dict[str, Any], *, base_dir: Path, check_secrets: bool = True) -> Settings:
    try:
        settings = Settings(**data, base_dir=base_dir)
    except ValidationError as exc:
        raise ConfigError([_describe(e, data) for e in exc.errors()]) from exc
    problems = cross_check(settings, check_secrets=check_secrets)
    if problems:
        raise ConfigError(problems)
    return settings


def cross_check(settings: Settings, *, check_secrets: bool = True) -> list[str]:
    """Problems no single key shows: references between entries, secrets, local paths."""
    problems: list[str] = []
    repo_names = {r.name for r in settings.repos}
    if not settings.trackers:
        problems.append("trackers: no [[trackers]] entry. Fix: add one (see config/tracker-bridge.example.toml)")
    for i, t in enumerate(settings.trackers):
        key = f'trackers[{i}] (name "{t.name}")'
        if t.repo is not None and t.repo not in repo_names:
            known = ", ".join(sorted(repo_names)) or "none defined"
            problems.append(
                f"{key}.repo = {t.repo!r}: no [[repos]] entry has that name. "
                f"Fix: use one of: {known}, or add a [[repos]] entry named {t.repo!r}"
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
    if check_secrets and settings.agent.backend == "anthropic" and not os.environ.get(settings.agent.api_key_env):
        problems.append(
            f"[agent] api_key_env = {settings.agent.api_key_env!r}: that environment variable is not set. "
            f"Fix: export {settings.agent.api_key_env}=<your Anthropic API key>"
        )
    return problems


def _secret_problems(key: str, token_env: str | None, *, required: bool) -> list[str]:
    if not token_env:
        return (
            [f"{key}.token_env: missing. Fix: set token_env to the NAME of the environment variable holding the token"]
            if required
            else []
        )
    if not os.environ.get(token_env):
        return [
            f"{key}.token_env = {token_env!r}: the environment variable {token_env} is not set. "
            f"Fix: export {token_env}=<token> before starting tracker-bridge"
        ]
    return []
