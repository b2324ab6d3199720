"""How a Kubernetes Service describes the MCP server behind it: its labels select it, its annotations say the rest.

Annotations (all optional)::

    mcp-assistant.io/port: "mcp"            # a port name or number of the Service; default: the port named
                                            # "mcp", else the Service's only (or first) port
    mcp-assistant.io/path: "/mcp"           # the MCP endpoint's path; default /mcp
    mcp-assistant.io/transport: "streamable-http"   # or "sse"
    mcp-assistant.io/scheme: "http"         # or "https"
    mcp-assistant.io/id: "search"           # the server id (the tools' prefix); default: the Service's name
    mcp-assistant.io/send-user-id: "false"        # "true": the caller's user id goes with every tool call
    mcp-assistant.io/use-service-token: "false"   # "true": Authorization: Bearer $MCP_SERVICE_TOKEN
    mcp-assistant.io/max-concurrent-calls: "4"    # its tool calls at once; default MCPMAX_CONCURRENT_CALLS

The address is ``<name>.<namespace>.svc``, or a Service of type ``ExternalName``'s external name (a Service that
stands for a server elsewhere). A server is trusted with the user id and the service token only when its Service
asks for them: whoever may create Services in the namespace decides, so keep that right to the deployment's owners.
"""

from __future__ import annotations

import hashlib
import re
from typing import Final

from pydantic import ValidationError

from orchestrator.discovery.kube_api import Service, ServicePort
from orchestrator.mcp.types import MAX_CONCURRENT_CALLS, ServerConfig, Transport

PREFIX: Final = "mcp-assistant.io/"
DEFAULT_PATH: Final = "/mcp"

_TRANSPORTS: Final[dict[str, Transport]] = {
    "streamable-http": "streamable-http",
    "http": "streamable-http",
    "sse": "sse",
}
_BOOLEANS: Final = {"true": True, "false": False}
_MAX_ID_LENGTH: Final = 48


class InvalidServiceAnnotations(ValueError):
    """The Service's annotations do not describe a usable MCP server; ``problems`` says why."""

    def __init__(self, service: str, problems: list[str]) -> None:
        self.service = service
        self.problems = problems
        super().__init__(f"Service {service}: " + "; ".join(problems))


def server_config(service: Service, *, namespace: str) -> ServerConfig:
    """The MCP server a Service describes.

    Raises:
        InvalidServiceAnnotations: an annotation has a value that cannot work (an unknown port, transport, ...).
    """
    name = service.metadata.name
    annotations = service.metadata.annotations
    problems: list[str] = []

    port = _port(service, annotations.get(f"{PREFIX}port"), problems)
    path = annotations.get(f"{PREFIX}path", DEFAULT_PATH).strip() or DEFAULT_PATH
    if not path.startswith("/"):
        path = f"/{path}"
    transport = _TRANSPORTS.get(annotations.get(f"{PREFIX}transport", "streamable-http").strip())
    if transport is None:
        problems.append(f"{PREFIX}transport must be one of streamable-http, sse")
    scheme = annotations.get(f"{PREFIX}scheme", "http").strip()
    if scheme not in ("http", "https"):
        problems.append(f"{PREFIX}scheme must be http or https")
    send_user_id = _flag(annotations, "send-user-id", problems)
    use_service_token = _flag(annotations, "use-service-token", problems)
    server_id = annotations.get(f"{PREFIX}id", "").strip() or service_server_id(name)
    max_concurrent_calls = _call_limit(annotations.get(f"{PREFIX}max-concurrent-calls"), problems)

    if service.spec.type == "ExternalName":
        host = (service.spec.external_name or "").rstrip(".")
        if not host:
            problems.append("an ExternalName Service needs spec.externalName")
    else:
        host = f"{name}.{service.metadata.namespace or namespace}.svc"
    if problems or port is None or transport is None:
        raise InvalidServiceAnnotations(name, problems)
    try:
        return ServerConfig(
            id=server_id,
            transport=transport,
            url=f"{scheme}://{host}:{port}{path}",
            source="discovery",
            send_user_id=send_user_id,
            use_service_token=use_service_token,
            max_concurrent_calls=max_concurrent_calls,
        )
    except ValidationError as exc:
        raise InvalidServiceAnnotations(name, [str(error["msg"]) for error in exc.errors()]) from None


def service_server_id(name: str) -> str:
    """A Service name as a server id: the name itself, shortened with a hash past 48 characters."""
    if len(name) <= _MAX_ID_LENGTH:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"{name[: _MAX_ID_LENGTH - 9].rstrip('-')}-{digest}"


def _port(service: Service, wanted: str | None, problems: list[str]) -> int | None:
    ports = service.spec.ports
    if wanted is not None and wanted.strip():
        wanted = wanted.strip()
        if re.fullmatch(r"[0-9]{1,5}", wanted):
            number = int(wanted)
            if service.spec.type == "ExternalName" or any(port.port == number for port in ports):
                return number
            problems.append(f"{PREFIX}port {wanted} is not a port of the Service")
            return None
        named = _named(ports, wanted)
        if named is None:
            problems.append(f"{PREFIX}port {wanted!r} names no port of the Service")
            return None
        return named.port
    named = _named(ports, "mcp")
    if named is not None:
        return named.port
    if ports:
        return ports[0].port
    problems.append(f"the Service has no ports; add one or set {PREFIX}port")
    return None


def _named(ports: tuple[ServicePort, ...], name: str) -> ServicePort | None:
    return next((port for port in ports if port.name == name), None)


def _flag(annotations: dict[str, str], key: str, problems: list[str]) -> bool:
    raw = annotations.get(f"{PREFIX}{key}")
    if raw is None:
        return False
    value = _BOOLEANS.get(raw.strip().lower())
    if value is None:
        problems.append(f"{PREFIX}{key} must be true or false")
        return False
    return value


def _call_limit(raw: str | None, problems: list[str]) -> int | None:
    if raw is None or not raw.strip():
        return None
    if re.fullmatch(r"[0-9]{1,3}", raw.strip()) and 1 <= int(raw) <= MAX_CONCURRENT_CALLS:
        return int(raw)
    problems.append(f"{PREFIX}max-concurrent-calls must be a whole number from 1 to {MAX_CONCURRENT_CALLS}")
    return None
