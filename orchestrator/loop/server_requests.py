"""Answering what a server asks during one tool call: elicitation (the user fills a form or opens a link),
sampling (our model writes a reply, once the user has seen the request and allowed it), and a protected server's
sign-in (the user signs in on its authorization server's page, then the call goes on)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from contextlib import aclosing
from typing import Any, Protocol

import anyio
from mcp_types import (
    AudioContent,
    CreateMessageRequestParams,
    CreateMessageResult,
    ElicitRequestFormParams,
    ElicitRequestParams,
    ElicitResult,
    ErrorData,
    ImageContent,
    SamplingMessage,
    TextContent,
)

from orchestrator.errors import ModelError, ServerAuthorizationFailed
from orchestrator.llm.types import ChatModel, StepCompleted, TextDelta, Usage
from orchestrator.loop.events import InteractionEnded, InteractionRequested, TurnEvent
from orchestrator.loop.interactions import Answer, InteractionKind, PendingInteractions
from orchestrator.mcp.links import safe_link
from orchestrator.memory.types import UserIdentity


class TurnContext(Protocol):
    """What answering a server needs of the running turn."""

    @property
    def user(self) -> UserIdentity: ...

    @property
    def conversation_id(self) -> str: ...

    @property
    def model(self) -> ChatModel: ...

    @property
    def emit(self) -> Callable[[TurnEvent], Awaitable[None]]: ...

    def count_usage(self, usage: Usage) -> None: ...


logger = logging.getLogger(__name__)

USER_REJECTED = -1  # the code the MCP specification gives for a sampling request the user refused
SAMPLING_MAX_TOKENS = 4_096


class TurnServerRequests:
    """The :class:`~orchestrator.mcp.types.ServerRequests` of one tool call in one turn."""

    def __init__(self, turn: TurnContext, tool_call_id: str, interactions: PendingInteractions, timeout: float) -> None:
        self._turn = turn
        self._tool_call_id = tool_call_id
        self._interactions = interactions
        self._timeout = timeout

    async def elicit(self, server_id: str, params: ElicitRequestParams) -> ElicitResult:
        if isinstance(params, ElicitRequestFormParams):
            details: dict[str, Any] = {
                "mode": "form",
                "message": params.message,
                "requested_schema": dict(params.requested_schema),
            }
        else:
            if not safe_link(params.url):
                logger.warning("MCP server %s asked the user to open a link that is not https; refused", server_id)
                return ElicitResult(action="decline")
            details = {"mode": "url", "message": params.message, "url": params.url}
        answer = await self._ask("elicitation", server_id, details)
        if answer is None:
            return ElicitResult(action="cancel")
        if answer.action == "accept" and details["mode"] == "form":
            return ElicitResult(action="accept", content=dict(answer.content or {}))
        return ElicitResult(action=answer.action)

    async def sample(self, server_id: str, params: CreateMessageRequestParams) -> CreateMessageResult | ErrorData:
        max_tokens = min(params.max_tokens, SAMPLING_MAX_TOKENS)
        messages = [{"role": message.role, "text": _message_text(message)} for message in params.messages]
        details = {"system_prompt": params.system_prompt, "messages": messages, "max_tokens": max_tokens}
        answer = await self._ask("sampling", server_id, details)
        if answer is None or answer.action != "accept":
            return ErrorData(code=USER_REJECTED, message="the user declined the sampling request")
        return await self._run_model(params.system_prompt, messages, max_tokens)

    async def authorize(self, server_id: str, url: str, signed_in: Callable[[], Awaitable[None]]) -> bool:
        """Show the server's sign-in page as a card in the conversation until ``signed_in`` returns or the user
        gives up (``decline`` or ``cancel`` on the card) or the time is up."""
        turn = self._turn
        details = {
            "mode": "authorization",
            "message": f"Sign in to {server_id} to let the assistant use it for you.",
            "url": url,
        }
        async with self._interactions.asking(turn.user.id, turn.conversation_id, "authorization", details) as pending:
            await turn.emit(
                InteractionRequested(pending.id, "authorization", server_id, self._tool_call_id, details, self._timeout)
            )
            ended: list[str] = []  # how it ended, first come
            failure: list[ServerAuthorizationFailed] = []
            async with anyio.create_task_group() as group:

                async def until_signed_in() -> None:
                    try:
                        await signed_in()
                        ended.append("accept")
                    except ServerAuthorizationFailed as exc:
                        ended.append("failed")
                        failure.append(exc)
                    group.cancel_scope.cancel()

                async def until_answered() -> None:
                    answer = await pending.wait(self._timeout)
                    ended.append(answer.action if answer is not None else "timeout")
                    group.cancel_scope.cancel()

                group.start_soon(until_signed_in)
                group.start_soon(until_answered)
            outcome = ended[0] if ended else "timeout"
            await turn.emit(InteractionEnded(pending.id, outcome))
        if failure and outcome == "failed":
            raise failure[0]
        return outcome == "accept"

    async def _ask(self, kind: InteractionKind, server_id: str, details: Mapping[str, Any]) -> Answer | None:
        turn = self._turn
        async with self._interactions.asking(turn.user.id, turn.conversation_id, kind, details) as pending:
            await turn.emit(
                InteractionRequested(pending.id, kind, server_id, self._tool_call_id, dict(details), self._timeout)
            )
            answer = await pending.wait(self._timeout)
            await turn.emit(InteractionEnded(pending.id, answer.action if answer else "timeout"))
            return answer

    async def _run_model(
        self, system_prompt: str | None, messages: list[dict[str, str]], max_tokens: int
    ) -> CreateMessageResult | ErrorData:
        """One reply from our model, without tools; its tokens count against the turn's budget."""
        turn = self._turn
        chat: list[dict[str, Any]] = [{"role": "system", "content": system_prompt}] if system_prompt else []
        chat.extend({"role": message["role"], "content": message["text"]} for message in messages)
        text: list[str] = []
        completed: StepCompleted | None = None
        try:
            async with aclosing(turn.model.stream(chat, [], max_tokens=max_tokens)) as events:
                async for event in events:
                    if isinstance(event, TextDelta):
                        text.append(event.text)
                    else:
                        completed = event
        except ModelError as exc:
            return ErrorData(code=USER_REJECTED, message=f"the model could not answer: {exc}")
        if completed is not None:
            turn.count_usage(completed.usage)
        return CreateMessageResult(
            role="assistant",
            content=TextContent(type="text", text="".join(text)),
            model=turn.model.model_name,
            stop_reason="endTurn",
        )


def _message_text(message: SamplingMessage) -> str:
    content = message.content
    blocks = content if isinstance(content, list) else [content]
    parts: list[str] = []
    for block in blocks:
        if isinstance(block, TextContent):
            parts.append(block.text)
        elif isinstance(block, ImageContent | AudioContent):
            parts.append(f"[{block.type}: {block.mime_type}]")
        else:
            parts.append(f"[{block.type}]")
    return "\n".join(parts)
