"""Zero-tolerance cases end to end (#13): an assessment finding child labour, typed in Slack
through signed HTTP to the running server, brings the urgent staff alert to the (fake) Slack
and the authorities' email to a real SMTP server, in Vietnamese with English below; ``/pnc ztp``
lists the case, ``status`` shows it, ``/pnc ztp update`` moves it on, as the roles allow; and
the installed ``pnc-bot ztp`` does the same on the command line."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.settings import Settings
from bot.usecases.core import Core
from store.db import Database
from tests.e2e.conftest import ASSESSOR, MANAGER, VIEWER, SlackClient
from tests.e2e.test_cli import import_examples, run
from tests.fakes import FakeSlack, SmtpServer

AUTHORITY = "ztp@molisa.example"
CONFIG = f'[countries.VN]\nztp_emails = ["{AUTHORITY}"]\n'


@pytest.fixture
def settings(database: Database, tmp_path: Path) -> Settings:
    """The test settings, with the authorities' address of Viet Nam configured."""
    path = tmp_path / "pnc.toml"
    path.write_text(CONFIG, encoding="utf-8")
    return Settings(
        database_url=database.url.render_as_string(hide_password=False),
        inspectorate_email="inspection@molisa.example",
        admins="U0ADMIN",
        staff_channel="C0STAFF",
        config_path=path,
    )


@pytest.fixture
async def running(
    db: Database, settings: Settings, core: Core, slack: FakeSlack, http: aiohttp.ClientSession
) -> AsyncIterator[tuple[SlackClient, SmtpServer]]:
    """The server with its background work (clock, dispatcher, reminders) and an SMTP server."""
    from bot.bootstrap import Bot, build_background
    from bot.server import Server
    from bot.slack_app import build_slack_app
    from bot.smtp_url import SmtpSettings
    from bot.transports import SmtpTransport
    from tests.e2e.conftest import SIGNING_SECRET

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


def alerts(slack: FakeSlack) -> list[str]:
    return [str(c.body["text"]) for c in slack.calls_to("chat.postMessage")]


async def test_child_labour_found_in_slack_reaches_staff_and_the_authorities(
    running: Any, slack: FakeSlack, people: None
) -> None:
    client, smtp = running
    reply = await client.command("assess VN-1003 2026-11-18 CL-01,OS-01 advisory", ASSESSOR)
    assert "VN-1003" in reply.text
    await slack.wait(
        lambda: smtp.received and any("Zero-tolerance case" in t for t in alerts(slack))
    )
    (alert,) = [t for t in alerts(slack) if "Zero-tolerance case" in t]
    assert "Urgent" in alert and "`CL-01`" in alert and AUTHORITY in alert
    assert "The factory is not emailed" in alert
    (mail,) = smtp.received
    assert mail.recipients == [AUTHORITY] and mail.message["PNC-Notice"] == "ztp_referral"
    text = mail.message.get_body(("plain",)).get_content()
    assert text.index("Kính gửi: Cơ quan chức năng") < text.index("To the authorities (Viet Nam)")
    # listed, and shown in the factory's status
    listed = await client.command("ztp", VIEWER)
    assert "Zero-tolerance cases open*: 1" in listed.text and "`VN-1003`" in listed.text
    number = listed.text.split("*#", 1)[1].split("*", 1)[0]
    status = await client.command("status VN-1003", VIEWER)
    assert "Zero-tolerance case open" in status.text and f"#{number} `CL-01`" in status.text
    # progress: viewers may not record it; a step is refused with what would be right
    denied = await client.command(f"ztp update {number} investigating called", VIEWER)
    assert "`ztp update` needs the assessor role" in denied.text
    wrong = await client.command(f"ztp update {number} investigate called", ASSESSOR)
    assert "Did you mean `investigating`?" in wrong.text
    moved = await client.command(f"ztp update {number} investigating DOLISA opened it", ASSESSOR)
    assert f"case *#{number}*" in moved.text and "*investigating*" in moved.text
    closed = await client.command(f"ztp update {number} closed remediated", MANAGER)
    assert "*closed*" in closed.text and "reminders are cancelled" in closed.text
    again = await client.command(f"ztp update {number} closed twice", MANAGER)
    assert f"Case #{number} was closed" in again.text
    assert "No zero-tolerance case is open" in (await client.command("ztp", VIEWER)).text


async def test_a_case_opened_by_hand_in_slack(running: Any, slack: FakeSlack, people: None) -> None:
    client, smtp = running
    refused = await client.command("ztp open VN-1004 OS-01", ASSESSOR)
    assert "needs the factory, an issue code and a note" in refused.text
    unknown = await client.command("ztp open VN-1004 OS-1 exits locked", ASSESSOR)
    assert "did you mean `OS-01`" in unknown.text
    opened = await client.command('ztp open vn-1004 os-01 "exits locked at night"', ASSESSOR)
    assert "Opened zero-tolerance case" in opened.text and AUTHORITY in opened.text
    assert "The factory is not emailed" in opened.text
    await slack.wait(lambda: smtp.received)
    assert smtp.received[0].recipients == [AUTHORITY]
    assert "exits locked at night" in smtp.received[0].message.get_body(("plain",)).get_content()


def test_the_command_line_lists_opens_and_moves_cases(tmp_path: Path, env: dict[str, str]) -> None:
    config = tmp_path / "pnc.toml"
    config.write_text(CONFIG, encoding="utf-8")
    env = {**env, "PNC_CONFIG": str(config)}
    imported = import_examples(tmp_path, env)[3]
    assert "1 zero-tolerance finding recorded as a closed case, not escalated" in imported
    assert "No zero-tolerance case is open." in run("ztp", cwd=tmp_path, env=env).stdout
    opened = run("ztp", "open", "VN-1002", "FL-01", "passports", "held", cwd=tmp_path, env=env)
    assert "Opened zero-tolerance case #" in opened.stdout
    assert f"The authorities are emailed: {AUTHORITY}" in opened.stdout
    (case,) = json.loads(run("ztp", "list", "--json", cwd=tmp_path, env=env).stdout)
    assert (case["factory_id"], case["code"], case["status"]) == ("VN-1002", "FL-01", "open")
    assert case["note"] == "passports held"
    number = str(case["id"])
    moved = run("ztp", "update", number, "action-plan", "agreed", cwd=tmp_path, env=env)
    assert f"#{number} (VN-1002, FL-01) is now action-plan" in moved.stdout
    back = run("ztp", "update", number, "investigating", "x", cwd=tmp_path, env=env, ok=False)
    assert back.returncode == 1 and "forward only" in back.stderr
    status = json.loads(run("status", "VN-1002", "--json", cwd=tmp_path, env=env).stdout)
    assert [c["status"] for c in status["ztp_cases"]] == ["action-plan"]
    text = run("status", "VN-1002", cwd=tmp_path, env=env).stdout
    assert f"Zero-tolerance case #{number} open: FL-01" in text


@pytest.fixture
def env(db: Database) -> dict[str, str]:
    return {"PNC_DATABASE_URL": db.url.render_as_string(hide_password=False)}
