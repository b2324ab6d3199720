"""First-party MCP servers, one small package each: ``python -m mcp_servers.<name>``."""
