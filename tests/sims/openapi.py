"""Validate simulator requests against an official OpenAPI 3.0 description.

A simulator calls `validator.check(request)` before handling a request; a non-empty list of errors means the real
service would reject it too (unknown path, method not allowed, missing required parameter, body that does not match
the schema), and the simulator answers as that service does. Schemas are OpenAPI 3.0 (close to JSON Schema draft 4
with `nullable`), converted once and checked with jsonschema.
"""

from __future__ import annotations

import json
import re
from functools import cached_property
from pathlib import Path
from typing import Any

import jsonschema

from tests.sims.http import Request

HTTP_METHODS = ("get", "put", "post", "delete", "patch", "head", "options")


def _convert(node: Any) -> Any:
    """OpenAPI 3.0 schema -> JSON Schema: `nullable: true` becomes "or null"; everything else passes through."""
    if isinstance(node, list):
        return [_convert(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: _convert(v) for k, v in node.items() if k not in ("nullable", "discriminator", "example", "xml")}
    if node.get("nullable") is True:
        return {"anyOf": [out, {"type": "null"}]}
    return out


def load_spec(path: Path) -> dict[str, Any]:
    text = path.read_text(encoding="utf-8")
    if path.suffix in (".yml", ".yaml"):
        import yaml

        loaded: dict[str, Any] = yaml.safe_load(text)
        return loaded
    parsed: dict[str, Any] = json.loads(text)
    return parsed


class Operation:
    def __init__(self, validator: OpenAPIValidator, template: str, method: str, op: dict[str, Any]) -> None:
        self.validator = validator
        self.template = template
        self.method = method.upper()
        self.op = op
        params = list(validator.spec["paths"][template].get("parameters", [])) + list(op.get("parameters", []))
        self.parameters = [validator.resolve(p) for p in params]

    @property
    def operation_id(self) -> str:
        return str(self.op.get("operationId", f"{self.method} {self.template}"))

    @cached_property
    def body_schema(self) -> tuple[bool, dict[str, Any] | None]:
        body = self.op.get("requestBody")
        if not body:
            return False, None
        body = self.validator.resolve(body)
        content = body.get("content", {})
        for ctype, media in content.items():
            if "json" in ctype and "schema" in media:
                return bool(body.get("required")), media["schema"]
        return bool(body.get("required")), None

    def check(self, req: Request, path_params: dict[str, str]) -> list[str]:
        errors: list[str] = []
        for p in self.parameters:
            name, where = p.get("name"), p.get("in")
            if where == "query" and p.get("required") and name not in req.query:
                errors.append(f"missing required query parameter '{name}'")
            if isinstance(name, str) and where in ("query", "path") and p.get("schema", {}).get("type") == "integer":
                value = path_params.get(name) if where == "path" else req.arg(name)
                if value is not None and not re.fullmatch(r"-?\d+", value):
                    errors.append(f"parameter '{name}' must be an integer, got {value!r}")
        required, schema = self.body_schema
        if not req.body:
            if required:
                errors.append("request body is required")
            return errors
        if schema is None:
            return errors
        try:
            body = req.json()
        except json.JSONDecodeError as exc:
            return [*errors, f"request body is not valid JSON: {exc}"]
        errors.extend(self.validator.schema_errors(schema, body))
        return errors


class OpenAPIValidator:
    """Matches a request to an operation of the description and lists what the service would reject."""

    def __init__(self, spec: dict[str, Any], *, base_path: str = "") -> None:
        self.spec = spec
        self.base_path = base_path.rstrip("/")
        self._converted_components = _convert(spec.get("components", {}))
        self._paths: list[tuple[re.Pattern[str], str]] = []
        for template in spec.get("paths", {}):
            regex = re.compile("^" + re.sub(r"\\\{[^}]+\\\}", "([^/]+)", re.escape(template)) + "$")
            self._paths.append((regex, template))
        # Literal segments beat parameters: /issue/createmeta must not match /issue/{key}.
        self._paths.sort(key=lambda pt: (pt[1].count("{"), -len(pt[1])))

    @classmethod
    def from_file(cls, path: Path, *, base_path: str = "") -> OpenAPIValidator:
        return cls(load_spec(path), base_path=base_path)

    def resolve(self, node: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in node:
            ref = node["$ref"]
            target: Any = self.spec
            for part in ref.lstrip("#/").split("/"):
                target = target[part.replace("~1", "/").replace("~0", "~")]
            node = target
        return node

    def schema_errors(self, schema: dict[str, Any], instance: Any) -> list[str]:
        root = {**_convert(schema), "components": self._converted_components}
        validator = jsonschema.Draft4Validator(root)
        return [
            f"body{''.join(f'[{p!r}]' for p in e.absolute_path)}: {e.message}"
            for e in sorted(validator.iter_errors(instance), key=lambda e: list(e.absolute_path))[:5]
        ]

    def match(self, method: str, path: str) -> tuple[Operation | None, dict[str, str], str | None]:
        """(operation, path parameters, error): error is 'unknown path' or 'method not allowed'."""
        if self.base_path and path.startswith(self.base_path):
            path = path[len(self.base_path) :]
        for regex, template in self._paths:
            m = regex.match(path)
            if not m:
                continue
            item = self.spec["paths"][template]
            op = item.get(method.lower())
            if op is None:
                continue
            names = re.findall(r"\{([^}]+)\}", template)
            values = [g for g in m.groups()]
            return Operation(self, template, method, op), dict(zip(names, values, strict=False)), None
        for regex, _template in self._paths:
            if regex.match(path):
                return None, {}, f"method {method} not allowed on {path}"
        return None, {}, f"unknown path {path}"

    def check(self, req: Request) -> list[str]:
        op, params, error = self.match(req.method, req.path)
        if error or op is None:
            return [error or "unknown path"]
        return op.check(req, params)
