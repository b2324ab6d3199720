"""The MCP conformance suite's client scenarios, run against our MCP layer; see ``conformance/README.md``."""
