"""GitLab connectors: issues and issue boards as a tracker (`kind = "gitlab"`), merge requests as a code host
(`host = "gitlab"`), both on python-gitlab against gitlab.com or a self-managed instance. See docs/gitlab.md."""

from tracker_bridge_connectors.gitlab.host import GitLabHost
from tracker_bridge_connectors.gitlab.tracker import GitLabTracker

__all__ = ["GitLabHost", "GitLabTracker"]
