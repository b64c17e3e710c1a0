"""GitHub Projects (v2) as a tracker (kind "github")."""

from tracker_bridge_connectors.github_projects.tracker import GitHubProjectsTracker, ProjectScope

__all__ = ["GitHubProjectsTracker", "ProjectScope"]
