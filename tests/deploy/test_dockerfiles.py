"""The images' Dockerfiles: hadolint finds nothing; two stages, a non-root user, a health check, no secrets."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from tests.deploy.support import REPO_ROOT, tool

DOCKER = REPO_ROOT / "docker"
DOCKERFILES = sorted(DOCKER.glob("*.Dockerfile"))


def instructions(dockerfile: Path) -> list[tuple[str, str]]:
    """``(INSTRUCTION, arguments)`` pairs, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", dockerfile.read_text())
    pairs: list[tuple[str, str]] = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            keyword, _, rest = stripped.partition(" ")
            pairs.append((keyword.upper(), rest.strip()))
    return pairs


def final_stage(dockerfile: Path) -> list[tuple[str, str]]:
    steps = instructions(dockerfile)
    last_from = max(index for index, (keyword, _) in enumerate(steps) if keyword == "FROM")
    return steps[last_from:]


def test_there_is_an_image_for_each_service() -> None:
    assert [path.name for path in DOCKERFILES] == [
        "frontend.Dockerfile",
        "mcp-servers.Dockerfile",
        "orchestrator.Dockerfile",
    ]


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda path: path.name)
def test_hadolint_finds_nothing(dockerfile: Path) -> None:
    result = subprocess.run([tool("hadolint"), str(dockerfile)], capture_output=True, text=True, check=False)

    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda path: path.name)
def test_the_runtime_stage_is_separate_unprivileged_and_checked(dockerfile: Path) -> None:
    stages = [arguments for keyword, arguments in instructions(dockerfile) if keyword == "FROM"]
    runtime = final_stage(dockerfile)
    users = [arguments for keyword, arguments in runtime if keyword == "USER"]

    assert len(stages) == 2
    assert stages[0].endswith("AS build")
    assert ("COPY", "--from=build /opt/venv /opt/venv") in runtime
    assert users == ["10001:10001"]
    assert any(keyword == "HEALTHCHECK" for keyword, _ in runtime)
    assert runtime[-1][0] == "CMD"


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda path: path.name)
def test_no_secret_is_baked_into_an_image(dockerfile: Path) -> None:
    for keyword, arguments in instructions(dockerfile):
        if keyword in ("ENV", "ARG"):
            assert not re.search(r"(SECRET|PASSWORD|TOKEN|API_KEY)\w*=", arguments), arguments
        if keyword == "COPY":
            assert ".env" not in arguments.split()


def test_the_build_context_leaves_out_everything_but_the_sources() -> None:
    rules = [
        line.strip()
        for line in (REPO_ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]

    assert rules[0] == "*"
    assert "!.env" not in rules
    assert {"!orchestrator/", "!frontend/", "!mcp_servers/", "!pyproject.toml"} <= set(rules)


def test_the_orchestrator_image_has_the_local_embedding_model_as_make_install_installs_it() -> None:
    makefile = (REPO_ROOT / "Makefile").read_text()
    found = re.search(r"^NO_DEPS_PACKAGES := (.+)$", makefile, re.MULTILINE)
    assert found
    runs = " ".join(
        arguments for keyword, arguments in instructions(DOCKER / "orchestrator.Dockerfile") if keyword == "RUN"
    )

    assert '".[orchestrator,mcp-servers]"' in runs
    for package in found[1].split():
        assert f"pip install --no-deps {package}" in runs
