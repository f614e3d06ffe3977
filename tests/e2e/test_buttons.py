"""Buttons on the staff alerts, pressed over signed HTTP requests to the running bot (its alerts
posted to the fake Slack Web API, its emails to a real SMTP server): each button as each role,
two managers pressing at once, the message pressed on updated, the forms, App Home's Status."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import func, select, update

from bot.bootstrap import Bot, build_background
from bot.roles import Actor, RoleLevel
from bot.server import Server
from bot.settings import Settings
from bot.slack_app import build_slack_app
from bot.smtp_url import SmtpSettings
from bot.transports import SmtpTransport
from bot.usecases import assessments, imports, readmission, ztp
from bot.usecases.core import Core
from store.db import Database
from store.models import AuditEntry, DeliveryChannel, FollowUp, OutboxMessage, Readmission, ZtpCase
from tests.conftest import EXAMPLES
from tests.e2e.conftest import (
    ADMIN,
    ASSESSOR,
    MANAGER,
    SIGNING_SECRET,
    STRANGER,
    VIEWER,
    SlackClient,
    settled,
)
from tests.e2e.test_security import FAIL4, held_event
from tests.e2e.test_serve import socket_server
from tests.e2e.test_shell import shell
from tests.fakes import FakeSlack, SmtpServer

STAFF = "C0STAFF"
__all__ = ["socket_server"]  # a fixture: the bot in Socket Mode, on the fake Slack's socket


@pytest.fixture
async def running(
    db: Database, settings: Settings, core: Core, slack: FakeSlack, http: aiohttp.ClientSession
) -> AsyncIterator[SlackClient]:
    """The server with its background work (dispatcher, reminders) and an SMTP server."""
    smtp = SmtpServer()
    smtp.start()
    app = build_slack_app(
        core, token="xoxb-t", signing_secret=SIGNING_SECRET, api_url=f"{slack.url}/api/", http=http
    )
    bot = Bot(settings, core.config, db, core)
    email = SmtpTransport(SmtpSettings.from_url(smtp.url))
    server = Server(
        bot,
        app,
        signing_secret=SIGNING_SECRET,
        background=build_background(bot, app.client, email=email),
    )
    await server.start("127.0.0.1", 0)
    async with aiohttp.ClientSession() as session:
        yield SlackClient(f"http://127.0.0.1:{server.port}", slack, session)
    await server.stop()
    smtp.stop()


# --- what Slack sends --------------------------------------------------------------------------


def values_of(message: dict[str, Any]) -> list[str]:
    return [
        e["value"]
        for b in message.get("blocks", [])
        if b.get("type") == "actions"
        for e in b["elements"]
    ]


async def press(
    client: SlackClient,
    user: str,
    value: str,
    *,
    message: dict[str, Any] | None = None,
    home: bool = False,
) -> tuple[int, str]:
    """Press the button whose value is ``value`` on ``message`` (or in App Home); returns the
    HTTP status and the number of the press's response URL."""
    n = str(next(client.counter))
    posted = message or {"ts": "1700000000.999999", "text": "an alert", "blocks": []}
    container: dict[str, Any] = (
        {"type": "view", "view_id": "VHOME"}
        if home
        else {"type": "message", "message_ts": posted["ts"], "channel_id": STAFF}
    )
    payload: dict[str, Any] = {
        "type": "block_actions",
        "user": {"id": user, "username": user.lower(), "team_id": "T0TEST"},
        "api_app_id": "A0PNC",
        "token": "legacy-unused",
        "team": {"id": "T0TEST", "domain": "betterwork"},
        "container": container,
        "trigger_id": f"trigger.{n}",
        "actions": [
            {
                "type": "button",
                "action_id": f"pnc:{value}",
                "block_id": "pnc_buttons_0",
                "value": value,
                "text": {"type": "plain_text", "text": "x"},
                "action_ts": "1700000001.000000",
            }
        ],
    }
    if not home:
        payload |= {
            "channel": {"id": STAFF, "name": "pnc-staff"},
            "message": {"type": "message", **posted},
            "response_url": f"{client.slack.url}/respond/{n}",
        }
    status, _ = await client.interaction(payload)
    return status, n


