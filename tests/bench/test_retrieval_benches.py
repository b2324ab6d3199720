"""The tool retrieval and memory benchmarks run end to end and print their figures (smoke runs: tiny counts)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=300, check=False
    )


def test_the_tool_retrieval_benchmark_prints_recall_latency_and_payload_sizes(tmp_path: Path) -> None:
    figures = tmp_path / "tools.json"

    result = run("bench/tools.py", "--queries", "12", "--sizes", "20", "100", "--json", str(figures))

    assert result.returncode == 0, result.stderr[-2000:]
    assert "recall@5" in result.stdout
    assert "retrieval p99 at 100 tools" in result.stdout
    data = json.loads(figures.read_text())
    assert [row["tools"] for row in data["latency"]] == [20, 100]
    assert all(0 <= value <= 1 for values in data["recall"].values() for value in values.values())
    small, large = data["latency"]
    assert large["all_tools_bytes"] > small["all_tools_bytes"]
    assert large["offered_bytes"] < large["all_tools_bytes"]


def test_the_memory_benchmark_prints_insert_throughput_and_search_percentiles(tmp_path: Path) -> None:
    figures = tmp_path / "memory.json"

    result = run(
        "bench/memory.py",
        *("--memories", "1000", "--users", "10", "--searches", "50", "--compare-memories", "200"),
        *("--json", str(figures)),
    )

    assert result.returncode == 0, result.stderr[-2000:]
    assert "filtered search p99" in result.stdout
    data = json.loads(figures.read_text())
    assert [row["memories"] for row in data["stores"]] == [1000, 200, 200]
    assert all(row["inserts_per_second"] > 0 and row["search_p99_ms"] > 0 for row in data["stores"])
