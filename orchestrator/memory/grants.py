"""Users' grants to OAuth-protected MCP servers and the assistant's client registrations: records and SQL.

The secrets in them (tokens, client secrets) arrive here already encrypted (``sealed``) by the MCP layer; this
module stores and returns them as opaque text. Every grant query is scoped to one user.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import and_, bindparam, delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from orchestrator.memory.models import OAuthClient, OAuthGrant


@dataclass(frozen=True, slots=True)
class StoredGrant:
    """One user's grant on one server, from one authorization server (``issuer``)."""

    user_id: str
    server_id: str
    issuer: str
    sealed: str  # the encrypted secrets: access token, refresh token, client secret
    expires_at: datetime | None
    scope: str | None
    token_endpoint: str
    revocation_endpoint: str | None
    resource: str | None
    client_id: str
    token_endpoint_auth_method: str | None
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class StoredClient:
    """The assistant's registration with a server's authorization server (dynamic or from the servers file)."""

    server_id: str
    issuer: str | None
    sealed: str  # the encrypted registration
    updated_at: datetime


class OAuthGrantStore(Protocol):
    async def get_grant(self, user_id: str, server_id: str) -> StoredGrant | None:
        """The user's most recently updated grant on the server, if any."""
        ...

    async def put_grant(self, grant: StoredGrant) -> None:
        """Store ``grant``, replacing the user's grant from the same issuer on the same server."""
        ...

    async def delete_grants(self, user_id: str, server_id: str) -> list[StoredGrant]:
        """Delete the user's grants on the server and return them (to revoke their tokens)."""
        ...

    async def granted_servers(self, user_id: str) -> list[str]:
        """The servers the user holds a grant on."""
        ...

    async def get_client(self, server_id: str) -> StoredClient | None: ...

    async def put_client(self, client: StoredClient) -> None: ...


_GRANT_COLUMNS = (
    OAuthGrant.user_id,
    OAuthGrant.server_id,
    OAuthGrant.issuer,
    OAuthGrant.sealed,
    OAuthGrant.expires_at,
    OAuthGrant.scope,
    OAuthGrant.token_endpoint,
    OAuthGrant.revocation_endpoint,
    OAuthGrant.resource,
    OAuthGrant.client_id,
    OAuthGrant.token_endpoint_auth_method,
    OAuthGrant.updated_at,
)
_CLIENT_COLUMNS = (OAuthClient.server_id, OAuthClient.issuer, OAuthClient.sealed, OAuthClient.updated_at)
_USERS_GRANTS = and_(OAuthGrant.user_id == bindparam("owner"), OAuthGrant.server_id == bindparam("server"))

_GET_GRANT = select(*_GRANT_COLUMNS).where(_USERS_GRANTS).order_by(OAuthGrant.updated_at.desc()).limit(1)
_LIST_GRANTS = select(*_GRANT_COLUMNS).where(_USERS_GRANTS)
_DELETE_GRANTS = delete(OAuthGrant).where(_USERS_GRANTS)
_GRANTED_SERVERS = (
    select(OAuthGrant.server_id)
    .where(OAuthGrant.user_id == bindparam("owner"))
    .distinct()
    .order_by(OAuthGrant.server_id)
)
_GET_CLIENT = select(*_CLIENT_COLUMNS).where(OAuthClient.server_id == bindparam("server"))


def _upsert(dialect_insert: Any, table: Any, key: Sequence[Any], replaced: Sequence[str]) -> Any:
    statement = dialect_insert(table)
    return statement.on_conflict_do_update(
        index_elements=list(key), set_={name: statement.excluded[name] for name in replaced}
    )


_GRANT_KEY = (OAuthGrant.user_id, OAuthGrant.server_id, OAuthGrant.issuer)
_GRANT_VALUES = tuple(column.key for column in _GRANT_COLUMNS if column not in _GRANT_KEY)
_PUT_GRANT = {
    "postgresql": _upsert(postgresql.insert, OAuthGrant, _GRANT_KEY, _GRANT_VALUES),
    "sqlite": _upsert(sqlite.insert, OAuthGrant, _GRANT_KEY, _GRANT_VALUES),
}
_CLIENT_VALUES = ("issuer", "sealed", "updated_at")
_PUT_CLIENT = {
    "postgresql": _upsert(postgresql.insert, OAuthClient, (OAuthClient.server_id,), _CLIENT_VALUES),
    "sqlite": _upsert(sqlite.insert, OAuthClient, (OAuthClient.server_id,), _CLIENT_VALUES),
}


def get_grant(connection: Connection, user_id: str, server_id: str) -> StoredGrant | None:
    row = connection.execute(_GET_GRANT, {"owner": user_id, "server": server_id}).first()
    return StoredGrant(*row) if row is not None else None


def put_grant(connection: Connection, grant: StoredGrant) -> None:
    connection.execute(_PUT_GRANT[connection.dialect.name], dataclasses.asdict(grant))


def delete_grants(connection: Connection, user_id: str, server_id: str) -> list[StoredGrant]:
    """Two statements; run in a transaction."""
    parameters = {"owner": user_id, "server": server_id}
    grants = [StoredGrant(*row) for row in connection.execute(_LIST_GRANTS, parameters)]
    connection.execute(_DELETE_GRANTS, parameters)
    return grants


def granted_servers(connection: Connection, user_id: str) -> list[str]:
    return list(connection.execute(_GRANTED_SERVERS, {"owner": user_id}).scalars())


def get_client(connection: Connection, server_id: str) -> StoredClient | None:
    row = connection.execute(_GET_CLIENT, {"server": server_id}).first()
    return StoredClient(*row) if row is not None else None


def put_client(connection: Connection, client: StoredClient) -> None:
    connection.execute(_PUT_CLIENT[connection.dialect.name], dataclasses.asdict(client))
