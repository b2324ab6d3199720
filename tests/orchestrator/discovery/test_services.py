"""What a Service's annotations make of the MCP server behind it."""

from __future__ import annotations

from typing import Any

import pytest

from orchestrator.discovery.kube_api import Service
from orchestrator.discovery.services import InvalidServiceAnnotations, server_config, service_server_id
from tests.fakes.kubernetes_api import service


def parsed(raw: dict[str, Any]) -> Service:
    return Service.model_validate(raw)


def annotated(ports: list[int | tuple[str, int]] | None = None, /, **annotations: str) -> Service:
    return parsed(
        service(
            "search",
            ports=ports if ports is not None else [8080],
            annotations={f"mcp-assistant.io/{key.replace('_', '-')}": value for key, value in annotations.items()},
        )
    )


def test_a_plain_service_is_reached_by_its_cluster_name_on_its_port_at_slash_mcp() -> None:
    config = server_config(annotated(), namespace="team")

    assert (config.id, config.transport, config.url, config.source) == (
        "search",
        "streamable-http",
        "http://search.team.svc:8080/mcp",
        "discovery",
    )
    assert (config.send_user_id, config.use_service_token) == (False, False)
    assert config.max_concurrent_calls is None  # the orchestrator's default applies


def test_the_port_named_mcp_wins_over_the_first_port() -> None:
    config = server_config(annotated([("metrics", 9090), ("mcp", 8000)]), namespace="team")

    assert config.url == "http://search.team.svc:8000/mcp"


def test_annotations_choose_port_path_transport_scheme_id_and_trust() -> None:
    service_ = annotated(
        [("web", 443), ("other", 80)],
        port="web",
        path="legacy/sse",
        transport="sse",
        scheme="https",
        id="docs",
        send_user_id="true",
        use_service_token="True",
        max_concurrent_calls="2",
    )

    config = server_config(service_, namespace="team")

    assert (config.id, config.transport, config.url) == ("docs", "sse", "https://search.team.svc:443/legacy/sse")
    assert (config.send_user_id, config.use_service_token) == (True, True)
    assert config.max_concurrent_calls == 2


def test_an_external_name_service_is_reached_at_its_external_name() -> None:
    raw = service("remote", ports=[9000], external_name="mcp.example.org.")

    assert server_config(parsed(raw), namespace="team").url == "http://mcp.example.org:9000/mcp"


@pytest.mark.parametrize(
    "annotations",
    [
        {"port": "9999"},
        {"port": "nope"},
        {"transport": "carrier-pigeon"},
        {"scheme": "ftp"},
        {"send_user_id": "yes please"},
        {"max_concurrent_calls": "0"},
        {"max_concurrent_calls": "many"},
        {"id": "not a valid id!"},
    ],
)
def test_annotations_that_cannot_work_are_refused(annotations: dict[str, str]) -> None:
    with pytest.raises(InvalidServiceAnnotations):
        server_config(annotated(**annotations), namespace="team")


def test_a_service_without_ports_is_refused() -> None:
    with pytest.raises(InvalidServiceAnnotations):
        server_config(annotated([]), namespace="team")


def test_long_service_names_become_short_stable_ids() -> None:
    name = "a-very-long-service-name-that-goes-well-past-the-limit-of-ids"

    shortened = service_server_id(name)

    assert len(shortened) == 48
    assert shortened == service_server_id(name)
    assert shortened != service_server_id(name + "x")
