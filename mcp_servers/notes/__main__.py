"""``python -m mcp_servers.notes [--transport stdio|streamable-http] [--host H] [--port P]``.

``--allow-unauthenticated`` lets HTTP be served on a non-loopback host without ``MCP_SERVICE_TOKEN``.
"""

from __future__ import annotations

from collections.abc import Sequence

from mcp_servers._common import parse_serve_options, serve
from mcp_servers.notes.server import create_server
from mcp_servers.notes.settings import NotesSettings

DEFAULT_PORT = 8101


def main(argv: Sequence[str] | None = None) -> None:
    options = parse_serve_options(
        argv, prog="python -m mcp_servers.notes", description="Per-user notes over MCP.", default_port=DEFAULT_PORT
    )
    settings = NotesSettings()
    serve(create_server(settings), options, service_token=settings.service_token)


if __name__ == "__main__":
    main()
