"""kind -> connector class, imported only when a configuration uses that kind.

Importing lazily keeps the core free of every client library (jira, gitlab, github, httpx-GraphQL) until a tracker
of that kind is configured. A third party can ship its own connector as a package that declares an entry point in
the groups `tracker_bridge.trackers` or `tracker_bridge.code_hosts`.
"""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points
from typing import Any

from tracker_bridge.config import RepoConfig, Settings, TrackerConfig
from tracker_bridge.protocols import CodeHost, Tracker

TRACKERS: dict[str, str] = {
    "local": "tracker_bridge_connectors.local:LocalTracker",
    "jira": "tracker_bridge_connectors.jira:JiraTracker",
    "github": "tracker_bridge_connectors.github_projects:GitHubProjectsTracker",
    "gitlab": "tracker_bridge_connectors.gitlab:GitLabTracker",
    "linear": "tracker_bridge_connectors.linear:LinearTracker",
}

CODE_HOSTS: dict[str, str] = {
    "local": "tracker_bridge_connectors.local_git:LocalGitHost",
    "github": "tracker_bridge_connectors.github:GitHubHost",
    "gitlab": "tracker_bridge_connectors.gitlab:GitLabHost",
}


class ConnectorUnavailable(Exception):
    """No connector is installed for a kind."""


def _load(table: dict[str, str], group: str, kind: str) -> Any:
    target = table.get(kind)
    if target is None:
        found = [ep for ep in entry_points(group=group) if ep.name == kind]
        if not found:
            raise ConnectorUnavailable(f"no connector for kind {kind!r} (known: {', '.join(sorted(table))})")
        return found[0].load()
    module_name, _, attr = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise ConnectorUnavailable(f"the connector for kind {kind!r} cannot be imported: {exc}") from exc
    return getattr(module, attr)


def create_tracker(config: TrackerConfig, settings: Settings) -> Tracker:
    cls = _load(TRACKERS, "tracker_bridge.trackers", config.kind)
    tracker: Tracker = cls.from_config(config, settings)
    return tracker


def create_code_host(config: RepoConfig, settings: Settings) -> CodeHost:
    cls = _load(CODE_HOSTS, "tracker_bridge.code_hosts", config.host)
    host: CodeHost = cls.from_config(config, settings)
    return host
