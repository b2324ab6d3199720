"""A tool's policy: its annotations by default, the most specific override otherwise."""

from __future__ import annotations

from typing import Any

import pytest

from orchestrator.approvals.policy import PolicyRule, Roles, annotation_policy, resolve_policy
from orchestrator.mcp.types import ToolPolicy, ToolPolicyConfig, ToolSpec


def spec(tool: str = "delete_file", server_id: str = "files", **annotations: Any) -> ToolSpec:
    return ToolSpec(
        name=f"{server_id}__{tool}",
        server_id=server_id,
        tool=tool,
        description="",
        input_schema={"type": "object"},
        annotations=annotations or None,
    )


@pytest.mark.parametrize(
    ("annotations", "expected"),
    [
        pytest.param({"readOnlyHint": True}, "run", id="read-only"),
        pytest.param({}, "ask", id="no annotations: destructive and open-world by default"),
        pytest.param({"readOnlyHint": False, "destructiveHint": True}, "ask", id="destructive"),
        pytest.param({"destructiveHint": False}, "ask", id="open-world by default"),
        pytest.param({"destructiveHint": False, "openWorldHint": True}, "ask", id="open-world"),
        pytest.param(
            {"readOnlyHint": False, "destructiveHint": False, "openWorldHint": False}, "run", id="a local change"
        ),
    ],
)
def test_read_only_or_harmless_tools_run_and_the_others_ask(annotations: dict[str, Any], expected: ToolPolicy) -> None:
    assert annotation_policy(annotations) == expected


def test_without_overrides_the_annotations_decide() -> None:
    resolved = resolve_policy(spec(readOnlyHint=True), "user", None, [])

    assert (resolved.policy, resolved.source) == ("run", "annotations")


def test_a_rule_for_the_tool_beats_one_for_its_server_and_a_rule_for_the_role_beats_one_for_everyone() -> None:
    rules = [
        PolicyRule("files", None, None, "deny"),
        PolicyRule("files", None, "admin", "run"),
        PolicyRule("files", "delete_file", None, "ask"),
        PolicyRule("other", "delete_file", "user", "run"),
    ]

    assert resolve_policy(spec("read_file"), "user", None, rules).policy == "deny"
    assert resolve_policy(spec("read_file"), "admin", None, rules).policy == "run"
    assert resolve_policy(spec("delete_file"), "admin", None, rules).policy == "ask"
    assert (
        resolve_policy(
            spec("delete_file"), "user", None, [*rules, PolicyRule("files", "delete_file", "user", "run")]
        ).policy
        == "run"
    )


def test_a_stored_rule_beats_the_servers_file_at_the_same_level_but_not_a_more_specific_entry() -> None:
    configured = ToolPolicyConfig(default="run", tools={"delete_file": "deny"})

    assert resolve_policy(spec("read_file"), "user", configured, []).policy == "run"
    assert resolve_policy(spec("delete_file"), "user", configured, []).policy == "deny"
    assert (
        resolve_policy(spec("read_file"), "user", configured, [PolicyRule("files", None, None, "ask")]).policy == "ask"
    )
    assert (
        resolve_policy(spec("delete_file"), "user", configured, [PolicyRule("files", None, "user", "run")]).policy
        == "deny"
    )
    file_only = resolve_policy(
        spec("delete_file"), "user", configured, [PolicyRule("files", "delete_file", None, "ask")]
    )
    assert (file_only.policy, file_only.source) == ("ask", "rule")


def test_admins_are_the_configured_users_or_everyone_without_sign_in() -> None:
    assert Roles(frozenset({"alice"})).of("alice") == "admin"
    assert Roles(frozenset({"alice"})).of("bob") == "user"
    assert Roles(frozenset(), everyone_is_admin=True).of("local") == "admin"
