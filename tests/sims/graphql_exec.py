"""Executing GraphQL requests against a service's official SDL, for simulators of GraphQL APIs.

A simulator keeps its state in plain Python objects whose attributes (or methods taking `info, **args`) are named
like the schema's fields; graphql-core's default resolver reads attributes and dict keys and calls methods with the
field's arguments. What this module adds: building (and caching) a schema from an SDL file once per test session,
parsing + validating + executing a request the way a GraphQL server does, and a static complexity estimate in the
style most hosted GraphQL APIs publish (objects cost 1, scalars 0.1, connections multiply their children by the page
size asked for).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import graphql
from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    VariableNode,
)


@functools.lru_cache(maxsize=8)
def load_schema(path: str) -> GraphQLSchema:
    """Build the schema in `path` once per process: large SDL files (Linear's is 1.2 MB) take most of a second."""
    sdl = Path(path).read_text(encoding="utf-8")
    return graphql.build_schema(sdl, assume_valid_sdl=True)


@dataclass
class ExecResult:
    """What came out of one request: the response body, and what the server would charge for it."""

    body: dict[str, Any]
    ok: bool
    phase: str  # "parse", "validate", "execute"
    complexity: float = 0.0
    operation: str | None = None
    errors: list[GraphQLError] = field(default_factory=list)


def estimate_complexity(
    schema: GraphQLSchema,
    document: DocumentNode,
    variables: dict[str, Any] | None = None,
    operation_name: str | None = None,
    *,
    default_page: int = 50,
    object_cost: float = 1.0,
    scalar_cost: float = 0.1,
) -> float:
    """Static cost of an operation: each object `object_cost`, each scalar `scalar_cost`; a field returning a
    `...Connection` multiplies its children by its `first`/`last` argument (or `default_page` when not given)."""
    variables = variables or {}
    fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
    ops = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    op = next((o for o in ops if operation_name is None or (o.name and o.name.value == operation_name)), None)
    if op is None:
        return 0.0
    root = schema.get_root_type(op.operation)
    if root is None:
        return 0.0

    def arg_value(node: FieldNode, name: str) -> Any:
        for arg in node.arguments or ():
            if arg.name.value == name:
                if isinstance(arg.value, VariableNode):
                    return variables.get(arg.value.name.value)
                return graphql.value_from_ast_untyped(arg.value, variables)
        return None

    def cost(selection_set: SelectionSetNode | None, parent: Any) -> float:
        total = 0.0
        if selection_set is None:
            return total
        for sel in selection_set.selections:
            if isinstance(sel, FieldNode):
                name = sel.name.value
                if name.startswith("__") or not hasattr(parent, "fields") or name not in parent.fields:
                    continue
                field_type = graphql.get_named_type(parent.fields[name].type)
                if isinstance(field_type, (GraphQLObjectType, graphql.GraphQLInterfaceType)):
                    inner = object_cost + cost(sel.selection_set, field_type)
                    if field_type.name.endswith("Connection"):
                        page = arg_value(sel, "first") or arg_value(sel, "last") or default_page
                        inner = object_cost + cost(sel.selection_set, field_type) * float(page)
                    total += inner
                else:
                    total += scalar_cost
            elif isinstance(sel, InlineFragmentNode):
                cond = schema.get_type(sel.type_condition.name.value) if sel.type_condition else parent
                total += cost(sel.selection_set, cond)
            elif isinstance(sel, FragmentSpreadNode):
                frag = fragments.get(sel.name.value)
                if frag is not None:
                    total += cost(frag.selection_set, schema.get_type(frag.type_condition.name.value))
        return total

    return round(cost(op.selection_set, root), 1)


def error_json(error: GraphQLError, extensions: dict[str, Any] | None = None) -> dict[str, Any]:
    data = dict(error.formatted)
    ext = {**(error.extensions or {}), **(extensions or {})}
    if ext:
        data["extensions"] = ext
    return data


def execute(
    schema: GraphQLSchema,
    payload: Any,
    *,
    root_value: Any,
    context: Any = None,
    validation_extensions: dict[str, Any] | None = None,
    before_execute: Callable[[DocumentNode, float], ExecResult | None] | None = None,
) -> ExecResult:
    """Run one GraphQL-over-HTTP request body ({query, variables, operationName}) like a server would.

    `before_execute(document, complexity)` may refuse the request (complexity or rate limits) by returning a result.
    """
    if not isinstance(payload, dict) or not isinstance(payload.get("query"), str):
        err = GraphQLError("Must provide query string.")
        return ExecResult({"errors": [error_json(err, validation_extensions)]}, False, "parse", errors=[err])
    variables = payload.get("variables") or {}
    op_name = payload.get("operationName")
    try:
        document = graphql.parse(payload["query"])
    except GraphQLError as err:
        return ExecResult({"errors": [error_json(err, validation_extensions)]}, False, "parse", errors=[err])
    errors = graphql.validate(schema, document)
    if errors:
        body = {"errors": [error_json(e, validation_extensions) for e in errors]}
        return ExecResult(body, False, "validate", errors=list(errors))
    op = graphql.get_operation_ast(document, op_name)
    name = op.name.value if op is not None and op.name else None
    complexity = estimate_complexity(schema, document, variables, op_name)
    if before_execute is not None:
        refused = before_execute(document, complexity)
        if refused is not None:
            refused.complexity, refused.operation = complexity, name
            return refused
    result = graphql.execute(
        schema,
        document,
        root_value=root_value,
        context_value=context,
        variable_values=variables,
        operation_name=op_name,
    )
    if not isinstance(result, graphql.ExecutionResult):  # pragma: no cover - we never use async resolvers
        raise TypeError("asynchronous resolvers are not supported by the simulator")
    answer: dict[str, Any] = {"data": result.data}
    if result.errors:
        answer["errors"] = [error_json(e) for e in result.errors]
    return ExecResult(answer, not result.errors, "execute", complexity, name, list(result.errors or []))
