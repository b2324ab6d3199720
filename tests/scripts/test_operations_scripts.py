"""Every operations script explains itself with --help; helm_deploy.sh runs the Helm upgrade it promises."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.process import REPO_ROOT

SCRIPTS = REPO_ROOT / "scripts"
HELP = [
    [sys.executable, "scripts/init_db.py"],
    [sys.executable, "scripts/migrate.py"],
    [sys.executable, "scripts/generate_k8s_manifests.py"],
    [sys.executable, "scripts/helm_values_reference.py"],
    ["scripts/backup.sh"],
    ["scripts/restore.sh"],
    ["scripts/verify_deployment.sh"],
    ["scripts/helm_deploy.sh"],
    ["scripts/compose-secrets.sh"],
]


@pytest.mark.parametrize("command", HELP, ids=lambda command: Path(command[-1]).name)
def test_help_says_how_to_use_the_script(command: list[str]) -> None:
    result = subprocess.run([*command, "--help"], cwd=REPO_ROOT, capture_output=True, text=True, check=False)

    assert result.returncode == 0, result.stderr
    assert len(result.stdout.splitlines()) >= 3


def fake_helm(tmp_path: Path, *, fails: bool = False) -> Path:
    """A ``helm`` that records each command line in calls.txt, and fails the upgrade when asked."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    helm = bin_dir / "helm"
    helm.write_text(
        "#!/bin/sh\n"
        f'printf "%s\\n" "$*" >> "{tmp_path}/calls.txt"\n'
        f'[ "$1" = upgrade ] && [ "{int(fails)}" = 1 ] && exit 1\n'
        'echo "KUBECONFIG=$KUBECONFIG" >> "' + str(tmp_path) + '/calls.txt"\n'
        "exit 0\n"
    )
    helm.chmod(0o755)
    return bin_dir


def deploy(tmp_path: Path, bin_dir: Path, **environment: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SCRIPTS / "helm_deploy.sh")],
        env={"PATH": f"{bin_dir}:{os.environ['PATH']}", "HOME": str(tmp_path), **environment},
        capture_output=True,
        text=True,
        check=False,
    )


def test_helm_deploy_upgrades_the_release_with_the_version_of_every_image(tmp_path: Path) -> None:
    result = deploy(
        tmp_path, fake_helm(tmp_path), VERSION="0a1b2c", OWNER="Example-Org", KUBECONFIG_CONTENT="apiVersion: v1"
    )

    calls = (tmp_path / "calls.txt").read_text().splitlines()
    assert result.returncode == 0, result.stderr
    upgrade = calls[0].split()
    assert upgrade[:4] == ["upgrade", "--install", "assistant", str(REPO_ROOT / "helm" / "ai-assistant")]
    for image in ("orchestrator", "frontend"):
        assert f"{image}.image.repository=example-org/{image}" in upgrade
        assert f"{image}.image.tag=0a1b2c" in upgrade
    assert "mcpServers.image.tag=0a1b2c" in upgrade
    assert "--wait" in upgrade
    kubeconfig = calls[1].removeprefix("KUBECONFIG=")
    assert kubeconfig != ""
    assert not Path(kubeconfig).exists()  # the credentials do not outlive the run


def test_helm_deploy_rolls_back_a_release_that_does_not_become_ready(tmp_path: Path) -> None:
    result = deploy(tmp_path, fake_helm(tmp_path, fails=True), VERSION="0a1b2c", OWNER="org")

    calls = (tmp_path / "calls.txt").read_text().splitlines()
    assert result.returncode == 1
    assert calls[1].startswith("rollback assistant 0 --namespace assistant")


def test_helm_deploy_needs_a_version(tmp_path: Path) -> None:
    result = deploy(tmp_path, fake_helm(tmp_path), OWNER="org")

    assert result.returncode != 0
    assert "VERSION" in result.stderr
