"""MCP tool specs as OpenAI function tools."""

from __future__ import annotations

import json
from types import MappingProxyType
from typing import Any

import pytest

from orchestrator.llm.tools import MAX_DESCRIPTION_CHARS, parameters_schema, tool_definition, tool_definitions
from orchestrator.mcp.types import ToolSpec

EMPTY_OBJECT: dict[str, Any] = {"type": "object", "properties": {}}


def spec(name: str = "notes__add", description: str = "Add a note.", schema: Any = None) -> ToolSpec:
    input_schema = schema if schema is not None else {"type": "object", "properties": {"text": {"type": "string"}}}
    return ToolSpec(name=name, server_id="notes", tool="add", description=description, input_schema=input_schema)


def test_a_tool_becomes_a_function_tool_under_its_exposed_name() -> None:
    schema = {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]}

    definitions = tool_definitions([spec(schema=schema), spec(name="time__now", description="")])

    assert json.loads(definitions.json()) == list(definitions)
    assert list(definitions) == [
        {
            "type": "function",
            "function": {
                "name": "notes__add",
                "description": "Add a note.",
                "parameters": {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]},
            },
        },
        {
            "type": "function",
            "function": {
                "name": "time__now",
                "parameters": {"type": "object", "properties": {"text": {"type": "string"}}},
            },
        },
    ]


def test_a_long_description_is_truncated() -> None:
    definition = tool_definition(spec(description="word " * 1000))

    assert len(definition["function"]["description"]) == MAX_DESCRIPTION_CHARS


@pytest.mark.parametrize(
    ("schema", "expected"),
    [
        pytest.param({}, EMPTY_OBJECT, id="empty"),
        pytest.param({"type": "object"}, EMPTY_OBJECT, id="no-properties"),
        pytest.param(
            {"properties": {"a": {"type": "integer"}}},
            {"type": "object", "properties": {"a": {"type": "integer"}}},
            id="no-type",
        ),
        pytest.param({"type": "array", "items": {}}, EMPTY_OBJECT, id="not-an-object"),
        pytest.param({"type": "object", "properties": "nonsense"}, EMPTY_OBJECT, id="bad-properties"),
        pytest.param({"type": "object", "properties": {}, "required": "a"}, EMPTY_OBJECT, id="bad-required"),
        pytest.param("not a schema", EMPTY_OBJECT, id="not-a-mapping"),
    ],
)
def test_a_missing_or_invalid_schema_is_normalised_to_an_object_schema(schema: Any, expected: dict[str, Any]) -> None:
    assert parameters_schema(schema) == expected


def test_a_schema_built_from_read_only_mappings_becomes_plain_json() -> None:
    schema = MappingProxyType({"type": "object", "properties": MappingProxyType({"tags": {"enum": ("a", "b")}})})

    assert parameters_schema(schema) == {"type": "object", "properties": {"tags": {"enum": ["a", "b"]}}}


def test_the_same_spec_is_converted_once() -> None:
    one = spec()

    assert tool_definition(one) is tool_definition(one)
    assert tool_definition(spec()) is not tool_definition(one)
