"""Turn benchmark: complete chat turns through the orchestrator's HTTP API against a hand-written floor.

One turn is: user message -> the model asks for a tool -> the MCP tool answers -> the model's final answer.
The model is our OpenAI-compatible fake server (zero latency, its own process) and the tool is the test MCP server's
``echo`` over stdio (zero latency). Every path uses the same two.

* floor: the minimal loop anyone would write by hand: the ``openai`` client streaming Chat Completions plus one
  ``mcp`` client session, no HTTP hop, no persistence.
* orchestrator: ``python -m orchestrator`` in its own process (one per database, all running at once), turns
  posted to ``/api/conversations/{id}/messages`` (JSON reply), every step stored in SQLite or PostgreSQL.

The paths are measured in alternating rounds within one run, so the machine's drift hits them alike. It prints
p50/p99 per turn and turns/s at each concurrency, and the ratios against the floor. Targets: per-turn p50 within
1.3x the floor at concurrency 1, and at least 0.77x the floor's throughput at concurrency 16.

    python bench/turns.py                         # SQLite and PostgreSQL, concurrency 1 and 16
    python bench/turns.py --backends sqlite --turns 50 --concurrency 1 16
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncGenerator, Awaitable, Callable, Generator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import openai
from mcp import Client, StdioServerParameters
from openai.types.chat import ChatCompletionMessageParam, ChatCompletionToolParam
from sqlalchemy import text

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from orchestrator.memory.db import create_engine, parse_database_url  # noqa: E402
from tests.fakes.openai_server import DEFAULT_API_KEY, DEFAULT_MODEL  # noqa: E402

SERVER_ID = "bench"
TOOL = "echo"
TOOL_ARGUMENTS = {"text": "ping"}
PROMPT = "Echo ping, please."
DEFAULT_POSTGRES = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"


@dataclass(frozen=True)
class Result:
    path: str
    backend: str
    concurrency: int
    latencies: list[float]
    wall_seconds: float

    @property
    def p50_ms(self) -> float:
        return statistics.median(self.latencies) * 1000

    @property
    def p99_ms(self) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))] * 1000

    @property
    def turns_per_second(self) -> float:
        return len(self.latencies) / self.wall_seconds


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def tool_server() -> StdioServerParameters:
    return StdioServerParameters(
        command=sys.executable, args=["-m", "tests.fakes.mcp_test_server", "--page-size", "0"], cwd=str(ROOT)
    )


@contextlib.contextmanager
def fake_model() -> Generator[str]:
    """Start the fake model in its own process; yield its base URL."""
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.fakes.openai_server",
            "--port",
            "0",
            "--responder",
            "tool_then_answer",
            "--tool",
            f"{SERVER_ID}__{TOOL}",
            "--arguments",
            json.dumps(TOOL_ARGUMENTS),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        match = re.search(r"(http://\S+/v1)", line)
        if match is None:
            raise RuntimeError(f"the fake model did not start: {line!r}")
        yield match.group(1)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=10)


async def measure(
    path: str, backend: str, concurrency: int, turns: int, run_turn: Callable[[int], Awaitable[None]]
) -> Result:
    latencies: list[float] = []
    queue: asyncio.Queue[int] = asyncio.Queue()
    for index in range(turns):
        queue.put_nowait(index)

    async def worker() -> None:
        while not queue.empty():
            index = queue.get_nowait()
            started = time.perf_counter()
            await run_turn(index)
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    async with asyncio.TaskGroup() as group:
        for _ in range(concurrency):
            group.create_task(worker())
    return Result(path, backend, concurrency, latencies, time.perf_counter() - started)


# --- the floor ---------------------------------------------------------------------------------------------------


async def floor_turn(client: openai.AsyncOpenAI, session: Client, tools: list[ChatCompletionToolParam]) -> None:
    messages: list[ChatCompletionMessageParam] = [{"role": "user", "content": PROMPT}]
    while True:
        stream = await client.chat.completions.create(
            model=DEFAULT_MODEL,
            messages=messages,
            tools=tools,
            stream=True,
        )
        content: list[str] = []
        calls: dict[int, dict[str, str]] = {}
        async for chunk in stream:
            if not chunk.choices:
                continue
            delta = chunk.choices[0].delta
            if delta.content:
                content.append(delta.content)
            for call in delta.tool_calls or ():
                slot = calls.setdefault(call.index, {"id": "", "name": "", "arguments": ""})
                if call.id:
                    slot["id"] = call.id
                if call.function and call.function.name:
                    slot["name"] += call.function.name
                if call.function and call.function.arguments:
                    slot["arguments"] += call.function.arguments
        if not calls:
            return
        messages.append(
            {
                "role": "assistant",
                "content": "".join(content) or None,
                "tool_calls": [
                    {"id": c["id"], "type": "function", "function": {"name": c["name"], "arguments": c["arguments"]}}
                    for c in calls.values()
                ],
            }
        )
        for call in calls.values():
            result = await session.call_tool(call["name"].split("__", 1)[1], json.loads(call["arguments"]))
            text = "\n".join(block.text for block in result.content if block.type == "text")
            messages.append({"role": "tool", "tool_call_id": call["id"], "content": text})


TurnFactory = Callable[[int], Awaitable[Callable[[int], Awaitable[None]]]]
"""Given a number of turns, prepare them (untimed) and return the function that runs turn ``i``."""


@contextlib.asynccontextmanager
async def floor_path(base_url: str) -> AsyncGenerator[TurnFactory]:
    client = openai.AsyncOpenAI(api_key=DEFAULT_API_KEY, base_url=base_url, max_retries=0)
    async with Client(tool_server()) as session:
        listed = await session.list_tools()
        tools: list[ChatCompletionToolParam] = [
            {
                "type": "function",
                "function": {
                    "name": f"{SERVER_ID}__{tool.name}",
                    "description": tool.description or "",
                    "parameters": tool.input_schema,
                },
            }
            for tool in listed.tools
        ]

        async def prepare(_count: int) -> Callable[[int], Awaitable[None]]:
            async def turn(_index: int) -> None:
                await floor_turn(client, session, tools)

            return turn

        yield prepare
    await client.close()


# --- the orchestrator ----------------------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def postgres_database(admin_url: str) -> AsyncGenerator[str]:
    """A fresh PostgreSQL database for one run, dropped afterwards."""
    name = f"bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(admin_url, pool_size=1, max_overflow=0).execution_options(isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as connection:
            await connection.execute(text(f'CREATE DATABASE "{name}"'))
        yield parse_database_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        async with admin.connect() as connection:
            await connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()


@contextlib.asynccontextmanager
async def orchestrator(base_url: str, database_url: str, data_dir: Path, *, memory: bool) -> AsyncGenerator[str]:
    """Start ``python -m orchestrator`` and wait until its tool server is connected; yield its URL."""
    servers_file = data_dir / "servers.json"
    servers_file.write_text(
        json.dumps(
            {
                "mcpServers": {
                    SERVER_ID: {
                        "command": sys.executable,
                        "args": ["-m", "tests.fakes.mcp_test_server", "--page-size", "0"],
                        "cwd": str(ROOT),
                    }
                }
            }
        )
    )
    port = free_port()
    env = {
        **os.environ,
        "OPENAI_BASE_URL": base_url,
        "OPENAI_API_KEY": DEFAULT_API_KEY,
        "OPENAI_MODEL": DEFAULT_MODEL,
        "DATABASE_URL": database_url,
        "DATA_DIR": str(data_dir),
        "MCP_CONFIG": str(servers_file),
        "MCP_BUILTIN_SERVERS": "false",
        "PORT": str(port),
        "LOG_LEVEL": "WARNING",
        "JWT_SECRET_KEY": "",
        # The rate limiter runs (its cost is part of every request) but never refuses the benchmark's turns.
        "RATE_LIMIT_PER_MINUTE": "100000000",
        "RATE_LIMIT_PER_HOUR": "100000000",
        # The floor keeps no long-term memory; --memory measures what recalling and saving memories adds to a turn.
        "MEMORY_ENABLED": "true" if memory else "false",
    }
    process = subprocess.Popen([sys.executable, "-m", "orchestrator"], cwd=data_dir, env=env)  # noqa: ASYNC220
    url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=url, timeout=5) as http:
            deadline = time.monotonic() + 60
            while True:
                if process.poll() is not None:
                    raise RuntimeError("the orchestrator exited during start-up")
                with contextlib.suppress(httpx.HTTPError):
                    servers = (await http.get("/api/servers")).json()
                    if any(s["id"] == SERVER_ID and s["status"] == "healthy" for s in servers):
                        break
                if time.monotonic() > deadline:
                    raise RuntimeError("the orchestrator did not become ready within 60 s")
                await asyncio.sleep(0.1)
        yield url
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


@contextlib.asynccontextmanager
async def orchestrator_path(url: str) -> AsyncGenerator[TurnFactory]:
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as http:

        async def new_conversation() -> str:
            response = await http.post("/api/conversations", json={"title": "bench"})
            response.raise_for_status()
            conversation_id: str = response.json()["id"]
            return conversation_id

        async def post_turn(conversation_id: str) -> None:
            response = await http.post(
                f"/api/conversations/{conversation_id}/messages",
                json={"content": PROMPT},
                headers={"Accept": "application/json"},
            )
            response.raise_for_status()
            reply = response.json()
            if reply["status"] != "complete" or len(reply["tool_calls"]) != 1:
                raise RuntimeError(f"unexpected reply: {reply}")

        async def prepare(count: int) -> Callable[[int], Awaitable[None]]:
            # Each turn gets a fresh conversation, made before the clock starts, so history never grows.
            conversations = [await new_conversation() for _ in range(count)]

            async def turn(index: int) -> None:
                await post_turn(conversations[index])

            return turn

        yield prepare


async def run_interleaved(
    paths: dict[tuple[str, str], TurnFactory], concurrencies: list[int], turns: int, rounds: int, warmup: int
) -> list[Result]:
    """Measure every path in alternating rounds, so drift on a noisy machine hits them all alike."""
    for prepare in paths.values():
        run = await prepare(warmup)
        for index in range(warmup):
            await run(index)
    results: list[Result] = []
    for concurrency in concurrencies:
        per_round = max(1, turns * max(1, concurrency // 4) // rounds)
        latencies: dict[tuple[str, str], list[float]] = {key: [] for key in paths}
        wall: dict[tuple[str, str], float] = dict.fromkeys(paths, 0.0)
        for round_index in range(rounds):
            keys = list(paths)
            keys = keys[round_index % len(keys) :] + keys[: round_index % len(keys)]
            for key in keys:
                run = await paths[key](per_round)
                result = await measure(key[0], key[1], concurrency, per_round, run)
                latencies[key] += result.latencies
                wall[key] += result.wall_seconds
        results += [Result(key[0], key[1], concurrency, latencies[key], wall[key]) for key in paths]
    return results


# --- report --------------------------------------------------------------------------------------------------------


def report(floor: list[Result], others: list[Result]) -> list[dict[str, Any]]:
    print(f"{'path':<13} {'backend':<9} {'conc':>4} {'turns':>6} {'p50 ms':>8} {'p99 ms':>8} {'turns/s':>8}")
    for result in [*floor, *others]:
        print(
            f"{result.path:<13} {result.backend:<9} {result.concurrency:>4} {len(result.latencies):>6} "
            f"{result.p50_ms:>8.2f} {result.p99_ms:>8.2f} {result.turns_per_second:>8.1f}"
        )
    floor_by_concurrency = {result.concurrency: result for result in floor}
    rows: list[dict[str, Any]] = []
    print()
    for result in others:
        base = floor_by_concurrency[result.concurrency]
        latency_ratio = result.p50_ms / base.p50_ms
        throughput_ratio = result.turns_per_second / base.turns_per_second
        if result.concurrency == 1:
            verdict = "ok" if latency_ratio <= 1.3 else "over target"
            print(f"{result.backend:<9} c=1   p50 ratio {latency_ratio:.2f}x the floor (target <= 1.30x): {verdict}")
        else:
            verdict = "ok" if throughput_ratio >= 0.77 else "under target"
            print(
                f"{result.backend:<9} c={result.concurrency:<3} throughput {throughput_ratio:.2f}x the floor "
                f"(target >= 0.77x): {verdict}"
            )
        rows.append(
            {
                "backend": result.backend,
                "concurrency": result.concurrency,
                "p50_ms": round(result.p50_ms, 3),
                "p99_ms": round(result.p99_ms, 3),
                "turns_per_second": round(result.turns_per_second, 1),
                "floor_p50_ms": round(base.p50_ms, 3),
                "floor_turns_per_second": round(base.turns_per_second, 1),
                "p50_ratio": round(latency_ratio, 3),
                "throughput_ratio": round(throughput_ratio, 3),
            }
        )
    return rows


async def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backends", nargs="+", choices=["sqlite", "postgres"], default=["sqlite", "postgres"])
    parser.add_argument("--concurrency", nargs="+", type=int, default=[1, 16])
    parser.add_argument("--turns", type=int, default=200, help="turns at concurrency 1 (x concurrency/4 above)")
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds per concurrency")
    parser.add_argument("--postgres", default=os.environ.get("BENCH_POSTGRES_URL", DEFAULT_POSTGRES))
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument(
        "--memory", action="store_true", help="turn long-term memory on (recall and save with the offline model)"
    )
    args = parser.parse_args(argv)

    with fake_model() as base_url, tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        async with contextlib.AsyncExitStack() as stack:
            paths: dict[tuple[str, str], TurnFactory] = {
                ("floor", "-"): await stack.enter_async_context(floor_path(base_url))
            }
            for backend in args.backends:
                data_dir = Path(tmp) / backend
                data_dir.mkdir()
                if backend == "sqlite":
                    database_url = f"sqlite+aiosqlite:///{data_dir / 'bench.db'}"
                else:
                    database_url = await stack.enter_async_context(postgres_database(args.postgres))
                url = await stack.enter_async_context(
                    orchestrator(base_url, database_url, data_dir, memory=args.memory)
                )
                paths[("orchestrator", backend)] = await stack.enter_async_context(orchestrator_path(url))
            results = await run_interleaved(paths, args.concurrency, args.turns, args.rounds, args.warmup)
    floor = [result for result in results if result.path == "floor"]
    others = [result for result in results if result.path != "floor"]
    rows = report(floor, others)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
