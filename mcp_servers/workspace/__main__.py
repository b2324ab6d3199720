"""``python -m mcp_servers.workspace [--transport stdio|streamable-http] [--host H] [--port P]``.

``--allow-unauthenticated`` lets HTTP be served on a non-loopback host without ``MCP_SERVICE_TOKEN``.
"""

from __future__ import annotations

from collections.abc import Sequence

from mcp_servers._common import parse_serve_options, serve
from mcp_servers.workspace.server import create_server
from mcp_servers.workspace.settings import WorkspaceSettings

DEFAULT_PORT = 8102


def main(argv: Sequence[str] | None = None) -> None:
    options = parse_serve_options(
        argv,
        prog="python -m mcp_servers.workspace",
        description="A private folder of text files per user, over MCP.",
        default_port=DEFAULT_PORT,
    )
    settings = WorkspaceSettings()
    serve(create_server(settings), options, service_token=settings.service_token)


if __name__ == "__main__":
    main()
