"""Agent backends and everything around one agent run: workspace, prompt, sandbox, caps, trace."""

from __future__ import annotations

import importlib

from tracker_bridge.config import Settings
from tracker_bridge.protocols import AgentBackend

BACKENDS: dict[str, str] = {
    "command": "tracker_bridge.agents.command:CommandBackend",
    "claude-code": "tracker_bridge.agents.claude_code:ClaudeCodeBackend",
    "anthropic": "tracker_bridge.agents.anthropic_loop:AnthropicBackend",
}


def create_backend(settings: Settings) -> AgentBackend:
    module_name, _, attr = BACKENDS[settings.agent.backend].partition(":")
    cls = getattr(importlib.import_module(module_name), attr)
    backend: AgentBackend = cls.from_settings(settings)
    return backend
