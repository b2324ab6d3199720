from __future__ import annotations

import base64

from mcp_types import (
    AudioContent,
    BlobResourceContents,
    CallToolResult,
    EmbeddedResource,
    ImageContent,
    ResourceLink,
    TextContent,
    TextResourceContents,
)

from orchestrator.mcp.results import render_result
from orchestrator.mcp.types import ToolOutput


def test_text_blocks_are_joined_by_newlines() -> None:
    result = CallToolResult(content=[TextContent(text="one"), TextContent(text="two")])

    assert render_result(result, max_chars=100) == ToolOutput(text="one\ntwo", is_error=False)


def test_binary_content_is_described_not_inlined() -> None:
    png = base64.b64encode(b"\x89PNG" + b"\0" * 1230).decode()
    wav = base64.b64encode(b"RIFF" * 5).decode()
    result = CallToolResult(
        content=[
            ImageContent(data=png, mime_type="image/png"),
            AudioContent(data=wav, mime_type="audio/wav"),
            EmbeddedResource(resource=BlobResourceContents(uri="file:///a.bin", blob=wav, mime_type="x/y")),
        ]
    )

    text = render_result(result, max_chars=1000).text

    assert text == (
        "[image: image/png, 1234 bytes]\n[audio: audio/wav, 20 bytes]\n[resource: file:///a.bin, x/y, 20 bytes]"
    )


def test_resources_render_as_their_text_or_link() -> None:
    result = CallToolResult(
        content=[
            EmbeddedResource(resource=TextResourceContents(uri="file:///notes.md", text="# Notes")),
            ResourceLink(uri="https://example.com/report", name="report"),
        ]
    )

    assert render_result(result, max_chars=1000).text == "# Notes\n[resource: https://example.com/report]"


def test_structured_content_is_the_text_when_there_is_no_content() -> None:
    result = CallToolResult(content=[], structured_content={"temperature": 21.5, "city": "Zürich"})

    output = render_result(result, max_chars=1000)

    assert output.text == '{"temperature": 21.5, "city": "Zürich"}'


def test_error_results_stay_errors() -> None:
    result = CallToolResult(content=[TextContent(text="no such file")], is_error=True)

    assert render_result(result, max_chars=1000).is_error


def test_long_text_is_cut_with_a_visible_marker() -> None:
    result = CallToolResult(content=[TextContent(text="x" * 5_000_000)])

    output = render_result(result, max_chars=20_000)

    assert output.truncated
    assert output.text == "x" * 20_000 + "\n\n[truncated: showing 20000 of 5000000 characters]"


class NotSerialisable:
    def __str__(self) -> str:
        raise AssertionError("the structured content was serialised")


def test_structured_content_is_not_serialised_when_there_is_text_content() -> None:
    result = CallToolResult(content=[TextContent(text="big")], structured_content={"result": NotSerialisable()})

    assert render_result(result, max_chars=50) == ToolOutput(text="big", is_error=False)


def test_text_at_the_limit_is_not_cut() -> None:
    output = render_result(CallToolResult(content=[TextContent(text="y" * 10)]), max_chars=10)

    assert (output.text, output.truncated) == ("y" * 10, False)


def test_invisible_characters_are_removed_from_results_and_the_text_says_how_many() -> None:
    result = CallToolResult(content=[TextContent(text="Sunny\u200b\u202e today\U000e0041")])

    output = render_result(result, max_chars=1000)

    assert output == ToolOutput(
        text="Sunny today\n\n[3 invisible characters removed]", is_error=False, hidden_characters_removed=3
    )


def test_only_the_part_of_a_long_result_the_model_reads_is_searched_for_invisible_characters() -> None:
    result = CallToolResult(content=[TextContent(text="a\u200b" + "x" * 100 + "\u200b" * 50)])

    output = render_result(result, max_chars=10)

    assert (
        output.text
        == "a" + "x" * 8 + "\n\n[truncated: showing 10 of 152 characters]\n\n[1 invisible character removed]"
    )
    assert (output.truncated, output.hidden_characters_removed) == (True, 1)
