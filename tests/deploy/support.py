"""Shared by the deployment tests: the repository's paths, the development tools, the chart rendered."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Final, cast

import helm_python as helm
import pytest
import yaml

from frontend.settings import FrontendSettings
from frontend.settings import load_settings as load_frontend_settings
from orchestrator.settings import Settings, load_settings

REPO_ROOT: Final = Path(__file__).resolve().parents[2]
CHART: Final = REPO_ROOT / "helm" / "ai-assistant"
CI_VALUES: Final = sorted((CHART / "ci").glob("*.yaml"))
KUBERNETES_VERSIONS: Final = ("1.25.0", "1.37.0")
"""The oldest Kubernetes the chart supports (Chart.yaml kubeVersion) and the newest schema bundled."""

Manifest = dict[str, Any]


def tool(name: str) -> str:
    """A command-line tool installed by the development extra (next to this Python), else from PATH.

    Raises:
        FileNotFoundError: it is in neither place (run ``make install-dev``).
    """
    beside = Path(sys.executable).parent / name
    if beside.is_file():
        return str(beside)
    found = shutil.which(name)
    if found is None:
        raise FileNotFoundError(f"{name} is not installed: run make install-dev")
    return found


def load_values(path: Path | None) -> dict[str, Any] | None:
    return None if path is None else cast(dict[str, Any], yaml.safe_load(path.read_text()))


def render(
    values: Mapping[str, Any] | None = None, *, name: str = "assistant", namespace: str = "assistant"
) -> list[Manifest]:
    """Every object the chart renders for ``values`` (NOTES.txt left out).

    Raises:
        helm.HelmError: the values are refused (schema or a ``fail`` in a template).
    """
    with helm.Chart.load(CHART) as chart:
        rendered = chart.render(dict(values) if values is not None else None, name=name, namespace=namespace)
    return [
        cast(Manifest, document)
        for template, text in sorted(rendered.items())
        if template.endswith(".yaml")
        for document in yaml.safe_load_all(text)
        if document
    ]


def pod_specs(manifests: list[Manifest]) -> Iterator[tuple[str, Manifest]]:
    """``(object name, pod spec)`` of every workload."""
    for manifest in manifests:
        spec = manifest.get("spec", {})
        if manifest["kind"] in ("Deployment", "StatefulSet", "Job"):
            yield manifest["metadata"]["name"], spec["template"]["spec"]
        elif manifest["kind"] == "CronJob":
            yield manifest["metadata"]["name"], spec["jobTemplate"]["spec"]["template"]["spec"]


def find(manifests: list[Manifest], kind: str, name: str) -> Manifest:
    matches = [m for m in manifests if m["kind"] == kind and m["metadata"]["name"] == name]
    assert len(matches) == 1, f"expected one {kind} {name}, found {len(matches)}"
    return matches[0]


def env_of(container: Manifest) -> dict[str, Any]:
    """A container's environment: name -> value, or the valueFrom mapping."""
    return {item["name"]: item.get("value", item.get("valueFrom")) for item in container.get("env", [])}


def run_script(*arguments: str, cwd: Path = REPO_ROOT) -> subprocess.CompletedProcess[str]:
    """``python <arguments>`` from ``cwd``, output captured, whatever its exit status."""
    return subprocess.run([sys.executable, *arguments], cwd=cwd, capture_output=True, text=True, check=False)


# Variables read outside the settings classes: prometheus_client's directory, and the passwords Kubernetes puts into
# DATABASE_URL and REDIS_URL.
PROCESS_VARIABLES: Final = frozenset({"PROMETHEUS_MULTIPROC_DIR", "POSTGRES_PASSWORD", "REDIS_PASSWORD"})
# What the orchestrator's sign-ins to OAuth-protected MCP servers need: the key their tokens are sealed with, and the
# public address their callback is under.
OAUTH_SIGN_IN_VARIABLES: Final = frozenset({"TOKEN_ENCRYPTION_KEY", "PUBLIC_URL"})


def unread_variables(
    orchestrator: Mapping[str, str], frontend: Mapping[str, str], monkeypatch: pytest.MonkeyPatch
) -> dict[str, set[str]]:
    """The variables of each service's environment that it does not read, once both have accepted theirs.

    Raises:
        ConfigurationError: a service refuses its environment (the orchestrator's or the frontend's).
    """
    fields = {name.upper() for name in (*Settings.model_fields, *FrontendSettings.model_fields)}
    for environment, load in ((orchestrator, load_settings), (frontend, load_frontend_settings)):
        # Read from the environment as the service reads it (an empty value counts as unset, for instance).
        with monkeypatch.context() as patch:
            for name in fields:
                patch.delenv(name, raising=False)
            for name, value in environment.items():
                patch.setenv(name, value)
            load(_env_file=None)
    orchestrator_reads = {name.upper() for name in Settings.model_fields} | PROCESS_VARIABLES | OAUTH_SIGN_IN_VARIABLES
    frontend_reads = {name.upper() for name in FrontendSettings.model_fields} | PROCESS_VARIABLES
    return {"orchestrator": set(orchestrator) - orchestrator_reads, "frontend": set(frontend) - frontend_reads}