async def submit(
    client: SlackClient, user: str, view: dict[str, Any], fields: dict[str, Any]
) -> dict[str, Any]:
    """Submit a form the bot opened, with ``fields`` (block id → element state)."""
    payload = {
        "type": "view_submission",
        "team": {"id": "T0TEST", "domain": "betterwork"},
        "user": {"id": user, "username": user.lower(), "team_id": "T0TEST"},
        "api_app_id": "A0PNC",
        "token": "legacy-unused",
        "trigger_id": f"trigger.{next(client.counter)}",
        "view": {
            "id": "V0FORM",
            "type": "modal",
            "callback_id": view["callback_id"],
            "private_metadata": view["private_metadata"],
            "state": {"values": {k: {k: v} for k, v in fields.items()}},
        },
    }
    status, answer = await client.interaction(payload)
    assert status == 200
    return answer


async def opened(slack: FakeSlack, before: int) -> dict[str, Any]:
    """The form the last press opened (``views.open``)."""
    calls = await slack.wait(lambda: slack.calls_to("views.open")[before:])
    view: dict[str, Any] = calls[-1].body["view"]
    return view


async def audited(core: Core, user: str) -> list[tuple[str, str]]:
    """What ``user`` pressed or submitted, and how it ended (the audit log)."""
    await settled()  # reads' entries are written in batches (``read_audits``)
    async with core.db.transaction() as s:
        stmt = (
            select(AuditEntry.subject, AuditEntry.outcome)
            .where(AuditEntry.actor == user, AuditEntry.action == "command")
            .order_by(AuditEntry.id)
        )
        rows = (await s.exec(stmt)).all()  # type: ignore[call-overload]
    return [(str(a), str(b)) for a, b in rows if str(a).startswith(("button:", "form:"))]


async def count(core: Core, model: type, *where: Any) -> int:
    async with core.db.transaction() as s:
        stmt = select(func.count()).select_from(model)
        for condition in where:
            stmt = stmt.where(condition)
        return int((await s.exec(stmt)).scalar_one())  # type: ignore[call-overload]


def updates(slack: FakeSlack, ts: str) -> list[dict[str, Any]]:
    return [c.body for c in slack.calls_to("chat.update") if c.body.get("ts") == ts]


def no_buttons(body: dict[str, Any]) -> bool:
    return all(b.get("type") != "actions" for b in body.get("blocks", []))


def hhmm(core: Core) -> str:
    return f"{core.clock().astimezone(core.settings.tz):%H:%M}"


async def alert(slack: FakeSlack, words: str) -> dict[str, Any]:
    """The staff alert posted with ``words`` in it, and the ``ts`` Slack answered."""
    i, call = await slack.wait(
        lambda: next(
            (
                (i, c)
                for i, c in enumerate(slack.calls)
                if c.method == "chat.postMessage" and words in c.body.get("text", "")
            ),
            None,
        )
    )
    ts = f"1700000000.{100 + _nth(slack, i):06d}"
    return {"ts": ts, "text": call.body["text"], "blocks": call.body["blocks"]}


def _nth(slack: FakeSlack, i: int) -> int:
    """How many messages were posted before the ``i``-th call (the fake numbers its ``ts``)."""
    return sum(1 for c in slack.calls[:i] if c.method in ("chat.postMessage", "chat.postEphemeral"))


# --- the tests ---------------------------------------------------------------------------------


