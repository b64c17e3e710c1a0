"""Jira Cloud / Data Center connector: `kind = "jira"` in [[trackers]]. See docs/jira.md."""

from connectors.jira.tracker import JiraTracker

__all__ = ["JiraTracker"]
