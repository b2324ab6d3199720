"""Which policy a tool call gets: ``run``, ``ask`` or ``deny``.

A tool's own MCP annotations give the default: a read-only tool runs; any other asks, unless it says it is neither
destructive nor open-world (the MCP specification takes both to be true when they are not given). Admins override
it per server, per tool and per role, in the servers file (``toolPolicy``) and through the API (stored rules); the
most specific rule wins: a rule naming the tool beats one for the whole server, one naming the role beats one for
everyone, and a stored rule beats the servers file's at the same level.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from orchestrator.mcp.types import ToolPolicy, ToolPolicyConfig, ToolSpec

Role = Literal["admin", "user"]
PolicySource = Literal["annotations", "servers file", "rule", "built-in"]


@dataclass(frozen=True, slots=True)
class PolicyRule:
    """An admin's override: ``tool`` and ``role`` ``None`` mean every tool of the server and everyone."""

    server_id: str
    tool: str | None
    role: Role | None
    policy: ToolPolicy
    updated_by: str | None = None
    updated_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class ResolvedPolicy:
    policy: ToolPolicy
    source: PolicySource


def annotation_policy(annotations: Mapping[str, Any] | None) -> ToolPolicy:
    """The policy a tool's annotations ask for, with the MCP specification's defaults for missing hints."""
    hints = annotations or {}
    if hints.get("readOnlyHint") is True:
        return "run"
    if hints.get("destructiveHint", True) is False and hints.get("openWorldHint", True) is False:
        return "run"
    return "ask"


def resolve_policy(
    spec: ToolSpec, role: Role, configured: ToolPolicyConfig | None, rules: Iterable[PolicyRule]
) -> ResolvedPolicy:
    """The policy of ``spec`` for a caller of ``role``: the most specific override, else its annotations."""
    best: tuple[tuple[int, int, int], ResolvedPolicy] | None = None

    def consider(rank: tuple[int, int, int], resolved: ResolvedPolicy) -> None:
        nonlocal best
        if best is None or rank > best[0]:
            best = (rank, resolved)

    if configured is not None:
        if spec.tool in configured.tools:
            consider((1, 0, 0), ResolvedPolicy(configured.tools[spec.tool], "servers file"))
        elif configured.default is not None:
            consider((0, 0, 0), ResolvedPolicy(configured.default, "servers file"))
    for rule in rules:
        if rule.server_id != spec.server_id:
            continue
        if rule.tool is not None and rule.tool != spec.tool:
            continue
        if rule.role is not None and rule.role != role:
            continue
        consider((int(rule.tool is not None), int(rule.role is not None), 1), ResolvedPolicy(rule.policy, "rule"))
    if best is not None:
        return best[1]
    return ResolvedPolicy(annotation_policy(spec.annotations), "annotations")


@dataclass(frozen=True, slots=True)
class Roles:
    """Whose calls count as an admin's: ``ADMIN_USERS``, or everyone when nobody signs in (development)."""

    admin_users: frozenset[str]
    everyone_is_admin: bool = False

    def of(self, user_id: str) -> Role:
        return "admin" if self.everyone_is_admin or user_id in self.admin_users else "user"
