"""The orchestrator's own Prometheus metrics: the model, MCP tools and servers, streams, the database pool.

Gauges say how to add up across worker processes in multiprocess mode (``livesum``: a total over the live workers;
``livemax``: up if up in any worker).
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from orchestrator.telemetry.http import LATENCY_BUCKETS

OPENAI_TOKENS = Counter(
    "openai_tokens_used_total",
    "Tokens the model endpoint reported, by model and type (prompt, completion).",
    ["model", "type"],
)
LLM_REQUEST_DURATION = Histogram(
    "llm_request_duration_seconds",
    "Seconds per model call (one streamed step), by model and outcome (ok, error, cancelled).",
    ["model", "outcome"],
    buckets=LATENCY_BUCKETS,
)
MCP_TOOL_CALLS = Counter(
    "mcp_tool_calls_total",
    "MCP tool calls, by server, tool and outcome (ok, tool_error, failed, timeout, unavailable).",
    ["server", "tool", "outcome"],
)
MCP_TOOL_CALL_DURATION = Histogram(
    "mcp_tool_call_duration_seconds",
    "Seconds per MCP tool call, by server, tool and outcome.",
    ["server", "tool", "outcome"],
    buckets=LATENCY_BUCKETS,
)
MCP_SERVER_UP = Gauge(
    "mcp_server_up", "1 when the MCP server is connected and healthy, else 0.", ["server"], multiprocess_mode="livemax"
)
ACTIVE_STREAMS = Gauge(
    "active_streams", "Chat replies being streamed to clients right now.", multiprocess_mode="livesum"
)
TOKEN_QUOTA_EXCEEDED = Counter(
    "token_quota_exceeded_total", "Turns ended because the user's daily token quota was spent."
)
DB_POOL_SIZE = Gauge(
    "db_pool_size", "Connections the database pool keeps open (its configured size).", multiprocess_mode="livesum"
)
DB_POOL_CHECKED_OUT = Gauge(
    "db_pool_checked_out", "Database connections in use right now.", multiprocess_mode="livesum"
)
DB_POOL_OVERFLOW = Gauge(
    "db_pool_overflow", "Database connections open beyond the pool size right now.", multiprocess_mode="livesum"
)
DB_POOL_CAPACITY = Gauge(
    "db_pool_capacity", "Most database connections the pool may open (size plus overflow).", multiprocess_mode="livesum"
)
