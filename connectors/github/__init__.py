"""GitHub: the code host (GitHubHost) and the REST/GraphQL plumbing shared with connectors.github_projects."""

from connectors.github.client import GitHubAPIError, GitHubClient
from connectors.github.host import GitHubHost

__all__ = ["GitHubAPIError", "GitHubClient", "GitHubHost"]
