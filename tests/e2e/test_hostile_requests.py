"""Hostile and malformed requests to the bot's real HTTP server (SQLite and PostgreSQL): the
signature is checked on the raw bytes before anything is parsed, a refusal is logged in one
short line without the body, an unsigned flood does not hold up the health check or Slack's
commands, and signed payloads of the wrong shape get a 400 or a polite refusal, never a 500."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import time
import urllib.parse
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest

from bot import server
from bot.roles import Actor
from bot.usecases.core import Core
from tests.e2e.conftest import ASSESSOR, SlackClient
from tests.e2e.test_security import counts

FORM = "application/x-www-form-urlencoded"
JSON = "application/json"


def sign(secret: str, body: bytes, timestamp: str) -> str:
    """Slack's signature of a body, on its bytes (any timestamp text, any bytes)."""
    base = b"v0:" + timestamp.encode() + b":" + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


async def post_raw(
    client: SlackClient, body: bytes, headers: dict[str, str]
) -> tuple[int, str, float]:
    started = time.perf_counter()
    async with client.session.post(
        f"{client.base}/slack/events", data=body, headers=headers
    ) as response:
        return response.status, await response.text(), time.perf_counter() - started


async def post_over_socket(
    client: SlackClient, body: bytes, headers: dict[str, str]
) -> tuple[int, str]:
    """POST with headers as given, sent as UTF-8 (aiohttp's client refuses odd ones)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", client.base.rsplit(":", 1)[1])
    lines = [
        "POST /slack/events HTTP/1.1",
        "Host: 127.0.0.1",
        "Connection: close",
        f"Content-Length: {len(body)}",
        *(f"{name}: {value}" for name, value in headers.items()),
    ]
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("utf-8", "surrogateescape") + body)
    await writer.drain()
    answer = (await reader.read()).decode("utf-8", "replace")
    writer.close()
    return int(answer.split(" ", 2)[1]), answer


def headers_for(
    client: SlackClient, body: bytes, content_type: str = FORM, timestamp: str | None = None
) -> dict[str, str]:
    stamp = str(int(time.time())) if timestamp is None else timestamp
    return {
        "Content-Type": content_type,
        "X-Slack-Request-Timestamp": stamp,
        "X-Slack-Signature": sign(client.secret, body, stamp),
    }


def tracebacks(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]


# --- 4. requests without a valid signature ----------------------------------------------------


@pytest.mark.parametrize(
    "timestamp",
    [
        None,
        "",
        "abc",
        "1e9",
        "{now}.5",
        " {now}",
        "-{now}",
        "\u0661\u0667\u0660\u0660\u0660\u0660\u0660\u0660\u0660\u0660",  # int() takes these
        "9" * 5000,  # int() refuses more than 4300 digits with a ValueError
        "\u202e{now}",
    ],
    ids=[
        "missing",
        "empty",
        "letters",
        "exponent",
        "fraction",
        "space",
        "negative",
        "arabic-digits",
        "5000-digits",
        "bidi",
    ],
)
async def test_a_missing_or_odd_timestamp_gets_401(
    client: SlackClient, caplog: pytest.LogCaptureFixture, timestamp: str | None
) -> None:
    """Signed with the right secret over whatever timestamp was sent: still 401, no 500."""
    caplog.set_level(logging.INFO)
    _, form = client.command_body("help", ASSESSOR)
    body = form.encode()
    stamp = None if timestamp is None else timestamp.format(now=int(time.time()))
    headers = {"Content-Type": FORM}
    if stamp is not None:
        headers["X-Slack-Request-Timestamp"] = stamp
    headers["X-Slack-Signature"] = sign(client.secret, body, stamp or "")
    status, answer = await post_over_socket(client, body, headers)
    assert status == 401, answer
    assert "Traceback" not in answer and "help" not in answer
    assert tracebacks(caplog) == []


@pytest.mark.parametrize("bad", ["\x1b[2J\x07", "\x00", "\x7f"], ids=["escape", "nul", "del"])
async def test_control_characters_in_a_header_get_400_and_one_log_line(
    client: SlackClient, caplog: pytest.LogCaptureFixture, bad: str
) -> None:
    """aiohttp's parser refuses them; it logs that in one line, not a traceback a request."""
    caplog.set_level(logging.INFO)
    _, form = client.command_body("help", ASSESSOR)
    headers = headers_for(client, form.encode(), timestamp=f"{int(time.time())}{bad}")
    status, _ = await post_over_socket(client, form.encode(), headers)
    assert status == 400
    logged = [r.getMessage() for r in caplog.records]
    assert len(logged) == 1 and "not HTTP" in logged[0], logged
    assert bad not in logged[0] and "\n" not in logged[0]
    assert tracebacks(caplog) == []


