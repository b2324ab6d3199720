"""MCP tools as OpenAI function tools."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final, TypeGuard

from orchestrator.llm.types import ToolDefinition
from orchestrator.mcp.types import ToolSpec

MAX_DESCRIPTION_CHARS: Final = 1024
"""Longer descriptions are cut: they cost prompt tokens on every step, and some endpoints refuse them."""

_CACHE_LIMIT: Final = 4096

# Keyed by identity: ToolSpec holds dicts, so it cannot be hashed, and the registry hands out the same specs turn after
# turn. The spec is kept beside its definition so a recycled id() never matches.
_definitions: dict[int, tuple[ToolSpec, ToolDefinition]] = {}


def tool_definitions(specs: Sequence[ToolSpec]) -> list[ToolDefinition]:
    """The OpenAI ``tools`` list for ``specs``, in order. Definitions are cached: do not mutate them."""
    return [tool_definition(spec) for spec in specs]


def tool_definition(spec: ToolSpec) -> ToolDefinition:
    """``{"type": "function", "function": {"name", "description", "parameters"}}`` for one tool."""
    cached = _definitions.get(id(spec))
    if cached is not None and cached[0] is spec:
        return cached[1]
    function: dict[str, Any] = {"name": spec.name}
    description = spec.description.strip()
    if description:
        if len(description) > MAX_DESCRIPTION_CHARS:
            description = description[: MAX_DESCRIPTION_CHARS - 1].rstrip() + "…"
        function["description"] = description
    function["parameters"] = parameters_schema(spec.input_schema)
    definition: ToolDefinition = {"type": "function", "function": function}
    if len(_definitions) >= _CACHE_LIMIT:
        _definitions.clear()
    _definitions[id(spec)] = (spec, definition)
    return definition


def parameters_schema(schema: object) -> dict[str, Any]:
    """``schema`` as an OpenAI function ``parameters`` schema: an object schema with ``properties``.

    Anything that is not an object schema becomes one without properties; ``properties`` and ``required`` are
    repaired when malformed. The result is plain JSON (dicts and lists), whatever mappings the server's schema used.
    """
    if not _is_mapping(schema) or schema.get("type", "object") != "object":
        return {"type": "object", "properties": {}}
    fields = {str(key): _plain(value) for key, value in schema.items()}
    fields["type"] = "object"
    if not _is_mapping(fields.get("properties")):
        fields["properties"] = {}
    required = fields.get("required")
    if required is not None and not (_is_array(required) and all(isinstance(name, str) for name in required)):
        del fields["required"]
    return fields


def _is_mapping(value: object) -> TypeGuard[Mapping[Any, Any]]:
    return isinstance(value, Mapping)


def _is_array(value: object) -> TypeGuard[list[Any] | tuple[Any, ...]]:
    return isinstance(value, list | tuple)


def _plain(value: object) -> Any:
    """``value`` as plain JSON data: every mapping a dict, every sequence a list."""
    if _is_mapping(value):
        return {str(key): _plain(item) for key, item in value.items()}
    if _is_array(value):
        return [_plain(item) for item in value]
    return value
