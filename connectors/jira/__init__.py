"""Jira Cloud / Data Center connector: `kind = "jira"` in [[trackers]]. See docs/jira.md."""

from tracker_bridge_connectors.jira.tracker import JiraTracker

__all__ = ["JiraTracker"]
