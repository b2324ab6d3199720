"""Tool call approvals: pending and decided calls, users' standing grants, admins' policy rules, the audit log.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "tool_call_approvals",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("user_id", sa.String(255), nullable=False),
        sa.Column("conversation_id", sa.String(36), nullable=False),
        sa.Column("tool_call_id", sa.String(255), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("server_id", sa.String(64), nullable=False),
        sa.Column("tool", sa.Text(), nullable=False),
        sa.Column("arguments", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("decision", sa.String(16), nullable=True),
        sa.Column("decided_by", sa.String(255), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('pending', 'approved', 'denied', 'expired')", name=op.f("ck_tool_call_approvals_status")
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_tool_call_approvals_user_id_users"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name=op.f("fk_tool_call_approvals_conversation_id_conversations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tool_call_approvals")),
        sa.UniqueConstraint(
            "conversation_id", "tool_call_id", name=op.f("uq_tool_call_approvals_conversation_id_tool_call_id")
        ),
    )
    op.create_table(
        "tool_call_grants",
        sa.Column("user_id", sa.String(255), nullable=False),
        sa.Column("server_id", sa.String(64), nullable=False),
        sa.Column("tool", sa.Text(), nullable=False),
        sa.Column("conversation_id", sa.String(36), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_tool_call_grants_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("user_id", "server_id", "tool", "conversation_id", name=op.f("pk_tool_call_grants")),
    )
    op.create_table(
        "tool_policies",
        sa.Column("server_id", sa.String(64), nullable=False),
        sa.Column("tool", sa.Text(), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("policy", sa.String(8), nullable=False),
        sa.Column("updated_by", sa.String(255), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("policy IN ('run', 'ask', 'deny')", name=op.f("ck_tool_policies_policy")),
        sa.PrimaryKeyConstraint("server_id", "tool", "role", name=op.f("pk_tool_policies")),
    )
    op.create_table(
        "tool_call_audit",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("user_id", sa.String(255), nullable=False),
        sa.Column("conversation_id", sa.String(36), nullable=False),
        sa.Column("tool_call_id", sa.String(255), nullable=False),
        sa.Column("approval_id", sa.String(36), nullable=True),
        sa.Column("server_id", sa.String(64), nullable=False),
        sa.Column("tool", sa.Text(), nullable=False),
        sa.Column("arguments", sa.Text(), nullable=False),
        sa.Column("decision", sa.String(16), nullable=False),
        sa.Column("actor", sa.String(16), nullable=False),
        sa.Column("decided_by", sa.String(255), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tool_call_audit")),
    )
    op.create_index("ix_tool_call_audit_created_at", "tool_call_audit", ["created_at"])
    op.create_index("ix_tool_call_audit_user_id_created_at", "tool_call_audit", ["user_id", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_tool_call_audit_user_id_created_at", table_name="tool_call_audit")
    op.drop_index("ix_tool_call_audit_created_at", table_name="tool_call_audit")
    op.drop_table("tool_call_audit")
    op.drop_table("tool_policies")
    op.drop_table("tool_call_grants")
    op.drop_table("tool_call_approvals")
