import json
import logging
import sys

import pytest

from orchestrator.logs import JsonFormatter, configure_logging


def test_json_lines_carry_the_message_and_the_extra_fields() -> None:
    record = logging.LogRecord("orchestrator.loop", logging.INFO, __file__, 1, "turn finished: %s", ("complete",), None)
    record.conversation_id = "c-1"

    line = json.loads(JsonFormatter().format(record))

    assert (line["level"], line["message"], line["conversation_id"]) == ("INFO", "turn finished: complete", "c-1")


def test_json_lines_carry_exceptions_on_one_line() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", (), exc_info=sys.exc_info())

    formatted = JsonFormatter().format(record)

    assert "\n" not in formatted
    assert "ValueError: boom" in json.loads(formatted)["exception"]


@pytest.mark.parametrize("level", ["DEBUG", "INFO"])
def test_http_client_libraries_stay_quiet_below_warning(level: str) -> None:
    root = logging.getLogger()
    root_handlers, root_level = root.handlers[:], root.level
    try:
        configure_logging(level, json_lines=True)

        assert logging.getLogger("httpx").level == logging.WARNING
        assert logging.getLogger().level == logging.getLevelNamesMapping()[level]
    finally:
        root.handlers[:] = root_handlers
        root.setLevel(root_level)
