"""GitHub: the code host (GitHubHost) and the REST/GraphQL plumbing shared with the github_projects tracker."""

from tracker_bridge_connectors.github.client import GitHubAPIError, GitHubClient
from tracker_bridge_connectors.github.host import GitHubHost

__all__ = ["GitHubAPIError", "GitHubClient", "GitHubHost"]
