"""MCP tools as OpenAI function tools, each encoded as JSON once."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Final, TypeGuard, overload

from orchestrator.llm.types import ToolDefinition
from orchestrator.mcp.types import ToolSpec

MAX_DESCRIPTION_CHARS: Final = 1024
"""Longer descriptions are cut: they cost prompt tokens on every step, and some endpoints refuse them."""

_CACHE_LIMIT: Final = 4096

# Keyed by identity: ToolSpec holds dicts, so it cannot be hashed, and the registry hands out the same specs turn after
# turn. The spec is kept beside its definition so a recycled id() never matches.
_definitions: dict[int, tuple[ToolSpec, ToolDefinition, bytes]] = {}


class ToolDefinitions(Sequence[ToolDefinition]):
    """OpenAI tool definitions that carry their JSON, encoded once per tool rather than on every model request.

    At 500 tools, encoding the ``tools`` list costs milliseconds of CPU per request; a model client that knows this
    type splices :meth:`json` into its request body instead.
    """

    __slots__ = ("_definitions", "_encoded", "_json")

    def __init__(self, definitions: Sequence[ToolDefinition], encoded: Sequence[bytes]) -> None:
        if len(definitions) != len(encoded):
            raise ValueError("one encoded form per definition")
        self._definitions = tuple(definitions)
        self._encoded = tuple(encoded)
        self._json: bytes | None = None

    @classmethod
    def encode(cls, definitions: Sequence[ToolDefinition]) -> ToolDefinitions:
        return cls(definitions, [encode_json(definition) for definition in definitions])

    def json(self) -> bytes:
        """The whole list as one JSON array (compact, UTF-8)."""
        if self._json is None:
            self._json = b"[" + b",".join(self._encoded) + b"]"
        return self._json

    def encoded(self, index: int) -> bytes:
        """The JSON of the definition at ``index``."""
        return self._encoded[index]

    def __add__(self, other: ToolDefinitions) -> ToolDefinitions:
        return ToolDefinitions(self._definitions + other._definitions, self._encoded + other._encoded)

    @overload
    def __getitem__(self, index: int) -> ToolDefinition: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[ToolDefinition]: ...
    def __getitem__(self, index: int | slice) -> ToolDefinition | Sequence[ToolDefinition]:
        return self._definitions[index]

    def __len__(self) -> int:
        return len(self._definitions)

    def __iter__(self) -> Iterator[ToolDefinition]:
        return iter(self._definitions)


def encode_json(value: object) -> bytes:
    """Compact UTF-8 JSON, as the ``openai`` SDK encodes request bodies."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()


def tool_definitions(specs: Sequence[ToolSpec]) -> ToolDefinitions:
    """The OpenAI ``tools`` list for ``specs``, in order. Definitions are cached: do not mutate them."""
    entries = [_entry(spec) for spec in specs]
    return ToolDefinitions([entry[1] for entry in entries], [entry[2] for entry in entries])


def tool_definition(spec: ToolSpec) -> ToolDefinition:
    """``{"type": "function", "function": {"name", "description", "parameters"}}`` for one tool."""
    return _entry(spec)[1]


def _entry(spec: ToolSpec) -> tuple[ToolSpec, ToolDefinition, bytes]:
    cached = _definitions.get(id(spec))
    if cached is not None and cached[0] is spec:
        return cached
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
    entry = _definitions[id(spec)] = (spec, definition, encode_json(definition))
    return entry


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
