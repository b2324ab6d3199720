from __future__ import annotations

import pytest

from frontend.redirects import safe_next_path


@pytest.mark.parametrize("path", ["/", "/c/123", "/servers?tab=tools", "/c/%2F%2Fevil"])
def test_relative_paths_on_our_origin_are_kept(path: str) -> None:
    assert safe_next_path(path) == path


@pytest.mark.parametrize(
    "candidate",
    [
        None,
        "",
        "https://evil.example/",
        "//evil.example",
        "///evil.example",
        "/\\evil.example",
        "\\\\evil.example",
        "javascript:alert(1)",
        "/c/1\r\nSet-Cookie: x=1",
        "\t//evil.example",
        "c/relative",
        "/" + "a" * 3000,
    ],
)
def test_anything_else_falls_back_to_the_home_page(candidate: str | None) -> None:
    assert safe_next_path(candidate) == "/"
