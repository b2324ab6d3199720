"""A stand-in for ``kubectl`` that answers scripts/verify_deployment.sh's commands from a JSON file.

The state file (``$FAKE_KUBECTL_STATE``) lists the workloads, pods and endpoints to report; ``get --raw`` through
the service proxy is forwarded over real HTTP to the URL the file maps the Service to, and ``exec ... -- python -c``
runs the code here with the environment the file gives the pod. Every command line is appended to the file's
``calls``.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any, cast

import httpx

_PROXY = re.compile(r"^/api/v1/namespaces/(?P<ns>[^/]+)/services/(?P<service>[^/]+)/proxy(?P<path>/.*)$")


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
    if args[:2] == ["get", "--raw"]:
        return _proxy(args[2], state)
    if args[0] == "get":
        lines = {
            "deployments,statefulsets": [" ".join(str(part) for part in row) for row in state["workloads"]],
            "pods": [" ".join(row) for row in state["pods"]],
            "endpoints": [f"{name} {' '.join(addresses)}" for name, addresses in state["endpoints"]],
        }[args[1]]
        print("\n".join(lines))
        return 0
    if args[0] == "exec":
        code = args[args.index("-c", args.index("--")) + 1]
        result = subprocess.run(
            [sys.executable, "-c", code], env={**state["exec_env"], "PATH": "/usr/bin:/bin"}, check=False
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


def _proxy(path: str, state: dict[str, Any]) -> int:
    match = _PROXY.match(path)
    base = state["services"].get(match["service"]) if match else None
    if match is None or base is None:
        print('Error from server (NotFound): services "?" not found', file=sys.stderr)
        return 1
    try:
        response = httpx.get(base + match["path"], timeout=10)
    except httpx.HTTPError:
        print("Error from server (ServiceUnavailable): the server is currently unable to handle the request")
        return 1
    print(response.text)
    return 0 if response.status_code < 400 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
