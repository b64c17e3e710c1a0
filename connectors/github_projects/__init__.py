"""GitHub Projects (v2) as a tracker (kind "github")."""

from connectors.github_projects.tracker import GitHubProjectsTracker, ProjectScope

__all__ = ["GitHubProjectsTracker", "ProjectScope"]
