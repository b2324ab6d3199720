"""A sandboxed folder of text files per user, served over MCP: ``python -m mcp_servers.workspace``."""
