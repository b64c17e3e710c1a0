"""Connectors: one module or package per tracker and code host, behind the protocols of tracker_bridge.protocols."""