async def test_a_missing_signature_gets_401(client: SlackClient) -> None:
    _, form = client.command_body("help", ASSESSOR)
    headers = {"Content-Type": FORM, "X-Slack-Request-Timestamp": str(int(time.time()))}
    assert (await post_raw(client, form.encode(), headers))[0] == 401


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"payload=%7Bnot-json", FORM),
        (b'{"broken', JSON),
        (b"payload=%5B1%2C2%5D", FORM),
        (b"[1, 2]", JSON),
        (b"payload=null", FORM),
    ],
    ids=["payload-not-json", "json-broken", "payload-list", "json-list", "payload-null"],
)
async def test_malformed_bodies_without_a_valid_signature_get_401(
    client: SlackClient, caplog: pytest.LogCaptureFixture, body: bytes, content_type: str
) -> None:
    """The signature is checked before the body is parsed: no parse error reaches anyone."""
    headers = {
        "Content-Type": content_type,
        "X-Slack-Request-Timestamp": str(int(time.time())),
        "X-Slack-Signature": "v0=" + "0" * 64,
    }
    status, answer, _ = await post_raw(client, body, headers)
    assert status == 401, answer
    assert tracebacks(caplog) == []


async def test_a_refused_request_is_logged_in_one_short_line_without_its_body(
    client: SlackClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    marker = "ZZBODYZZ"
    forged = f"text={marker}\n2026-11-20 10:00:00 ERROR pnc-bot: forged line\n"
    body = (forged + "x" * 200_000).encode()
    now = int(time.time())
    attempts = [
        headers_for(client, body, timestamp=str(now)) | {"X-Slack-Signature": "v0=" + "0" * 64},
        headers_for(client, body, timestamp=str(now - 600)),  # stale, correctly signed
        headers_for(client, body, timestamp=f"\u202e{now}"),  # right-to-left override
        headers_for(client, body) | {"X-Slack-Signature": "v0=\u202e" + "0" * 64},
    ]
    for headers in attempts:
        status, answer = await post_over_socket(client, body, headers)
        assert status == 401
        assert marker not in answer and "forged" not in answer
    text = [r.getMessage() for r in caplog.records]
    assert not [t for t in text if marker in t or "forged" in t], "the body was logged"
    refusals = [t for t in text if "refused" in t and "signature" in t.lower()]
    assert len(refusals) == len(attempts), text
    for line in refusals:
        assert len(line) < 300 and line.isprintable() and "\u202e" not in line
        assert f"{len(body)} bytes" in line  # the size is told
    assert "\\u202e" in refusals[2] and "\\u202e" in refusals[3]  # the odd headers, escaped
    assert tracebacks(caplog) == []


async def test_a_body_larger_than_slack_ever_sends_gets_413_unread(
    client: SlackClient, caplog: pytest.LogCaptureFixture
) -> None:
    """Refused on its ``Content-Length`` alone: the body is never sent here, and never
    waited for."""
    caplog.set_level(logging.INFO)
    size = server.MAX_BODY_BYTES + 1
    reader, writer = await asyncio.open_connection("127.0.0.1", client.base.rsplit(":", 1)[1])
    head = (
        "POST /slack/events HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {size}\r\n\r\n"
    )
    writer.write(head.encode())
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(), 10)  # the server answers and closes
    writer.close()
    assert answer.startswith(b"HTTP/1.1 413 "), answer
    logged = [r.getMessage() for r in caplog.records]
    assert len(logged) == 1 and f"{size} bytes" in logged[0], logged
    assert tracebacks(caplog) == []


async def test_the_largest_form_fits_well_under_the_cap() -> None:
    """The assessment form (the largest payload Slack sends the bot: the whole view, every
    country's catalogue as options) is a small part of the cap, even URL-encoded."""
    from datetime import date

    from bot.countries import load_config
    from bot.settings import Settings
    from handlers import blocks

    config = load_config(Settings(database_url="sqlite+aiosqlite:///unused.db"))
    largest = max(
        len(
            urllib.parse.urlencode(
                {"payload": json.dumps({"view": blocks.assess_modal(c, date.today(), "VN-1")})}
            )
        )
        for c in config.countries.values()
    )
    assert largest * 8 < server.MAX_BODY_BYTES, largest


