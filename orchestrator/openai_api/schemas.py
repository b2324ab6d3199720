"""The request body of ``POST /v1/chat/completions``, as OpenAI defines it, and what this server makes of it.

Parameters that only tune sampling (``temperature``, ``top_p``, penalties, ``seed``, ``stop`` ...) are accepted
and left to the server's own model settings. Parameters that would change what the client gets back in ways this
server cannot honour (client-side ``tools``, ``n`` > 1, ``logprobs``, non-text ``response_format``, audio) are
refused with a 400 naming the parameter, and so is any parameter OpenAI does not define.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from orchestrator.errors import InvalidParameter

ClientRole = Literal["system", "developer", "user", "assistant", "tool"]


class TextPart(BaseModel):
    model_config = ConfigDict(extra="ignore")

    type: str
    text: str | None = None


class FunctionCallIn(BaseModel):
    model_config = ConfigDict(extra="ignore")

    name: Annotated[str, Field(max_length=256)]
    arguments: str = ""


class ToolCallIn(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: Annotated[str, Field(max_length=256)]
    type: Literal["function"] = "function"
    function: FunctionCallIn


class ChatMessageIn(BaseModel):
    # Clients echo assistant messages back with fields such as ``refusal`` or ``audio`` set to null: ignored.
    model_config = ConfigDict(extra="ignore")

    role: ClientRole
    content: str | list[TextPart] | None = None
    name: str | None = None
    tool_calls: list[ToolCallIn] | None = None
    tool_call_id: Annotated[str, Field(max_length=256)] | None = None


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="ignore")

    include_usage: bool = False


class ChatCompletionRequest(BaseModel):
    model_config = ConfigDict(extra="allow")

    model: Annotated[str, Field(min_length=1, max_length=256)]
    messages: Annotated[list[ChatMessageIn], Field(min_length=1, max_length=10_000)]
    stream: bool | None = False
    stream_options: StreamOptions | None = None
    max_tokens: Annotated[int, Field(ge=1)] | None = None
    max_completion_tokens: Annotated[int, Field(ge=1)] | None = None
    # Accepted; the server's model settings decide them.
    temperature: Annotated[float, Field(ge=0, le=2)] | None = None
    top_p: Annotated[float, Field(ge=0, le=1)] | None = None
    presence_penalty: Annotated[float, Field(ge=-2, le=2)] | None = None
    frequency_penalty: Annotated[float, Field(ge=-2, le=2)] | None = None
    seed: int | None = None
    stop: str | list[str] | None = None
    user: str | None = None
    metadata: dict[str, str] | None = None
    store: bool | None = None
    service_tier: str | None = None
    reasoning_effort: str | None = None
    parallel_tool_calls: bool | None = None
    logit_bias: dict[str, float] | None = None
    # Refused unless they ask for nothing (see ``check_supported``).
    n: int | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = None
    response_format: dict[str, Any] | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    functions: list[dict[str, Any]] | None = None
    function_call: str | dict[str, Any] | None = None
    modalities: list[str] | None = None
    audio: dict[str, Any] | None = None
    prediction: dict[str, Any] | None = None
    web_search_options: dict[str, Any] | None = None


def check_supported(body: ChatCompletionRequest) -> None:
    """Refuse what this server cannot honour, naming the parameter.

    Raises:
        InvalidParameter: the first parameter that cannot be honoured.
    """
    for name in body.model_extra or {}:
        raise InvalidParameter(name, f"unknown parameter: {name!r}", code="unknown_parameter")
    if body.tools or body.functions:
        param = "tools" if body.tools else "functions"
        raise InvalidParameter(
            param,
            "client-side tools are not supported: the assistant runs its own MCP tools on the server; "
            "send the conversation without 'tools'",
            code="unsupported_parameter",
        )
    if body.tool_choice not in (None, "auto") or body.function_call not in (None, "auto"):
        param = "tool_choice" if body.tool_choice not in (None, "auto") else "function_call"
        raise InvalidParameter(param, f"'{param}' must be 'auto' (or left out)", code="unsupported_parameter")
    if body.n not in (None, 1):
        raise InvalidParameter("n", "only one choice per request is supported (n = 1)", code="unsupported_parameter")
    if body.logprobs or body.top_logprobs:
        param = "logprobs" if body.logprobs else "top_logprobs"
        raise InvalidParameter(param, "log probabilities are not supported", code="unsupported_parameter")
    if body.response_format is not None and body.response_format.get("type") != "text":
        raise InvalidParameter(
            "response_format", "only the 'text' response format is supported", code="unsupported_parameter"
        )
    if body.audio is not None or (body.modalities is not None and body.modalities != ["text"]):
        param = "audio" if body.audio is not None else "modalities"
        raise InvalidParameter(param, "only text replies are supported", code="unsupported_parameter")
    if body.prediction is not None or body.web_search_options is not None:
        param = "prediction" if body.prediction is not None else "web_search_options"
        raise InvalidParameter(param, f"'{param}' is not supported", code="unsupported_parameter")
    if body.stream_options is not None and not body.stream:
        raise InvalidParameter("stream_options", "'stream_options' is only allowed with 'stream': true")


def message_text(message: ChatMessageIn, index: int) -> str:
    """A message's content as text: a string, or the text parts of a list joined by new lines.

    Raises:
        InvalidParameter: a part is not text.
    """
    content = message.content
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    texts: list[str] = []
    for number, part in enumerate(content):
        if part.type != "text" or part.text is None:
            raise InvalidParameter(
                f"messages[{index}].content[{number}]",
                f"only text content is supported, not {part.type!r}",
                code="unsupported_content",
            )
        texts.append(part.text)
    return "\n".join(texts)
