"""The client the MCP conformance suite runs: our MCP layer, driven through one client scenario.

The suite starts a scenario's server and runs ``python -m conformance.client <server-url>``, naming the scenario in
``MCP_CONFORMANCE_SCENARIO`` and, for some scenarios, the calls to make in ``MCP_CONFORMANCE_CONTEXT``. This client
connects with :class:`~orchestrator.mcp.connection.ServerConnection` configured as the orchestrator configures a
streamable HTTP server, calls the tools the scenario expects, stops the connection and exits 0 when every step worked.
The suite judges what it saw on the wire.

The suite also names a protocol revision (``MCP_CONFORMANCE_PROTOCOL_VERSION``); the client does not pin it, because
the orchestrator does not: the connection negotiates (``server/discover``, falling back to ``initialize``), and the
scenario's server speaks only its own revision.

In the ``auth/*`` scenarios the client signs in as the orchestrator signs a user in to a protected server
(``conformance.oauth.ProductSignIn``: ``orchestrator.mcp.oauth``, with a headless user approving the authorization
request), and connects with the grant; when the server refuses it (a 401, or a 403 asking for more scope) it signs in
once more and goes on. The two machine-to-machine scenarios use the MCP SDK's client credentials providers.

It adds nothing else our layer lacks: a scenario that needs more fails, and ``conformance/expected-failures.yml`` says
why.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import anyio
from mcp_types import CreateMessageRequestParams, CreateMessageResult, ElicitRequestParams, ElicitResult, ErrorData
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from conformance.oauth import (
    AUTH_SCENARIO_PREFIX,
    CLIENT_CREDENTIALS_SCENARIOS,
    AuthContext,
    MissingCredentials,
    ProductSignIn,
    oauth_for,
)
from orchestrator.errors import ServerAuthorizationRequired, ToolError
from orchestrator.mcp.connection import ServerConnection
from orchestrator.mcp.oauth.flow import SignInRefused
from orchestrator.mcp.types import ServerConfig

logger = logging.getLogger("conformance.client")

SCENARIO_ENV: Final = "MCP_CONFORMANCE_SCENARIO"
CONTEXT_ENV: Final = "MCP_CONFORMANCE_CONTEXT"

SERVER_ID: Final = "conformance"
CONNECT_TIMEOUT_SECONDS: Final = 10.0
TOOL_TIMEOUT_SECONDS: Final = 10.0
SETTLE_TIMEOUT_SECONDS: Final = CONNECT_TIMEOUT_SECONDS + 2.0
"""Each bound stays well under the suite's per-scenario timeout, so the client can still say what it was waiting for."""


