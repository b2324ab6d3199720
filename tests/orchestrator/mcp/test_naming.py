from __future__ import annotations

import random
import re
import string

import pytest

from orchestrator.mcp.naming import EXPOSED_NAME_PATTERN, expose_name


def test_legal_names_are_server_id_double_underscore_tool() -> None:
    assert expose_name("git", "git_status") == "git__git_status"
    assert expose_name("time-1", "get-time") == "time-1__get-time"


def test_illegal_characters_become_underscores_and_get_a_hash() -> None:
    name = expose_name("files", "read.file/v2")

    assert re.fullmatch(r"files__read_file_v2_[0-9a-f]{8}", name)


def test_long_names_are_cut_to_64_characters_with_a_hash() -> None:
    name = expose_name("a-very-long-server-id-for-testing", "an_extremely_long_tool_name_that_goes_on_and_on")

    assert len(name) == 64
    assert re.fullmatch(r"a-very-long-server-id-for-testing__an_extreme\w*_[0-9a-f]{8}", name)


def test_names_are_deterministic() -> None:
    assert expose_name("srv", "tööl") == expose_name("srv", "tööl")


def test_pairs_that_sanitize_alike_stay_distinct() -> None:
    assert expose_name("srv", "a.b") != expose_name("srv", "a/b")
    assert expose_name("srv", "x" * 80) != expose_name("srv", "x" * 81)


@pytest.mark.parametrize(
    ("first", "second"),
    [
        (("a_", "_b"), ("a", "__b")),
        (("a__b", "c"), ("a", "b__c")),
    ],
)
def test_separator_ambiguity_cannot_make_two_pairs_collide(first: tuple[str, str], second: tuple[str, str]) -> None:
    assert expose_name(*first) != expose_name(*second)


def test_any_input_gives_a_legal_name_and_distinct_pairs_give_distinct_names() -> None:
    rng = random.Random(20240601)
    alphabet = string.ascii_letters + string.digits + "_-.:/ éß€\n"
    id_alphabet = string.ascii_letters + string.digits + "_-"
    seen: dict[str, tuple[str, str]] = {}
    for _ in range(5000):
        server_id = rng.choice(string.ascii_letters) + "".join(rng.choices(id_alphabet, k=rng.randint(0, 47)))
        tool = "".join(rng.choices(alphabet, k=rng.randint(0, 90)))
        name = expose_name(server_id, tool)
        assert re.fullmatch(EXPOSED_NAME_PATTERN, name)
        assert "\n" not in name
        assert seen.setdefault(name, (server_id, tool)) == (server_id, tool)
