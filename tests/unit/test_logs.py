"""The log's two formats: plain (unchanged) and one JSON object a line, with the request's
fields and every secret masked."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Iterator

import pytest

from bot import logs
from bot.errors import ConfigError
from bot.logs import LogFormat
from bot.settings import load_settings

SECRET = "s3cret-signing-value"


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    """The root logger writing to a string, as the command line sets it up (restored after)."""
    root = logging.getLogger()
    saved, level = root.handlers[:], root.level
    out = io.StringIO()
    root.handlers = [logging.StreamHandler(out)]
    root.setLevel(logging.INFO)
    logs.new_request()
    yield out
    logs.use(LogFormat.plain)  # on this handler: the format in use is plain again
    root.handlers, root.level = saved, level


def lines(out: io.StringIO) -> list[dict[str, str]]:
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_json_lines_have_time_level_logger_message_and_the_requests_fields(
    stream: io.StringIO,
) -> None:
    logs.use(LogFormat.json, [SECRET])
    logging.getLogger("pnc.test").info("outside any request")
    logs.new_request("lb-7f3a")
    logs.bind(user="U0ASSESS", subcommand="status", factory="VN-1001")
    logging.getLogger("pnc.test").warning("refused %s", "VN-9999")
    first, second = lines(stream)
    assert set(first) == {"time", "level", "logger", "message", "request_id"}
    assert first["time"].endswith("Z") and first["level"] == "info"
    assert second == {
        "time": second["time"],
        "level": "warning",
        "logger": "pnc.test",
        "message": "refused VN-9999",
        "request_id": "lb-7f3a",
        "user": "U0ASSESS",
        "subcommand": "status",
        "factory": "VN-1001",
    }


def test_a_request_id_that_does_not_look_like_one_is_replaced() -> None:
    given = logs.new_request("bad id\n{}")
    assert given != "bad id\n{}" and len(given) == 16
    assert logs.request_fields() == {"request_id": given}


def test_secrets_are_masked_in_the_message_the_traceback_and_the_fields(
    stream: io.StringIO,
) -> None:
    logs.use(LogFormat.json, [SECRET])
    logs.bind(factory=f"VN-{SECRET}")
    log = logging.getLogger("pnc.test")
    try:
        raise RuntimeError(f"cannot connect with {SECRET}\nsecond line")
    except RuntimeError:
        log.exception("failed with token xoxb-1234-abcd and %s", SECRET)
    (line,) = lines(stream)
    assert SECRET not in stream.getvalue() and "xoxb-1234-abcd" not in stream.getvalue()
    assert line["message"] == "failed with token xoxb-*** and ***"
    assert "RuntimeError: cannot connect with ***" in line["exception"]
    assert line["factory"] == "VN-***"


def test_the_plain_format_is_unchanged_and_masks_secrets(stream: io.StringIO) -> None:
    logs.use(LogFormat.plain, [SECRET])
    logs.bind(user="U0ASSESS")
    logging.getLogger("pnc.test").warning("secret %s", SECRET)
    assert stream.getvalue() == "WARNING pnc.test: secret ***\n"


def test_warnings_become_json_lines_too(stream: io.StringIO) -> None:
    import warnings

    logs.use(LogFormat.json)
    logging.getLogger().setLevel(logging.WARNING)
    warnings.warn("a library complains", UserWarning, stacklevel=1)
    (line,) = lines(stream)
    assert line["logger"] == "py.warnings" and "a library complains" in line["message"]


async def test_the_fields_follow_a_request_into_its_tasks_and_no_further() -> None:
    async def request(user: str) -> tuple[dict[str, str], dict[str, str]]:
        logs.new_request()
        logs.bind(user=user)

        async def listener() -> dict[str, str]:
            await asyncio.sleep(0)
            return logs.request_fields()

        task = asyncio.create_task(listener())  # as Bolt runs a listener
        return await task, logs.request_fields()

    (a_task, a), (b_task, b) = await asyncio.gather(request("U0A"), request("U0B"))
    assert a_task == a and a["user"] == "U0A"
    assert b_task == b and b["user"] == "U0B"
    assert a["request_id"] != b["request_id"]


def test_pnc_log_format_is_a_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PNC_LOG_FORMAT", "json")
    assert load_settings().log_format == LogFormat.json
    monkeypatch.setenv("PNC_LOG_FORMAT", "yaml")
    with pytest.raises(ConfigError, match="PNC_LOG_FORMAT"):
        load_settings()
