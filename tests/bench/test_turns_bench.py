"""The turn benchmark runs end to end and prints its figures (a smoke run: tiny counts, no targets checked)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.postgres
def test_the_turn_benchmark_prints_latency_throughput_and_ratios(tmp_path: Path) -> None:
    figures = tmp_path / "figures.json"

    result = subprocess.run(
        [
            sys.executable,
            "bench/turns.py",
            *("--backends", "sqlite", "postgres"),
            *("--turns", "8", "--warmup", "2", "--rounds", "2", "--concurrency", "1", "4"),
            *("--json", str(figures)),
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert result.returncode == 0, result.stderr[-2000:]
    assert "p50 ratio" in result.stdout
    assert "throughput" in result.stdout
    rows = json.loads(figures.read_text())
    assert {(row["backend"], row["concurrency"]) for row in rows} == {
        ("sqlite", 1),
        ("sqlite", 4),
        ("postgres", 1),
        ("postgres", 4),
    }
    assert all(row["p50_ms"] > 0 and row["turns_per_second"] > 0 for row in rows)
