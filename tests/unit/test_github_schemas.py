"""The trimmed REST description is self-contained (every request the connectors make is checked against it by the
simulator, and the journey test asserts none was rejected)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

TRIMMED = Path(__file__).resolve().parents[2] / "tests" / "schemas" / "github" / "api.github.com.trimmed.json"


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        own = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return own + [r for v in node.values() for r in _refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []


def test_every_reference_in_the_trimmed_description_resolves() -> None:
    spec = json.loads(TRIMMED.read_text())
    for ref in set(_refs(spec)):
        _, _, section, name = ref.split("/", 3)
        assert name in spec["components"][section], ref
