"""What the monitoring tests need to know of PromQL and of the metrics the services export."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

from prometheus_client import REGISTRY

import frontend.telemetry
import orchestrator.telemetry.http
import orchestrator.telemetry.metrics

MONITORING = Path(__file__).resolve().parents[2] / "monitoring"
# Imported for the metrics they define: the orchestrator's, and the HTTP ones both services share.
METRIC_MODULES = (orchestrator.telemetry.metrics, orchestrator.telemetry.http, frontend.telemetry)
# Series Prometheus makes itself for every target.
SCRAPE_SERIES = frozenset({"up", "scrape_duration_seconds", "scrape_samples_scraped"})
_SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "summary": ("", "_count", "_sum", "_created"),
    "gauge": ("",),
    "info": ("_info",),
}
# PromQL's functions, aggregations and keywords.
_NOT_METRICS = frozenset(
    {
        "sum",
        "min",
        "max",
        "avg",
        "count",
        "stddev",
        "stdvar",
        "topk",
        "bottomk",
        "quantile",
        "count_values",
        "group",
        "rate",
        "irate",
        "increase",
        "delta",
        "idelta",
        "deriv",
        "predict_linear",
        "histogram_quantile",
        "abs",
        "ceil",
        "floor",
        "round",
        "clamp",
        "clamp_min",
        "clamp_max",
        "label_replace",
        "label_join",
        "vector",
        "scalar",
        "time",
        "absent",
        "absent_over_time",
        "avg_over_time",
        "max_over_time",
        "min_over_time",
        "sum_over_time",
        "count_over_time",
        "changes",
        "resets",
        "sort",
        "sort_desc",
        "exp",
        "ln",
        "log2",
        "log10",
        "sqrt",
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
        "and",
        "or",
        "unless",
        "bool",
        "offset",
        "inf",
        "nan",
    }
)
_IDENTIFIER = re.compile(r"(?<![\w.])[A-Za-z_:][A-Za-z0-9_:]*")  # not the unit of a duration or number


def exported_metrics() -> frozenset[str]:
    """Every series name the services' registry can expose (a counter ``x`` as ``x_total`` ...)."""
    names: set[str] = set()
    for family in REGISTRY.collect():
        names.update(family.name + suffix for suffix in _SUFFIXES.get(family.type, ("",)))
    return frozenset(names)


def metric_names(expression: str) -> set[str]:
    """The metric names an expression selects (labels, functions, keywords and durations left out)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', " ", expression)
    text = re.sub(r"\{[^}]*\}", " ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    return {name for name in _IDENTIFIER.findall(text) if name not in _NOT_METRICS}


def promtool() -> str:
    found = shutil.which("promtool")
    assert found, "promtool is missing: run `make system-packages` (Debian's prometheus package)"
    return found


def run_promtool(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([promtool(), *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False)
