"""A wrong ``PNC_SMTP_URL``: STARTTLS asked of a server that offers none is a configuration
fault (the channel paused, no attempt spent, staff told once what to fix); a URL that cannot be
read is refused in one line that never shows its password — by the function and by
``pnc-bot serve``, before the database is touched."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from sqlmodel import select

from bot.errors import ConfigError
from bot.render import render_slack
from bot.smtp_url import SmtpSettings
from bot.transports import SmtpTransport
from bot.usecases import assessments
from bot.usecases.core import Core
from store.models import DeliveryChannel
from tests.conftest import ASSESSOR, FrozenClock
from tests.e2e.test_cli import PNC_BOT, environment
from tests.fakes import FakeSlack, SmtpServer
from tests.integration.helpers import FAIL4, dispatcher, drain, outbox, slack_transport

PASSWORD = "hunter2-smtp-pw"


async def test_starttls_asked_of_a_server_without_it_pauses_the_channel_and_alerts_once(
    core: Core, clock: FrozenClock, registered: None, slack: FakeSlack
) -> None:
    server = SmtpServer(password=PASSWORD)  # plain SMTP: no STARTTLS offered
    server.start()
    try:
        wrong = SmtpSettings.from_url(server.url + "&starttls=true")
        await assessments.record(core, ASSESSOR, "VN-1", "2026-01-10", FAIL4)
        d = dispatcher(core, SmtpTransport(wrong), slack_transport(slack))
        for _ in range(15):  # more rounds than a notice has attempts; each past the pause
            clock.advance(minutes=10)
            await drain(d)
        await d.close()
        emails = [r for r in await outbox(core) if r.channel == "email"]
        assert emails and {r.status for r in emails} == {"pending"}
        assert [r.attempts for r in emails] == [0] * len(emails)
        async with core.db.transaction() as s:
            channel = (await s.exec(select(DeliveryChannel))).one()
        assert channel.name == "email" and channel.paused_until is not None
        assert channel.paused_until > clock.now
        reason = channel.reason or ""
        assert "STARTTLS" in reason and "?starttls=true" in reason and "smtps://" in reason
        alerts = [r for r in await outbox(core) if r.kind == "channel_paused"]
        assert len(alerts) == 1
        text = render_slack("slack/alerts/channel_paused.txt", **alerts[0].payload)
        assert "STARTTLS" in text and PASSWORD not in text
        assert server.received == []
    finally:
        server.stop()


BAD_URLS = [
    f"smtp://pnc:{PASSWORD}@[::1:25",  # an unclosed IPv6 address
    f"smtp://pnc:{PASSWORD}@[relay.example]:25",  # not an IPv6 address in brackets
    f"smtp://pnc:{PASSWORD}@relay.example:99999",  # a port out of range
    f"smtp://pnc:{PASSWORD}@relay.example:25?timeout=-1",
    f"smtp://pnc:{PASSWORD}@relay.example:25?timeout=nan",
    f"smtp://pnc:{PASSWORD}@relay.example:25?starttls=ture",  # a misspelt choice
    f"smtps://pnc:{PASSWORD}@relay.example:465?starttls=true",  # TLS twice
    f"smtp://pnc:{PASSWORD}@relay.example:587?startls=true",  # a misspelt option
    f"smtp://pnc:1234?{PASSWORD}@relay.example:587",  # a "?" in the password, not encoded
    f"smtp://pnc:pw/{PASSWORD}@relay.example:587",  # a "/" in the password, not encoded
]


@pytest.mark.parametrize("url", BAD_URLS)
def test_an_unreadable_smtp_url_is_refused_in_one_line_without_its_password(url: str) -> None:
    with pytest.raises(ConfigError) as refused:
        SmtpSettings.from_url(url)
    text = refused.value.render()
    assert "PNC_SMTP_URL" in text and "\n" not in text
    assert PASSWORD not in text and PASSWORD not in repr(refused.value)
    assert refused.value.__cause__ is None or PASSWORD not in str(refused.value.__cause__)


def test_readable_smtp_urls_are_still_read() -> None:
    v6 = SmtpSettings.from_url(f"smtp://pnc:{PASSWORD}@[::1]:2525?starttls=true&timeout=5")
    assert (v6.hostname, v6.port, v6.start_tls, v6.timeout) == ("::1", 2525, True, 5.0)
    assert SmtpSettings.from_url("smtps://relay.example").port == 465
    assert SmtpSettings.from_url("smtp://relay.example?starttls=no").start_tls is False
    assert SmtpSettings.from_url("smtp://relay.example").start_tls is None


def test_serve_refuses_an_unreadable_smtp_url_before_migrating(tmp_path: Path) -> None:
    database = tmp_path / "pnc.db"
    result = subprocess.run(
        [str(PNC_BOT), "serve", "--host", "127.0.0.1", "--port", "9"],
        cwd=tmp_path,
        env=environment(
            {
                "PNC_DATABASE_URL": f"sqlite+aiosqlite:///{database}",
                "PNC_SMTP_URL": BAD_URLS[0],
                "SLACK_BOT_TOKEN": "xoxb-x",
                "SLACK_SIGNING_SECRET": "s3cr3t-signing",
            }
        ),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: PNC_SMTP_URL"), result.stderr
    assert PASSWORD not in result.stderr + result.stdout
    assert not database.exists()
