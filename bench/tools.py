"""Tool retrieval benchmark: recall, latency and the size of the tools payload, on the offline embedding model.

The catalogue (bench/tool_catalogue.py) holds 363 tools from 30 servers modelled on public MCP servers (GitHub,
GitLab, Slack, filesystem, PostgreSQL, SQLite, calendars, mail, Drive, Notion, Jira, Linear, Confluence, search,
fetch, a browser, a knowledge graph, git, time, Sentry, Stripe, S3, Kubernetes, Docker, weather, maps, Spotify,
Todoist, HubSpot, Zendesk) and 188 queries, each with the tools that answer it (any one counts as a hit).

It prints:

* recall@3/5/10 of the hybrid ranking the assistant uses (its dense weight first), of its two halves alone
  (embeddings, BM25 keywords), and of other dense weights;
* the latency of choosing one turn's tools (embedding the message and ranking) at 20, 100 and 500 tools;
* the size of the tools payload sent to the model with every tool and with retrieval (top-k plus search_tools);
* the CPU cost of encoding a request body with 500 tools every time against splicing the tools encoded once.

Targets: recall@5 >= 0.9, retrieval p99 <= 20 ms at 500 tools, a payload that stops growing with the tools.

    python bench/tools.py
    python bench/tools.py --queries 20 --sizes 20 100 --json figures.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.tool_catalogue import QUERIES, SERVERS  # noqa: E402
from orchestrator.embeddings.local import LocalEmbedder  # noqa: E402
from orchestrator.llm.tools import encode_json, tool_definitions  # noqa: E402
from orchestrator.mcp.types import ToolSpec  # noqa: E402
from orchestrator.memory.types import MessageRecord  # noqa: E402
from orchestrator.tools.catalogue import ToolIndex  # noqa: E402
from orchestrator.tools.selection import DENSE_WEIGHT, SelectionPolicy, ToolSelector, rank  # noqa: E402

TOP_K = 10
KS = (3, 5, 10)


def catalogue_specs(size: int | None = None) -> list[ToolSpec]:
    """The catalogue's tools; past its size, copies under other server ids ("github_2"), as a big install has."""
    specs: list[ToolSpec] = []
    copy = 1
    while size is None or len(specs) < size:
        suffix = "" if copy == 1 else f"_{copy}"
        for server, tools in SERVERS.items():
            for tool, description, parameters in tools:
                properties = {name: {"type": "string", "description": text} for name, text in parameters.items()}
                specs.append(
                    ToolSpec(
                        name=f"{server}{suffix}__{tool}",
                        server_id=f"{server}{suffix}",
                        tool=tool,
                        description=description,
                        input_schema={"type": "object", "properties": properties, "required": list(parameters)[:1]},
                    )
                )
        if size is None:
            break
        copy += 1
    return specs if size is None else specs[:size]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def user_message(text: str) -> MessageRecord:
    return MessageRecord("m", "c", 1, "user", text, "complete", datetime.now(UTC))


async def recall(index: ToolIndex, queries: list[tuple[str, list[str]]]) -> dict[str, dict[int, float]]:
    specs = catalogue_specs()
    catalogue = await index.catalogue(specs)
    weights = {f"hybrid {DENSE_WEIGHT:.1f}": DENSE_WEIGHT, "embeddings": 1.0, "keywords": 0.0}
    weights.update({f"hybrid {weight:.1f}": weight for weight in (0.5, 0.6, 0.8) if weight != DENSE_WEIGHT})
    hits: dict[str, dict[int, int]] = {name: dict.fromkeys(KS, 0) for name in weights}
    for query, expected in queries:
        vector = await index.embed_query(query)
        tokens = index.tokens(query)
        for name, weight in weights.items():
            order = rank(catalogue, vector, tokens, dense_weight=weight)
            found = [catalogue.specs[int(i)].name for i in order[: max(KS)]]
            for k in KS:
                hits[name][k] += any(tool in found[:k] for tool in expected)
    return {name: {k: count / len(queries) for k, count in counts.items()} for name, counts in hits.items()}


