"""A stand-in for ``kubectl`` that answers scripts/verify_deployment.sh's commands from a JSON file.

The state file (``$FAKE_KUBECTL_STATE``) lists the workloads, pods and endpoints to report; ``exec ... -- python -c
CODE ARGS`` runs the code here, with its arguments and the environment the file gives the pods (their ports among
it, so that a request to 127.0.0.1 reaches the service under test). Every command line is appended to the file's
``calls``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, cast


def main(argv: list[str]) -> int:
    state_file = Path(os.environ["FAKE_KUBECTL_STATE"])
    state = cast(dict[str, Any], json.loads(state_file.read_text()))
    state.setdefault("calls", []).append(argv)
    state_file.write_text(json.dumps(state))
    args = _without_globals(argv, state)
    if args is None:
        print(f'Error from server (NotFound): namespaces "{argv}" not found', file=sys.stderr)
        return 1
    if args[:2] == ["get", "namespace"]:
        return 0 if args[2] == state["namespace"] else 1
    if args[0] == "get":
        lines = {
            "deployments,statefulsets": [" ".join(str(part) for part in row) for row in state["workloads"]],
            "pods": [" ".join(row) for row in state["pods"]],
            "endpoints": [f"{name} {' '.join(addresses)}" for name, addresses in state["endpoints"]],
        }[args[1]]
        print("\n".join(lines))
        return 0
    if args[0] == "exec":
        code_at = args.index("-c", args.index("--")) + 1
        result = subprocess.run(
            [sys.executable, "-c", *args[code_at:]], env={**state["exec_env"], "PATH": "/usr/bin:/bin"}, check=False
        )
        return result.returncode
    print(f"fake kubectl: unsupported command {args}", file=sys.stderr)
    return 2


def _without_globals(argv: list[str], state: dict[str, Any]) -> list[str] | None:
    args: list[str] = []
    index = 0
    while index < len(argv):
        if argv[index] in ("--namespace", "--context"):
            if argv[index] == "--namespace" and argv[index + 1] != state["namespace"]:
                return None
            index += 2
            continue
        args.append(argv[index])
        index += 1
    return args


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
