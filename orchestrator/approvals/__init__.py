"""Human approval of tool calls: each tool's policy (run, ask, deny), the pending questions, grants and the audit."""
