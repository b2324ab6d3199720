"""k8s/: generated from the chart and up to date, built by kustomize into what the chart renders, and valid."""

from __future__ import annotations

import copy
import shutil
import subprocess
from pathlib import Path
from typing import Any, cast

import kubernetes_validate  # pyright: ignore[reportMissingTypeStubs]
import pytest
import yaml

from tests.deploy.support import KUBERNETES_VERSIONS, REPO_ROOT, Manifest, load_values, render, run_script, tool

K8S = REPO_ROOT / "k8s"
BASE = K8S / "base"
PRODUCTION = K8S / "overlays" / "production"


def test_k8s_is_what_the_generator_writes_from_the_chart() -> None:
    check = run_script("scripts/generate_k8s_manifests.py", "--check")

    assert (check.returncode, check.stderr) == (0, "")


def test_the_check_notices_a_hand_edited_manifest(tmp_path: Path) -> None:
    copy_root = tmp_path / "repo"
    for folder in ("scripts", "helm", "k8s"):
        shutil.copytree(REPO_ROOT / folder, copy_root / folder)
    edited = copy_root / "k8s" / "base" / "deployment-orchestrator.yaml"
    edited.write_text(edited.read_text().replace("replicas: 1", "replicas: 3"))

    check = run_script("scripts/generate_k8s_manifests.py", "--check", cwd=copy_root)

    assert check.returncode == 1
    assert "k8s/base/deployment-orchestrator.yaml: differs" in check.stderr


@pytest.mark.parametrize("overlay", [BASE, PRODUCTION], ids=["base", "production"])
def test_kustomize_builds_objects_that_validate(overlay: Path) -> None:
    manifests = kustomize(overlay)

    assert len(manifests) > 20
    for manifest in manifests:
        assert manifest["metadata"].get("namespace", "assistant") == "assistant"
        for version in KUBERNETES_VERSIONS:
            kubernetes_validate.validate(manifest, version, strict=True)


def test_the_production_overlay_builds_what_the_chart_renders_with_production_values() -> None:
    values = _merge(load_values(BASE / "chart-values.yaml") or {}, load_values(PRODUCTION / "chart-values.yaml") or {})
    expected = {
        _key(manifest): _comparable(manifest)
        for manifest in render(values, name="ai-assistant", namespace="assistant")
        if manifest["kind"] != "Secret" and "helm.sh/hook" not in manifest["metadata"].get("annotations", {})
    }

    built = {_key(manifest): _comparable(manifest) for manifest in kustomize(PRODUCTION)}

    assert built.keys() == expected.keys()
    assert built == expected


# --- building -------------------------------------------------------------------------------------------------------


def kustomize(overlay: Path) -> list[Manifest]:
    """``kubectl kustomize`` (kubectl is on the machines that run the tests; see docs/deployment.md)."""
    output = subprocess.run([tool("kubectl"), "kustomize", str(overlay)], capture_output=True, text=True, check=True)
    return [cast(Manifest, document) for document in yaml.safe_load_all(output.stdout) if document]


# --- comparing ------------------------------------------------------------------------------------------------------


def _key(manifest: Manifest) -> tuple[str, str]:
    return manifest["kind"], manifest["metadata"]["name"]


def _comparable(manifest: Manifest) -> Manifest:
    """Without what only one side adds: Helm's and kustomize's labels and annotations, the namespace."""
    cleaned = copy.deepcopy(manifest)
    _clean(cleaned)
    return cleaned


def _clean(node: Any) -> None:
    if isinstance(node, dict):
        mapping = cast(dict[str, Any], node)
        metadata = mapping.get("metadata")
        if isinstance(metadata, dict):
            fields = cast(dict[str, Any], metadata)
            fields.pop("namespace", None)
            for key in ("labels", "annotations"):
                current = cast(dict[str, str], fields.get(key) or {})
                entries = {
                    name: value
                    for name, value in current.items()
                    if not name.startswith("helm.sh/") and name != "app.kubernetes.io/managed-by"
                }
                if entries:
                    fields[key] = entries
                else:
                    fields.pop(key, None)
        for value in mapping.values():
            _clean(value)
    elif isinstance(node, list):
        for item in cast(list[Any], node):
            _clean(item)


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(merged.get(key), dict) and isinstance(value, dict):
            merged[key] = _merge(cast(dict[str, Any], merged[key]), cast(dict[str, Any], value))
        else:
            merged[key] = value
    return merged
