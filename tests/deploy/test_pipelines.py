"""The GitHub workflows and the GitLab pipeline: linted, schema-valid, and running what .ci/run runs."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any, cast

import pytest
import yaml

from tests.deploy.support import REPO_ROOT, tool

WORKFLOWS = REPO_ROOT / ".github" / "workflows"
IMAGES = sorted(path.name.removesuffix(".Dockerfile") for path in (REPO_ROOT / "docker").glob("*.Dockerfile"))
CI_PARTS = {"lint", "typecheck", "test"}


def load(path: Path) -> dict[str, Any]:
    return cast(dict[str, Any], yaml.safe_load(path.read_text()))


def run_commands(job: dict[str, Any]) -> list[str]:
    steps = cast(list[dict[str, Any]], job.get("steps", []))
    return [str(step["run"]) for step in steps if "run" in step]


def test_actionlint_finds_nothing_in_the_workflows() -> None:
    result = subprocess.run(
        [tool("actionlint"), "-oneline"], cwd=REPO_ROOT, capture_output=True, text=True, check=False
    )

    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("schema", "files"),
    [
        ("vendor.github-workflows", sorted(str(path) for path in WORKFLOWS.glob("*.yml"))),
        ("vendor.gitlab-ci", [str(REPO_ROOT / ".gitlab-ci.yml")]),
    ],
    ids=["github", "gitlab"],
)
def test_the_pipelines_follow_their_schema(schema: str, files: list[str]) -> None:
    result = subprocess.run(
        [tool("check-jsonschema"), "--builtin-schema", schema, *files], capture_output=True, text=True, check=False
    )

    assert result.returncode == 0, result.stdout + result.stderr


def test_github_ci_runs_every_part_of_ci_run_with_postgres_and_redis() -> None:
    jobs = cast(dict[str, dict[str, Any]], load(WORKFLOWS / "ci.yml")["jobs"])
    parts = {
        command.split()[1] for job in jobs.values() for command in run_commands(job) if command.startswith(".ci/run")
    }

    assert parts == CI_PARTS
    services = jobs["test"]["services"]
    assert services["postgres"]["image"] == "postgres:15"
    assert services["postgres"]["ports"] == ["5432:5432"]
    assert services["redis"]["ports"] == ["6379:6379"]


def test_gitlab_runs_the_same_parts_and_stages() -> None:
    pipeline = load(REPO_ROOT / ".gitlab-ci.yml")
    jobs = [cast(dict[str, Any], job) for job in pipeline.values() if isinstance(job, dict) and "stage" in job]
    parts = {
        line.split()[1] for job in jobs for line in cast(list[str], job.get("script", [])) if line.startswith(".ci/run")
    }

    assert parts == CI_PARTS
    assert pipeline["stages"] == ["lint", "test", "build", "deploy"]
    assert pipeline["images"]["parallel"]["matrix"] == [{"IMAGE": IMAGES}]
    assert pipeline["deploy-production"]["rules"][0]["when"] == "manual"
    assert pipeline["deploy-production"]["needs"] == ["deploy-staging"]


def test_images_are_built_from_every_dockerfile_after_ci_passes() -> None:
    workflow = load(WORKFLOWS / "images.yml")
    build = workflow["jobs"]["build"]

    assert workflow["jobs"]["ci"]["uses"] == "./.github/workflows/ci.yml"
    assert build["needs"] == "ci"
    assert sorted(build["strategy"]["matrix"]["image"]) == IMAGES
    assert build["permissions"]["packages"] == "write"


def test_production_is_deployed_after_staging_through_its_own_environment() -> None:
    jobs = load(WORKFLOWS / "deploy.yml")["jobs"]

    assert jobs["staging"]["environment"]["name"] == "staging"
    assert jobs["production"]["environment"]["name"] == "production"
    assert jobs["production"]["needs"] == "staging"
    for job in ("staging", "production"):
        commands = run_commands(jobs[job])
        assert "scripts/helm_deploy.sh" in commands
        assert any("scripts/verify_deployment.sh" in command for command in commands)


def test_ci_run_refuses_an_unknown_part() -> None:
    result = subprocess.run(
        ["bash", str(REPO_ROOT / ".ci" / "run"), "everything"], capture_output=True, text=True, check=False
    )

    assert result.returncode == 2
    assert "usage" in result.stderr