async def test_approve_is_a_managers_and_two_at_once_make_one_approval(
    running: SlackClient, core: Core, slack: FakeSlack, people: None
) -> None:
    client = running
    applied = await client.command(
        "readmission apply VN-1001 https://drive.example/vn-1001/evidence", ASSESSOR
    )
    assert "Readmission under review" in applied.text
    posted = await alert(slack, "Readmission applied for")
    async with core.db.transaction() as s:
        (application,) = (await s.exec(select(Readmission))).scalars()  # type: ignore[call-overload]
    assert values_of(posted) == [f"approve:{application.id}", f"reject:{application.id}"]

    # a viewer and an assessor are refused, for them alone; nothing opens, nothing is written
    forms = len(slack.calls_to("views.open"))
    for who in (VIEWER, ASSESSOR, STRANGER):
        status, n = await press(client, who, f"approve:{application.id}", message=posted)
        assert status == 200
        refused = await slack.wait(lambda n=n: slack.responses.get(n))
        assert refused["response_type"] == "ephemeral" and not refused["replace_original"]
        assert "needs the manager role" in refused["text"] or "no pnc-bot role" in refused["text"]
    assert len(slack.calls_to("views.open")) == forms and not updates(slack, posted["ts"])
    assert await audited(core, VIEWER) == [(f"button: approve:{application.id}", "refused")]

    # two managers press Approve; each gets the form
    await press(client, MANAGER, f"approve:{application.id}", message=posted)
    first = await opened(slack, forms)
    await press(client, ADMIN, f"approve:{application.id}", message=posted)
    second = await opened(slack, forms + 1)
    assert first["callback_id"] == "pnc_press" and [b["block_id"] for b in first["blocks"]] == [
        "note"
    ]
    note = {"type": "plain_text_input", "value": "all resolved"}
    answers = await asyncio.gather(
        submit(client, MANAGER, first, {"note": note}),
        submit(client, ADMIN, second, {"note": note}),
    )
    assert answers == [{}, {}]  # both forms close
    async with core.db.transaction() as s:
        decided = await s.get(Readmission, application.id)
    assert decided is not None and decided.decision == "approved"
    winner = decided.decided_by
    loser = ADMIN if winner == MANAGER else MANAGER
    assert await count(core, AuditEntry, AuditEntry.action == "readmission.approve") == 1
    told = await slack.wait(
        lambda: [c.body for c in slack.calls_to("chat.postEphemeral") if c.body["user"] == loser]
    )
    assert (
        "already approved" in told[0]["text"]
        and f"Already decided by <@{winner}>" in (told[0]["text"])
    )
    updated = await slack.wait(lambda: updates(slack, posted["ts"]))
    assert any(f"Approved by <@{winner}> at {hhmm(core)}" in u["text"] for u in updated)
    assert all(no_buttons(u) and u["channel"] == STAFF for u in updated)
    assert (f"form: press approve:{application.id}", "ok") in await audited(core, winner)
    assert (f"form: press approve:{application.id}", "refused") in await audited(core, loser)


async def test_reject_asks_a_reason(
    running: SlackClient, core: Core, slack: FakeSlack, people: None
) -> None:
    manager = Actor(MANAGER, RoleLevel.MANAGER, "test")
    await readmission.apply(core, manager, "VN-1001", ["https://drive.example/e"])
    async with core.db.transaction() as s:
        (application,) = (await s.exec(select(Readmission))).scalars()  # type: ignore[call-overload]
    await press(running, MANAGER, f"reject:{application.id}")
    form = await opened(slack, 0)
    empty = await submit(running, MANAGER, form, {"reason": {"value": ""}})
    assert "A rejection needs a reason" in empty["errors"]["reason"]
    done = await submit(running, MANAGER, form, {"reason": {"value": "root causes remain"}})
    assert done == {}
    async with core.db.transaction() as s:
        row = await s.get(Readmission, application.id)
    assert (
        row is not None
        and row.decision == "rejected"
        and row.decision_note == ("root causes remain")
    )
    updated = await slack.wait(lambda: updates(slack, "1700000000.999999"))
    assert f"Rejected by <@{MANAGER}> at {hhmm(core)}" in updated[-1]["text"]


async def test_a_stakeholder_meeting_is_marked_held_with_a_date(
    running: SlackClient, core: Core, slack: FakeSlack, people: None
) -> None:
    chief = Actor(ADMIN, RoleLevel.MANAGER, "test")
    for day in ("2026-11-02", "2026-11-10"):
        await assessments.record(core, chief, "VN-1002", day, FAIL4)
    async with core.db.transaction() as s:
        (follow_up,) = (await s.exec(select(FollowUp))).scalars()  # type: ignore[call-overload]
    _, n = await press(running, VIEWER, f"meeting_held:{follow_up.id}")
    assert "needs the assessor role" in (await slack.wait(lambda: slack.responses.get(n)))["text"]
    await press(running, ASSESSOR, f"meeting_held:{follow_up.id}")
    form = await opened(slack, 0)
    assert form["blocks"][0]["element"]["type"] == "datepicker"
    done = await submit(running, ASSESSOR, form, {"day": {"selected_date": "2026-11-15"}})
    assert done == {}
    async with core.db.transaction() as s:
        row = await s.get(FollowUp, follow_up.id)
    assert row is not None and str(row.closed_on) == "2026-11-15" and row.closed_by == ASSESSOR
    again = await submit(running, MANAGER, form, {"day": {"selected_date": "2026-11-16"}})
    assert again == {}
    told = await slack.wait(lambda: slack.calls_to("chat.postEphemeral"))
    assert f"Already decided by <@{ASSESSOR}>" in told[-1].body["text"]
    assert any("Marked held (2026-11-15)" in u["text"] for u in updates(slack, "1700000000.999999"))