#: how long the health check and a signed command may take during the flood; Slack waits 3 s
FLOOD_LIMIT = 2.0


async def test_an_unsigned_flood_does_not_delay_health_checks_or_a_signed_command(
    client: SlackClient, people: None, caplog: pytest.LogCaptureFixture
) -> None:
    """20 concurrent unsigned 1 MB bodies (again and again) while the health check is polled
    and a signed ``/pnc help`` is sent: both are answered well within Slack's 3 s. The bodies
    are the costliest to parse (a quarter of a million form fields), logged at INFO as
    ``serve`` does."""
    caplog.set_level(logging.INFO)
    junk = b"a=1&" * (1024 * 1024 // 4)
    unsigned = headers_for(client, junk) | {"X-Slack-Signature": "v0=" + "1" * 64}
    statuses: list[int | str] = []
    stop = asyncio.Event()

    async def flood() -> None:
        async with aiohttp.ClientSession() as session:  # connections of its own
            while not stop.is_set():
                try:
                    async with session.post(
                        f"{client.base}/slack/events", data=junk, headers=unsigned
                    ) as response:
                        await response.read()
                        statuses.append(response.status)
                except aiohttp.ClientError as exc:  # the server may close on a 413
                    statuses.append(type(exc).__name__)

    health: list[float] = []

    async def poll_health() -> None:
        while not stop.is_set():
            started = time.perf_counter()
            async with client.session.get(f"{client.base}/healthz") as response:
                assert response.status == 200
            health.append(time.perf_counter() - started)
            await asyncio.sleep(0.05)

    flooders = [asyncio.create_task(flood()) for _ in range(20)]
    poller = asyncio.create_task(poll_health())
    await asyncio.sleep(1.0)  # the flood is under way
    commands: list[float] = []
    for _ in range(3):
        reply = await client.command("help", ASSESSOR)
        commands.append(reply.ack_seconds)
        assert "/pnc" in reply.text
        await asyncio.sleep(0.3)
    stop.set()
    await asyncio.gather(*flooders, poller)
    print(
        f"flood: {len(statuses)} unsigned requests; health max {max(health):.3f} s over "
        f"{len(health)} polls; signed command acks {[round(c, 3) for c in commands]} s"
    )
    assert len(statuses) >= 20 and all(s in (401, 413) or isinstance(s, str) for s in statuses)
    assert any(s in (401, 413) for s in statuses)
    assert max(health) < FLOOD_LIMIT, health
    assert max(commands) < FLOOD_LIMIT, commands


# --- 5. correctly signed but malformed payloads ------------------------------------------------


def command_form(client: SlackClient, **changes: str | None) -> str:
    _, body = client.command_body("help", ASSESSOR)
    form = dict(urllib.parse.parse_qsl(body))
    for key, value in changes.items():
        if value is None:
            form.pop(key, None)
        else:
            form[key] = value
    return urllib.parse.urlencode(form)


def form_values(**blocks: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "factory": {"factory": {"type": "plain_text_input", "value": "VN-1004"}},
        "day": {"day": {"type": "datepicker", "selected_date": "2026-10-01"}},
        "issues": {"issues": {"type": "multi_static_select", "selected_options": []}},
        "kind": {"kind": {"type": "static_select", "selected_option": {"value": "regular"}}},
    }
    values.update(blocks)
    return values


#: a key to leave out of a payload; what a payload holds unless told otherwise
DROP, KEEP = object(), object()


def view_submission(user: Any = KEEP, values: Any = KEEP, **view: Any) -> dict[str, Any]:
    """The assessment form as Slack submits it, with ``user``, ``values`` (``state.values``)
    or the view's keys changed (``DROP`` leaves one out; ``view=`` replaces the whole view)."""
    body: dict[str, Any] = {
        "type": "view_submission",
        "team": {"id": "T0TEST"},
        "user": {"id": ASSESSOR, "team_id": "T0TEST"} if user is KEEP else user,
        "api_app_id": "A0PNC",
        "trigger_id": "trigger.view",
        "view": {
            "id": "V0FORM",
            "type": "modal",
            "callback_id": "pnc_assess",
            "private_metadata": "",
            "state": {"values": form_values() if values is KEEP else values},
        },
    }
    if "view" in view:
        body["view"] = view["view"]
    else:
        body["view"].update(view)
    return _without_dropped(body)


def _without_dropped(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_dropped(v) for k, v in value.items() if v is not DROP}
    return value


def event_body(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "token": "legacy-unused",
        "team_id": "T0TEST",
        "api_app_id": "A0PNC",
        "type": "event_callback",
        "event_id": "Ev0HOSTILE",
        "event_time": int(time.time()),
        "event": {"type": "app_home_opened", "user": ASSESSOR, "tab": "home"},
    }
    body.update(changes)
    return _without_dropped(body)


def payload(value: Any) -> tuple[str, str]:
    return urllib.parse.urlencode({"payload": json.dumps(value)}), FORM


def as_json(value: Any) -> tuple[str, str]:
    return json.dumps(value), JSON


def block_actions(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": "block_actions",
        "team": {"id": "T0TEST"},
        "user": {"id": ASSESSOR, "team_id": "T0TEST"},
        "api_app_id": "A0PNC",
        "trigger_id": "trigger.button",
        "container": {"type": "message", "message_ts": "1.2", "channel_id": "C0STAFF"},
        "channel": {"id": "C0STAFF"},
        "response_url": "http://127.0.0.1:9/respond/x",
        "actions": [{"type": "button", "action_id": "pnc_retry", "value": "1"}],
    }
    body.update(changes)
    return body


BAD = "bad"  # answered 400 at the door
POLITE = "polite"  # answered 200 with a refusal the person can read
QUIET = "quiet"  # answered 200, nothing to show (an event nobody waits on)

#: (id, build the body, what the answer must be)
MALFORMED: list[tuple[str, Callable[[SlackClient], tuple[str, str]], str]] = [
    ("command-without-user", lambda c: (command_form(c, user_id=None), FORM), BAD),
    ("command-with-empty-user", lambda c: (command_form(c, user_id=""), FORM), BAD),
    ("command-without-command", lambda c: (command_form(c, command=None), FORM), BAD),
    ("command-without-text", lambda c: (command_form(c, text=None), FORM), QUIET),
    (
        "json-command-user-a-list",
        lambda c: as_json({"command": "/pnc", "user_id": [ASSESSOR], "text": "help"}),
        BAD,
    ),
    ("form-of-nothing-slack-sends", lambda c: ("a=1&b=2", FORM), BAD),
    ("empty-body", lambda c: ("", FORM), BAD),
    ("payload-not-json", lambda c: ("payload=%7Bnot-json", FORM), BAD),
    ("payload-list", lambda c: payload([1, 2]), BAD),
    ("payload-string", lambda c: payload("view_submission"), BAD),
    ("payload-null", lambda c: payload(None), BAD),
    ("payload-number", lambda c: payload(42), BAD),
    ("payload-without-type", lambda c: payload({"user": {"id": ASSESSOR}}), BAD),
    ("json-broken", lambda c: ('{"type": "event_callback", "event": {', JSON), BAD),
    ("json-list", lambda c: as_json([{"type": "event_callback"}]), BAD),
    ("json-string", lambda c: as_json("event_callback"), BAD),
    ("view-without-type", lambda c: payload(view_submission(type=DROP)), BAD),
    ("view-null", lambda c: payload(view_submission(view=None)), BAD),
    ("view-a-string", lambda c: payload(view_submission(view="pnc_assess")), BAD),
    ("view-callback-a-list", lambda c: payload(view_submission(callback_id=["x"])), BAD),
    ("view-without-callback-id", lambda c: payload(view_submission(callback_id=DROP)), BAD),
    ("view-of-another-form", lambda c: payload(view_submission(callback_id="other")), BAD),
    ("view-team-a-number", lambda c: payload(view_submission() | {"team": 5}), BAD),
    ("view-without-state", lambda c: payload(view_submission(state=DROP)), POLITE),
    ("view-state-a-list", lambda c: payload(view_submission(state=[])), BAD),
    ("values-a-list", lambda c: payload(view_submission(values=[])), BAD),
    ("values-null", lambda c: payload(view_submission(values=None)), BAD),
    ("values-block-a-string", lambda c: payload(view_submission(values={"factory": "VN"})), BAD),
    (
        "values-element-a-list",
        lambda c: payload(view_submission(values=form_values(factory={"factory": ["VN-1004"]}))),
        POLITE,
    ),
    (
        "values-value-a-number",
        lambda c: payload(
            view_submission(values=form_values(factory={"factory": {"value": 1004}}))
        ),
        POLITE,
    ),
    (
        "values-options-a-string",
        lambda c: payload(
            view_submission(values=form_values(issues={"issues": {"selected_options": "CO-01"}}))
        ),
        POLITE,
    ),
    (
        "values-option-without-value",
        lambda c: payload(
            view_submission(values=form_values(issues={"issues": {"selected_options": [{}]}}))
        ),
        POLITE,
    ),
    (
        "values-kind-a-string",
        lambda c: payload(
            view_submission(values=form_values(kind={"kind": {"selected_option": "regular"}}))
        ),
        POLITE,
    ),
    ("view-submission-without-user", lambda c: payload(view_submission(user=DROP)), BAD),
    ("view-submission-user-null", lambda c: payload(view_submission(user=None)), BAD),
    ("view-submission-user-id-a-list", lambda c: payload(view_submission(user={"id": []})), BAD),
    ("block-actions", lambda c: payload(block_actions()), BAD),  # the bot has no buttons
    ("block-actions-actions-null", lambda c: payload(block_actions(actions=None)), BAD),
    ("block-actions-user-a-string", lambda c: payload(block_actions(user=ASSESSOR)), BAD),
    ("event-null", lambda c: as_json(event_body(event=None)), BAD),
    ("event-missing", lambda c: as_json(event_body(event=DROP)), BAD),
    ("event-a-string", lambda c: as_json(event_body(event="app_home_opened")), BAD),
    ("event-without-type", lambda c: as_json(event_body(event={"user": ASSESSOR})), BAD),
    (
        "event-user-a-dict",
        lambda c: as_json(event_body(event={"type": "app_home_opened", "user": {"id": "U"}})),
        BAD,
    ),
    (
        "home-opened-without-user",
        lambda c: as_json(event_body(event={"type": "app_home_opened", "tab": "home"})),
        QUIET,
    ),
    (
        "event-of-another-type",
        lambda c: as_json(event_body(event={"type": "reaction_added", "user": ASSESSOR})),
        QUIET,
    ),
    ("events-type-unknown", lambda c: as_json(event_body(type="event_wrapper")), BAD),
    ("authorizations-of-strings", lambda c: as_json(event_body(authorizations=["x"])), BAD),
]


@pytest.mark.parametrize(
    ("build", "expected"),
    [pytest.param(build, expected, id=name) for name, build, expected in MALFORMED],
)
async def test_signed_but_malformed_requests_get_400_or_a_polite_refusal(
    client: SlackClient,
    core: Core,
    people: Actor,
    caplog: pytest.LogCaptureFixture,
    build: Callable[[SlackClient], tuple[str, str]],
    expected: str,
) -> None:
    caplog.set_level(logging.INFO)
    before = await counts(core.db)
    body, content_type = build(client)
    status, answer, _ = await client.post(body, content_type)
    await asyncio.sleep(0.3)  # the listener, if any, has run
    assert status != 500
    if expected == BAD:
        assert status == 400, (status, answer)
        assert "error" in json.loads(answer)
        logged = [r for r in caplog.records if "malformed" in r.getMessage()]
        assert len(logged) == 1, [r.getMessage() for r in caplog.records]
        assert body[:200] not in logged[0].getMessage() or not body
    elif expected == POLITE:
        assert status == 200, (status, answer)
        reply = json.loads(answer)
        refusal = reply.get("text") or json.dumps(reply.get("errors"))
        assert reply.get("response_action") == "errors" or refusal.startswith(":no_entry_sign:")
        assert refusal and "Something went wrong" not in refusal
    else:
        assert status == 200, (status, answer)
    assert tracebacks(caplog) == []
    assert await counts(core.db) == before


async def test_a_server_without_a_signing_secret_takes_no_slack_request_over_http(
    settings: Any, core: Core, slack: Any, http: aiohttp.ClientSession, people: None
) -> None:
    """In Socket Mode ``serve`` builds the Bolt app with the placeholder secret "unused": a
    request signed with it must not be served over HTTP."""
    from bot.bootstrap import Bot
    from bot.server import Server
    from bot.slack_app import build_slack_app
    from tests.e2e.conftest import BOT_TOKEN

    app = build_slack_app(
        core, token=BOT_TOKEN, signing_secret="unused", api_url=f"{slack.url}/api/", http=http
    )
    socket_only = Server(Bot(settings, core.config, core.db, core), app)
    await socket_only.start("127.0.0.1", 0)
    try:
        async with aiohttp.ClientSession() as session:
            client = SlackClient(f"http://127.0.0.1:{socket_only.port}", slack, session)
            _, body = client.command_body("role grant <@U0EVIL> manager", "U0ADMIN")
            status, answer, _ = await client.post(body, FORM, secret="unused")
    finally:
        await socket_only.stop()
    assert status == 401, answer
    assert not slack.responses
