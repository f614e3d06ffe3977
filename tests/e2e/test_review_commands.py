"""Held events reviewed end to end: Cambodia enabled part-way through, then ``/pnc review`` through
signed HTTP requests to the running bot (its notices delivered over SMTP and to Slack), and
``pnc-bot review`` on the command line (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
import re
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import func, select

from bot.bootstrap import Bot, build_background
from bot.countries import load_config
from bot.roles import Actor, RoleLevel
from bot.server import Server
from bot.settings import Settings
from bot.slack_app import build_slack_app
from bot.smtp_url import SmtpSettings
from bot.transports import SmtpTransport
from bot.usecases import access, imports, rules
from bot.usecases.core import Core
from store.db import Database
from store.models import AuditEntry, OutboxMessage, PncEvent
from tests.conftest import EXAMPLES
from tests.e2e.conftest import ADMIN, ASSESSOR, MANAGER, SIGNING_SECRET, SlackClient
from tests.e2e.test_cli import env, import_examples, run
from tests.fakes import FakeSlack, SmtpServer

__all__ = ["env"]  # the command line's database, a fixture

KH_ENABLED = (
    '[countries.KH]\npnc_enabled = true\ninspectorate_emails = ["inspection@mlvt.example.gov.kh"]\n'
)


@pytest.fixture
def settings(database: Database, tmp_path: Path) -> Settings:
    """The test settings, with a config file that covers Cambodia."""
    path = tmp_path / "pnc.toml"
    path.write_text(KH_ENABLED, encoding="utf-8")
    return Settings(
        database_url=database.url.render_as_string(hide_password=False),
        inspectorate_email="inspection@molisa.example",
        admins=ADMIN,
        staff_channel="C0STAFF",
        config_path=path,
    )


@pytest.fixture
async def running(
    db: Database, settings: Settings, core: Core, slack: FakeSlack, http: aiohttp.ClientSession
) -> AsyncIterator[tuple[SlackClient, SmtpServer]]:
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
        yield SlackClient(f"http://127.0.0.1:{server.port}", slack, session), smtp
    await server.stop()
    smtp.stop()


async def held(core: Core) -> list[tuple[str, int]]:
    """The kind and id of each event held for review, oldest first."""
    async with core.db.transaction() as s:
        found = await s.exec(
            select(PncEvent).where(PncEvent.notice == "held").order_by(PncEvent.id)
        )
        return [(e.kind, e.id or 0) for e in found.scalars()]


async def count(core: Core, model: type, *where: Any) -> int:
    async with core.db.transaction() as s:
        stmt = select(func.count()).select_from(model)
        for condition in where:
            stmt = stmt.where(condition)
        return (await s.exec(stmt)).scalar_one()


async def test_a_manager_releases_the_designation_held_when_cambodia_was_enabled(
    running: tuple[SlackClient, SmtpServer], core: Core, slack: FakeSlack
) -> None:
    client, smtp = running
    # the history was recorded while Cambodia was not covered: nobody was told anything
    before = core.settings.model_copy(update={"config_path": None})
    uncovered = Core(core.db, load_config(before), before, core.clock)
    await rules.refresh(uncovered)
    admin = Actor(ADMIN, RoleLevel.MANAGER, "test")
    for kind in ("factories", "buyers", "subscriptions", "assessments"):
        await imports.run(uncovered, kind, EXAMPLES / f"{kind}.csv", admin)
    for user, role in ((ASSESSOR, "assessor"), (MANAGER, "manager")):
        await access.grant(core, admin, user, role)
    assert await rules.refresh(core) == {"KH": 1}  # the bot started with Cambodia enabled
    alert = await slack.wait(
        lambda: [c for c in slack.calls_to("chat.postMessage") if "Rules changed" in c.body["text"]]
    )
    assert "`/pnc review`" in alert[0].body["text"]
    events = await held(core)
    assert [kind for kind, _ in events] == ["at_risk_warning", "at_risk_warning", "pnc_designated"]
    (_, warning), _, (_, designation) = events
    assert smtp.received == []

    status = await client.command("status KH-2001", ASSESSOR)
    assert (
        "*Persistently non-compliant*" in status.text
        and "*Held for review*: 3 events" in status.text
    )

    # an assessor may not review: refused at the door, nothing written
    outbox_before = await count(core, OutboxMessage)
    for text in ("review", f"review release {designation}", f"review dismiss {designation} x"):
        refused = await client.command(text, ASSESSOR)
        assert "needs the manager role" in refused.text, refused.text
    assert await held(core) == events and await count(core, OutboxMessage) == outbox_before

    listed = await client.command("review", MANAGER)
    assert "*Events held for review*: 3" in listed.text
    assert f"*#{designation}* `KH-2001` Phnom Penh Textiles" in listed.text
    assert "held because the country's rules changed" in listed.text.lower()
    assert f"`/pnc review release {designation}`" in listed.text

    started = time.monotonic()
    released = await client.command(f"review release {designation}", MANAGER)
    assert f"Released #{designation}" in released.text and "4 notices written" in released.text
    assert "Pacific Brands" in released.text and "stakeholders is tracked" in released.text
    await slack.wait(lambda: len(smtp.received) >= 3)
    urgent = await slack.wait(
        lambda: [
            c
            for c in slack.calls_to("chat.postMessage")
            if "Urgent" in c.body["text"] and "KH-2001" in c.body["text"]
        ]
    )
    assert urgent and time.monotonic() - started < 10
    sent = sorted((str(m.message["PNC-Notice"]), tuple(m.recipients)) for m in smtp.received)
    assert sent == [
        ("inspectorate_referral", ("inspection@mlvt.example.gov.kh",)),
        ("pnc_designated", ("hr@pptextiles.example",)),
        ("pnc_designated", ("responsible.sourcing@pacific.example",)),
    ]

    again = await client.command(f"review release {designation}", ADMIN)
    assert "no longer held for review" in again.text and f"<@{MANAGER}>" in again.text
    no_reason = await client.command(f"review dismiss {warning}", MANAGER)
    assert "A dismissal needs a reason" in no_reason.text
    dismissed = await client.command(
        f"review dismiss {warning} two years old, told by phone", MANAGER
    )
    assert (
        f"Dismissed #{warning}" in dismissed.text
        and "two years old, told by phone" in dismissed.text
    )
    unknown = await client.command("review release 987654", MANAGER)
    assert "There is no event `#987654`" in unknown.text and "`review` lists" in unknown.text
    malformed = await client.command("review everything", MANAGER)
    assert "`review` lists the events held for review" in malformed.text
    left = await client.command("review", MANAGER)
    assert "*Events held for review*: 1" in left.text
    assert await count(core, AuditEntry, AuditEntry.action == "review.release") == 1
    assert await count(core, AuditEntry, AuditEntry.action == "review.dismiss") == 1
    refusals = await count(
        core, AuditEntry, AuditEntry.actor == ASSESSOR, AuditEntry.outcome == "refused"
    )
    assert refusals == 3


def test_the_command_line_reviews_what_enabling_cambodia_held(
    tmp_path: Path, env: dict[str, str]
) -> None:
    import_examples(tmp_path, env)  # Cambodia not covered: its factory's history tells nobody
    config = tmp_path / "pnc.toml"
    config.write_text(KH_ENABLED, encoding="utf-8")
    covered = {**env, "PNC_CONFIG": str(config)}
    listed = run("review", cwd=tmp_path, env=covered).stdout  # starts with Cambodia covered
    assert listed.startswith("Events held for review: 3")
    numbers = [int(n) for n in re.findall(r"^#(\d+)  KH-2001", listed, re.MULTILINE)]
    assert len(numbers) == 3, listed
    assert "held because the country's rules changed" in listed
    first, second, designation = numbers
    as_json = json.loads(run("review", "list", "--json", cwd=tmp_path, env=covered).stdout)
    assert [e["kind"] for e in as_json["events"]] == [
        "at_risk_warning",
        "at_risk_warning",
        "pnc_designated",
    ]
    status = json.loads(run("status", "KH-2001", "--json", cwd=tmp_path, env=covered).stdout)
    assert status["label"] == "Persistently non-compliant"
    assert [e["id"] for e in status["held_for_review"]] == numbers
    assert "Held for review: 3 events" in run("status", "KH-2001", cwd=tmp_path, env=covered).stdout

    released = run("review", "release", str(designation), cwd=tmp_path, env=covered).stdout
    assert released.startswith(f"released #{designation}: the designation as persistently")
    assert "email to Labour Inspectorate (Cambodia)" in released
    assert "email to Pacific Brands" in released and "stakeholders is tracked" in released
    again = run("review", "release", str(designation), cwd=tmp_path, env=covered, ok=False)
    assert again.returncode == 1 and "no longer held for review" in again.stderr
    assert "It was released on" in again.stderr and "by cli:" in again.stderr
    no_reason = run("review", "dismiss", str(first), cwd=tmp_path, env=covered, ok=False)
    assert no_reason.returncode == 1 and "A dismissal needs a reason" in no_reason.stderr
    dismissed = run(
        "review", "dismiss", f"#{first}", "two", "years", "old", cwd=tmp_path, env=covered
    ).stdout
    assert dismissed.startswith(f"dismissed #{first}") and "reason: two years old" in dismissed
    unknown = run("review", "release", "987654", cwd=tmp_path, env=covered, ok=False)
    assert "There is no event `#987654`" in unknown.stderr
    left = run("review", cwd=tmp_path, env=covered).stdout
    assert left.startswith("Events held for review: 1") and f"#{second}  KH-2001" in left

    outbox = tmp_path / "emails"
    sent = run("outbox", "send", cwd=tmp_path, env={**covered, "PNC_OUTBOX_DIR": str(outbox)})
    assert sent.returncode == 0
    kinds = sorted(
        re.findall(r"^PNC-Notice: (\S+)", p.read_text(), re.MULTILINE)[0]
        for p in outbox.glob("*.eml")
    )
    assert kinds == ["inspectorate_referral", "pnc_designated", "pnc_designated"]
