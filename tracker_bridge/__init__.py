"""tracker-bridge: hand tickets to an autonomous coding agent from the tracker your team already uses."""

__version__ = "0.1.0"