class ScenarioFailed(Exception):
    """Some step of the scenario did not work; ``problems`` says which, one line each."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        super().__init__("; ".join(self.problems))


@dataclass(frozen=True, slots=True)
class ToolCall:
    tool: str
    arguments: Mapping[str, Any] = field(default_factory=dict[str, Any])


class ContextToolCall(BaseModel):
    name: str
    arguments: dict[str, Any] = Field(default_factory=dict[str, Any])


class ScenarioContext(AuthContext):
    """The parts of ``MCP_CONFORMANCE_CONTEXT`` this client uses (the auth scenarios' credentials among them);
    scenarios put other data there too."""

    model_config = ConfigDict(extra="ignore")

    tool_calls: list[ContextToolCall] | None = Field(default=None, alias="toolCalls")


_FIXED_CALLS: Final[Mapping[str, tuple[ToolCall, ...]]] = {
    "tools_call": (ToolCall("add_numbers", {"a": 5, "b": 3}),),
    "sse-retry": (ToolCall("test_reconnection"),),
    "elicitation-sep1034-client-defaults": (ToolCall("test_client_elicitation_defaults"),),
    # The unrelated call sits between the two input-required flows, whose state it must not carry.
    "sep-2322-client-request-state": (
        ToolCall("test_mrtr_echo_state"),
        ToolCall("test_mrtr_unrelated"),
        ToolCall("test_mrtr_no_state"),
        ToolCall("test_mrtr_no_result_type"),
    ),
    "http-standard-headers": (ToolCall("test_headers"), ToolCall("my-hyphenated-tool")),
}
"""The tool calls each scenario's server waits for; scenarios not named here only connect and list tools."""


def planned_calls(scenario: str, context: ScenarioContext, connection: ServerConnection) -> list[ToolCall]:
    """The tool calls to make once connected.

    The suite's context names them for some scenarios (``toolCalls``). The scenario about tools with malformed
    ``x-mcp-header`` annotations wants every tool our layer kept after listing called: the valid one must be, the
    malformed ones must not. The schema preservation scenario wants one tool's input schema, as our layer holds it,
    sent back through an echo tool. The auth scenarios want every listed tool called: some servers ask for a wider
    scope to call one than to list them, or move to another authorization server after the first authorized request.
    """
    if context.tool_calls is not None:
        return [ToolCall(call.name, call.arguments) for call in context.tool_calls]
    if scenario == "http-invalid-tool-headers":
        return [ToolCall(spec.tool) for spec in connection.tools]
    if scenario == "json-schema-2020-12-preservation":
        focal = next((spec for spec in connection.tools if spec.tool == "json_schema_2020_12_tool"), None)
        if focal is None:
            raise ScenarioFailed(["the server's json_schema_2020_12_tool is not among the listed tools"])
        return [ToolCall("json_schema_echo", {"schema": dict(focal.input_schema)})]
    if scenario.startswith(AUTH_SCENARIO_PREFIX):
        return [ToolCall(spec.tool) for spec in connection.tools]
    return list(_FIXED_CALLS.get(scenario, ()))


async def run_scenario(url: str, scenario: str, context: ScenarioContext) -> None:
    """Connect to ``url`` through our layer, make the scenario's calls, and stop.

    Every planned call is made even after one fails, so the suite sees as much as our layer can do.

    Raises:
        ScenarioFailed: the context lacks the credentials the scenario's OAuth client needs, the sign-in failed, the
            connection did not become healthy, or some call failed or answered with an error.
    """
    config = ServerConfig(
        id=SERVER_ID,
        transport="streamable-http",
        url=url,
        connect_timeout_seconds=CONNECT_TIMEOUT_SECONDS,
        tool_timeout_seconds=TOOL_TIMEOUT_SECONDS,
        source="runtime",
    )
    if scenario.startswith(AUTH_SCENARIO_PREFIX) and scenario not in CLIENT_CREDENTIALS_SCENARIOS:
        problems = await _as_a_signed_in_user(config, scenario, context)
    else:
        try:
            auth = oauth_for(scenario, url, context)
        except MissingCredentials as exc:
            raise ScenarioFailed([str(exc)]) from exc
        problems = (await _with_connection(ServerConnection(config, auth=auth), scenario, context)).problems
    if problems:
        raise ScenarioFailed(problems)


async def _as_a_signed_in_user(config: ServerConfig, scenario: str, context: ScenarioContext) -> list[str]:
    """The orchestrator's way with a protected server: sign in, connect with the grant, and when the server refuses
    the grant (a 401, or a 403 asking for more scope) sign in once more, for the scope it names, and go on."""
    user = ProductSignIn(config, context)
    try:
        await user.sign_in()
    except SignInRefused as exc:
        return [f"sign-in failed: {exc}"]
    run = await _with_connection(ServerConnection(user.server, auth=user.auth()), scenario, context)
    if run.refusal is None:
        return run.problems
    logger.info("the server refused the grant (%s); signing in again", run.refusal.reason)
    try:
        await user.sign_in(scope=run.refusal.scope)
    except SignInRefused as exc:
        return [*run.problems, f"signing in again failed: {exc}"]
    again = await _with_connection(ServerConnection(user.server, auth=user.auth()), scenario, context)
    if again.refusal is not None:
        return [*again.problems, f"the server refused the new grant too: {again.refusal.reason}"]
    return again.problems


@dataclass(frozen=True, slots=True)
class _Refusal:
    reason: str
    scope: str | None


@dataclass(slots=True)
class _Run:
    """What one connection did: the problems of its steps, and whether the server refused its grant."""

    problems: list[str] = field(default_factory=list[str])
    refusal: _Refusal | None = None


async def _with_connection(connection: ServerConnection, scenario: str, context: ScenarioContext) -> _Run:
    run = _Run()
    async with anyio.create_task_group() as tg:
        tg.start_soon(connection.run)
        try:
            await _drive(connection, scenario, context, run)
        finally:
            connection.stop()
    return run


async def _drive(connection: ServerConnection, scenario: str, context: ScenarioContext, run: _Run) -> None:
    """The scenario's steps on a running connection, noted in ``run`` (raising would end the task group)."""
    with anyio.move_on_after(SETTLE_TIMEOUT_SECONDS):
        await connection.wait_settled()
    challenge = connection.challenge
    if connection.status == "auth_required" and challenge is not None:
        run.refusal = _Refusal(challenge.reason, challenge.scope)
        return
    if connection.status != "healthy":
        run.problems.append(f"did not connect: {connection.last_error or connection.status}")
        return
    logger.info("connected; tools: %s", ", ".join(spec.tool for spec in connection.tools) or "none")
    try:
        calls = planned_calls(scenario, context, connection)
    except ScenarioFailed as exc:
        run.problems.extend(exc.problems)
        return
    for call in calls:
        try:
            problem = await _call(connection, call)
        except ServerAuthorizationRequired as exc:
            run.refusal = _Refusal(exc.reason or "the server refused the grant", exc.scope)
            return
        if problem is not None:
            run.problems.append(problem)


class _AcceptingUser:
    """Stands in for the user the loop would ask: accepts forms as they come (the layer fills schema defaults in)
    and declines sampling, as the suite's reference client does."""

    async def elicit(self, server_id: str, params: ElicitRequestParams) -> ElicitResult:
        return ElicitResult(action="accept", content={})

    async def sample(self, server_id: str, params: CreateMessageRequestParams) -> CreateMessageResult | ErrorData:
        return ErrorData(code=-1, message="this client does not sample")

    async def authorize(self, server_id: str, url: str, signed_in: Callable[[], Awaitable[None]]) -> bool:
        return False  # the auth scenarios sign in through the connection's own OAuth client


async def _call(connection: ServerConnection, call: ToolCall) -> str | None:
    try:
        result = await connection.call_tool(call.tool, call.arguments, user_id="conformance", requests=_AcceptingUser())
    except ServerAuthorizationRequired:
        raise
    except ToolError as exc:
        return str(exc)
    text = " ".join(block.text for block in result.content if block.type == "text")
    logger.info("%s answered%s: %s", call.tool, " with an error" if result.is_error else "", text[:500])
    return f"tool {call.tool!r} answered with an error: {text[:500]}" if result.is_error else None


def _context() -> ScenarioContext:
    raw = os.environ.get(CONTEXT_ENV)
    if not raw:
        return ScenarioContext()
    try:
        return ScenarioContext.model_validate_json(raw)
    except ValidationError as exc:
        raise ScenarioFailed([f"{CONTEXT_ENV} is not what this client understands: {exc}"]) from exc


def main(argv: Sequence[str] | None = None) -> int:
    """Run the scenario the suite names against the server URL given last; returns the exit status.

    0: every step worked. 1: a step failed (said on stderr). 2: called without a URL or a scenario.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    scenario = os.environ.get(SCENARIO_ENV)
    if not args or not scenario:
        print(f"usage: {SCENARIO_ENV}=<scenario> python -m conformance.client <server-url>", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    logger.info("scenario %s against %s", scenario, args[-1])
    try:
        anyio.run(run_scenario, args[-1], scenario, _context())
    except ScenarioFailed as exc:
        for problem in exc.problems:
            print(f"conformance client: {problem}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
