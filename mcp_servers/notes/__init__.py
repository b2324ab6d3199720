"""Per-user notes in SQLite, served over MCP: ``python -m mcp_servers.notes``."""