async def test_retry_retry_all_and_a_paused_channel(
    running: SlackClient, core: Core, slack: FakeSlack, people: None
) -> None:
    chief = Actor(ADMIN, RoleLevel.MANAGER, "test")
    await assessments.record(core, chief, "VN-1002", "2026-11-02", FAIL4)
    await slack.wait(lambda: slack.calls_to("chat.postMessage"))
    async with core.db.transaction(write=True) as s:
        ids = (await s.exec(select(OutboxMessage.id))).scalars().all()  # type: ignore[call-overload]
        await s.exec(update(OutboxMessage).values(status="dead"))  # type: ignore[call-overload]
    notice = min(ids)
    for who in (VIEWER, ASSESSOR):
        _, n = await press(running, who, f"retry:{notice}")
        assert (
            "needs the manager role"
            in (await slack.wait(lambda n=n: slack.responses.get(n)))["text"]
        )
    assert await count(core, OutboxMessage, OutboxMessage.status == "dead") == len(ids)
    await asyncio.gather(
        press(running, MANAGER, f"retry:{notice}"), press(running, ADMIN, f"retry:{notice}")
    )
    assert await count(core, AuditEntry, AuditEntry.action == "outbox.retry") == 1
    told = await slack.wait(
        lambda: [r for r in slack.responses.values() if "Already decided by" in r["text"]]
    )
    assert "Notice #" in told[0]["text"]
    _, n = await press(running, MANAGER, "retry_all:dead")
    revived = await slack.wait(lambda: slack.responses.get(n))
    assert "dead" in revived["text"]
    assert await count(core, OutboxMessage, OutboxMessage.status == "dead") == 0
    assert any(
        "Every dead notice retried" in u["text"] for u in updates(slack, "1700000000.999999")
    )

    async with core.db.transaction(write=True) as s:
        s.add(DeliveryChannel(name="email", paused_until=core.clock().replace(year=2099)))
    _, n = await press(running, ASSESSOR, "resume:email")
    assert "needs the manager role" in (await slack.wait(lambda: slack.responses.get(n)))["text"]
    await press(running, MANAGER, "resume:email")
    async with core.db.transaction() as s:
        channel = await s.get(DeliveryChannel, "email")
    assert channel is not None and channel.paused_until is None
    _, n = await press(running, ADMIN, "resume:email")
    again = await slack.wait(lambda: slack.responses.get(n))
    assert f"Already decided by <@{MANAGER}>" in again["text"]


async def test_held_events_are_released_or_dismissed_with_a_reason(
    running: SlackClient, core: Core, slack: FakeSlack, people: None
) -> None:
    event = await held_event(core, Actor(ADMIN, RoleLevel.MANAGER, "test"))
    _, n = await press(running, ASSESSOR, f"release:{event}")
    assert "needs the manager role" in (await slack.wait(lambda: slack.responses.get(n)))["text"]
    await press(running, MANAGER, f"dismiss:{event}")
    form = await opened(slack, 0)
    done = await submit(running, MANAGER, form, {"reason": {"value": "told by phone"}})
    assert done == {}
    _, n = await press(running, ADMIN, f"release:{event}")
    late = await slack.wait(lambda: slack.responses.get(n))
    assert "already dismissed" in late["text"] and f"<@{MANAGER}>" in late["text"]
    assert await count(core, AuditEntry, AuditEntry.action == "review.dismiss") == 1
    assert await count(core, AuditEntry, AuditEntry.action == "review.release") == 0


