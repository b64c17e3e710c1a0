"""Linear connector: issues of one team, workflow states as columns, over a small GraphQL client on httpx."""

from tracker_bridge_connectors.linear.tracker import LinearTracker

__all__ = ["LinearTracker"]