async def latency(embedder: LocalEmbedder, size: int, queries: list[str]) -> dict[str, float]:
    """One fresh turn per query: embed its message (no cache) and choose its tools from ``size`` tools."""
    specs = catalogue_specs(size)
    selector = ToolSelector(ToolIndex(embedder), SelectionPolicy(top_k=TOP_K, min_tools=TOP_K))
    await selector.index.catalogue(specs)  # built once per tool set (the warmer does it in the service)
    timings: list[float] = []
    offered_bytes = 0
    for query in queries:
        started = time.perf_counter()
        offered = await selector.for_turn([], user_message(query)).offer(specs)
        timings.append(time.perf_counter() - started)
        offered_bytes = max(offered_bytes, len(offered.definitions.json()))
    return {
        "tools": size,
        "p50_ms": statistics.median(timings) * 1000,
        "p99_ms": percentile(timings, 0.99) * 1000,
        "all_tools_bytes": len(tool_definitions(specs).json()),
        "offered_bytes": offered_bytes,
    }


def encoding_cost(size: int, repeats: int) -> dict[str, float]:
    """CPU per request body with ``size`` tools: encoding everything each time vs splicing tools encoded once."""
    specs = catalogue_specs(size)
    definitions = tool_definitions(specs)
    body: dict[str, Any] = {"model": "m", "stream": True, "messages": [{"role": "user", "content": "hello"}] * 20}
    started = time.perf_counter()
    for _ in range(repeats):
        encode_json({**body, "tools": list(definitions)})
    every_time = (time.perf_counter() - started) / repeats
    started = time.perf_counter()
    for _ in range(repeats):
        spliced_body = encode_json(body)[:-1] + b',"tools":' + definitions.json() + b"}"
        assert spliced_body.endswith(b"}")
    spliced = (time.perf_counter() - started) / repeats
    return {"tools": size, "encode_every_request_ms": every_time * 1000, "spliced_ms": spliced * 1000}


async def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--queries", type=int, default=len(QUERIES), help="how many of the queries to evaluate")
    parser.add_argument("--sizes", type=int, nargs="+", default=[20, 100, 500])
    parser.add_argument("--threads", type=int, default=1, help="the embedding model's threads")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    queries = QUERIES[: args.queries]

    embedder = LocalEmbedder(threads=args.threads)
    try:
        index = ToolIndex(embedder)
        started = time.perf_counter()
        await index.catalogue(catalogue_specs())
        build_seconds = time.perf_counter() - started
        recalls = await recall(index, queries)
        latencies = [await latency(embedder, size, [q for q, _ in queries]) for size in args.sizes]
    finally:
        await embedder.aclose()
    encodings = [encoding_cost(size, 20) for size in args.sizes]

    tools = sum(len(t) for t in SERVERS.values())
    print(f"catalogue: {tools} tools from {len(SERVERS)} servers, {len(queries)} queries")
    print(f"index built (every tool embedded) in {build_seconds:.2f} s\n")
    print("ranking       recall@3  recall@5  recall@10")
    for name, values in recalls.items():
        print(f"{name:<12} {values[3]:>9.3f} {values[5]:>9.3f} {values[10]:>10.3f}")
    print(f"(the assistant ranks with hybrid {DENSE_WEIGHT:.1f})")
    print(f"\nchoosing a turn's tools (embed the message + rank; top_k={TOP_K}, plus search_tools)")
    print("tools   p50 ms   p99 ms   payload all tools   payload with retrieval")
    for row in latencies:
        print(
            f"{row['tools']:>5} {row['p50_ms']:>8.2f} {row['p99_ms']:>8.2f} "
            f"{row['all_tools_bytes']:>16,} B {row['offered_bytes']:>21,} B"
        )
    print("\nrequest body with every tool: encoded every request vs tools encoded once and spliced")
    for row in encodings:
        print(f"{row['tools']:>5} tools: {row['encode_every_request_ms']:.3f} ms vs {row['spliced_ms']:.3f} ms")
    recall5 = recalls[f"hybrid {DENSE_WEIGHT:.1f}"][5]
    print(f"\nrecall@5 {recall5:.3f} (target >= 0.90): {'ok' if recall5 >= 0.9 else 'under target'}")
    biggest = latencies[-1]
    verdict = "ok" if biggest["p99_ms"] <= 20 else "over target"
    print(f"retrieval p99 at {biggest['tools']} tools {biggest['p99_ms']:.2f} ms (target <= 20 ms): {verdict}")
    if args.json:
        figures = {"recall": recalls, "latency": latencies, "encoding": encodings, "build_seconds": build_seconds}
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