async def test_a_zero_tolerance_case_is_updated_from_its_alert(
    running: SlackClient, core: Core, slack: FakeSlack, people: None
) -> None:
    chief = Actor(ADMIN, RoleLevel.MANAGER, "test")
    case = (await ztp.open_by_hand(core, chief, "VN-1004", "CL-01", "a child at the press")).case
    posted = await alert(slack, f"Zero-tolerance case #{case.id}")
    assert values_of(posted) == [f"ztp_update:{case.id}"]
    _, n = await press(running, VIEWER, f"ztp_update:{case.id}", message=posted)
    assert "needs the assessor role" in (await slack.wait(lambda: slack.responses.get(n)))["text"]
    await press(running, ASSESSOR, f"ztp_update:{case.id}", message=posted)
    form = await opened(slack, 0)
    step = {"selected_option": {"value": "investigating"}}
    done = await submit(
        running, ASSESSOR, form, {"step": step, "note": {"value": "police on site"}}
    )
    assert done == {}
    async with core.db.transaction() as s:
        row = await s.get(ZtpCase, case.id)
    assert row is not None and row.status == "investigating"
    updated = await slack.wait(lambda: updates(slack, posted["ts"]))
    assert "Updated to `investigating`" in updated[-1]["text"] and no_buttons(updated[-1])
    again = await submit(running, MANAGER, form, {"step": step, "note": {"value": "again"}})
    assert again == {}
    told = await slack.wait(lambda: slack.calls_to("chat.postEphemeral"))
    assert f"Already decided by <@{ASSESSOR}>" in told[-1].body["text"]


async def test_app_home_status_answers_only_the_person_who_pressed(
    running: SlackClient, core: Core, slack: FakeSlack, people: None
) -> None:
    assert await running.event({"type": "app_home_opened", "user": VIEWER, "tab": "home"}) == 200
    home = (await slack.wait(lambda: slack.calls_to("views.publish")))[-1].body["view"]
    rows = [b for b in home["blocks"] if b.get("accessory")]
    assert rows and all(r["accessory"]["value"].startswith("status:") for r in rows)
    assert "status:VN-1001" in [r["accessory"]["value"] for r in rows]
    await press(running, VIEWER, "status:VN-1001", home=True)
    shown = await slack.wait(
        lambda: [c.body for c in slack.calls_to("chat.postMessage") if c.body["channel"] == VIEWER]
    )
    assert "VN-1001" in shown[0]["text"] and "Persistently non-compliant" in shown[0]["text"]
    await press(running, STRANGER, "status:VN-1001", home=True)
    refused = await slack.wait(
        lambda: [
            c.body for c in slack.calls_to("chat.postMessage") if c.body["channel"] == STRANGER
        ]
    )
    assert "needs the viewer role" in refused[0]["text"]
    assert await audited(core, VIEWER) == [("button: status:VN-1001", "ok")]


async def test_forged_and_malformed_presses(
    running: SlackClient, core: Core, slack: FakeSlack, people: None
) -> None:
    _, n = await press(running, MANAGER, "approve:DROP TABLE")
    forged = await slack.wait(lambda: slack.responses.get(n))
    assert "not one pnc-bot made" in forged["text"]
    assert await audited(core, MANAGER) == [("button: (not readable)", "refused")]
    status, _ = await running.interaction(
        {"type": "block_actions", "user": {"id": MANAGER}, "actions": "approve:1"}
    )
    assert status == 400
    status, _ = await running.interaction(
        {
            "type": "block_actions",
            "user": {"id": MANAGER},
            "actions": [{"action_id": "other:1", "value": "approve:1"}],
        }
    )
    assert status == 400
    forged_form = await submit(
        running,
        MANAGER,
        {"callback_id": "pnc_press", "private_metadata": json.dumps({"press": "approve:x"})},
        {},
    )
    assert "not one pnc-bot opened" in json.dumps(forged_form)


async def test_socket_mode_carries_presses(socket_server: Server, slack: FakeSlack) -> None:
    """Socket Mode routes a press to the same listeners as HTTP (the door, then the action)."""
    payload = {
        "type": "block_actions",
        "user": {"id": ADMIN, "username": "admin"},
        "team": {"id": "T0TEST"},
        "api_app_id": "A0PNC",
        "container": {"type": "message", "message_ts": "1700000000.5", "channel_id": STAFF},
        "channel": {"id": STAFF},
        "message": {"ts": "1700000000.5", "text": "x", "blocks": []},
        "trigger_id": "trigger.socket",
        "response_url": f"{slack.url}/respond/socket-press",
        "actions": [
            {"type": "button", "action_id": "pnc:retry_all:dead", "value": "retry_all:dead"}
        ],
    }
    ack = await slack.envelope("interactive", payload)
    assert ack["envelope_id"].startswith("env-")
    reply = await slack.wait(lambda: slack.responses.get("socket-press"))
    assert reply["response_type"] == "ephemeral" and "dead" in reply["text"]
    viewer = {**payload, "user": {"id": "U0NOBODY"}, "response_url": f"{slack.url}/respond/s2"}
    await slack.envelope("interactive", viewer)
    refused = await slack.wait(lambda: slack.responses.get("s2"))
    assert "no pnc-bot role" in refused["text"] or "needs the manager role" in refused["text"]


async def test_the_shell_presses_a_button_by_its_number(
    tmp_path: Path, db: Database, core: Core
) -> None:
    for kind in ("factories", "buyers", "subscriptions", "assessments"):
        await imports.run(
            core, kind, EXAMPLES / f"{kind}.csv", Actor(ADMIN, RoleLevel.MANAGER, "t")
        )
    env = {
        "PNC_DATABASE_URL": db.url.render_as_string(hide_password=False),
        "PNC_STAFF_CHANNEL": STAFF,
        "PNC_OUTBOX_DIR": str(tmp_path / "outbox"),
    }
    result = shell(
        [
            "/pnc readmission apply VN-1001 https://drive.example/vn-1001/evidence",
            "press 9",
            "press 1 all root causes resolved",
            "press 1 again",
        ],
        tmp_path,
        env,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "[1] Approve (press 1)" in out and "[2] Reject (press 2)" in out
    assert "No such button" in out
    assert "[message updated in C0STAFF]" in out and "Approved by shell:" in out
    assert "already approved" in out  # the second press is told; nothing more is written
    async with core.db.transaction() as s:
        (row,) = (await s.exec(select(Readmission))).scalars()  # type: ignore[call-overload]
    assert row.decision == "approved" and row.decision_note == "all root causes resolved"
    assert "Traceback" not in result.stderr


#: each button, and the least role that may press it (the command's it stands for)
LEAST_ROLE = {
    "approve:1": MANAGER,
    "reject:1": MANAGER,
    "meeting_held:1": ASSESSOR,
    "retry:1": MANAGER,
    "retry_all:dead": MANAGER,
    "resume:email": MANAGER,
    "release:1": MANAGER,
    "dismiss:1": MANAGER,
    "ztp_update:1": ASSESSOR,
    "status:VN-1001": VIEWER,
}
RANKED = [STRANGER, VIEWER, ASSESSOR, MANAGER]


async def test_every_button_as_every_role(
    running: SlackClient, core: Core, slack: FakeSlack, people: None
) -> None:
    """Below the button's role: refused for the presser alone, audited, nothing done (no form,
    no message updated, nothing written but the refusal's audit entry). From it on: past the
    door (a form opens, or the use case answers)."""
    for value, least in LEAST_ROLE.items():
        for who in RANKED:
            allowed = RANKED.index(who) >= RANKED.index(least)
            forms, edits = len(slack.calls_to("views.open")), len(slack.calls_to("chat.update"))
            written = await count(core, AuditEntry, AuditEntry.action != "command")
            _, n = await press(running, who, value)
            if allowed and value.startswith(FORM_BUTTONS):
                await opened(slack, forms)
                continue
            answer = await slack.wait(lambda n=n: slack.responses.get(n))
            assert answer["response_type"] == "ephemeral"
            if allowed:
                assert "role" not in answer["text"], (value, who, answer["text"])
                continue
            assert "role" in answer["text"], (value, who, answer["text"])
            assert len(slack.calls_to("views.open")) == forms
            assert len(slack.calls_to("chat.update")) == edits
            assert await count(core, AuditEntry, AuditEntry.action != "command") == written
    pressed = await audited(core, VIEWER)
    assert ("button: approve:1", "refused") in pressed
    assert ("button: status:VN-1001", "ok") in pressed


FORM_BUTTONS = ("approve:", "reject:", "meeting_held:", "dismiss:", "ztp_update:")
