"""``/metrics`` scraped over HTTP and read with prometheus-client's own parser: after commands
and deliveries to a real SMTP server, with two replicas on one PostgreSQL database, and with
the database gone."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot.bootstrap import Bot, build_background
from bot.errors import ConfigError
from bot.metrics import Exporter
from bot.server import Server
from bot.settings import Settings
from bot.slack_app import build_slack_app
from bot.smtp_url import SmtpSettings
from bot.transports import SmtpTransport
from bot.usecases import assessments, calls
from bot.usecases.core import Core
from store import outbox
from store.db import Database
from tests.conftest import ASSESSOR as ASSESSOR_ACTOR
from tests.conftest import MANAGER, NOW, FrozenClock
from tests.e2e.conftest import ASSESSOR, SIGNING_SECRET, STRANGER, VIEWER, FakeSlack, SlackClient
from tests.e2e.test_slack import FAIL4
from tests.fakes import SmtpServer, free_port

#: a sample: (name, sorted label pairs)
Key = tuple[str, tuple[tuple[str, str], ...]]

DATABASE_FAMILIES = {
    "pnc_database_up",
    "pnc_outbox_depth",
    "pnc_outbox_oldest_pending_seconds",
    "pnc_reminders_due",
    "pnc_reminders_late",
    "pnc_channel_paused",
}
PROCESS_FAMILIES = {
    "pnc_deliveries",
    "pnc_delivery_latency_seconds",
    "pnc_command_duration_seconds",
    "pnc_refusals",
}


async def scrape(session: aiohttp.ClientSession, port: int) -> tuple[set[str], dict[Key, float]]:
    """The families and samples ``/metrics`` shows, parsed by prometheus-client."""
    async with session.get(f"http://127.0.0.1:{port}/metrics") as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain; version=")
        text = await response.text()
    families = list(text_string_to_metric_families(text))
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value for f in families for s in f.samples
    }
    return {f.name for f in families}, samples


def value(samples: dict[Key, float], name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.fixture
async def smtp() -> AsyncIterator[SmtpServer]:
    server = SmtpServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
async def running(
    db: Database,
    settings: Settings,
    core: Core,
    slack: FakeSlack,
    http: aiohttp.ClientSession,
    smtp: SmtpServer,
) -> AsyncIterator[tuple[Server, Exporter]]:
    """The server with its dispatcher delivering to the SMTP server, and its metrics port."""
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
    exporter = Exporter(db, core.clock)
    await server.start("127.0.0.1", 0)
    await exporter.start("127.0.0.1", 0)
    yield server, exporter
    await exporter.stop()
    await server.stop()


async def test_metrics_report_commands_refusals_deliveries_and_the_outbox(
    running: tuple[Server, Exporter], slack: FakeSlack, smtp: SmtpServer, people: None
) -> None:
    server, exporter = running
    assert exporter.port is not None
    smtp.refuse["sourcing@acme.example"] = "550 5.1.1 no such mailbox"
    async with aiohttp.ClientSession() as session:
        _, before = await scrape(session, exporter.port)
        client = SlackClient(f"http://127.0.0.1:{server.port}", slack, session)
        assert "VN-1001" in (await client.command("status VN-1001", VIEWER)).text
        await client.command("status VN-9999", VIEWER)  # no such factory
        await client.command("status VN-1001", STRANGER)  # no role
        reply = await client.command(f"assess VN-1002 2026-11-02 {FAIL4}", ASSESSOR)
        assert "At risk (2 of 3)" in reply.text
        # the factory's warning is sent; the buyer's is refused for good: a dead notice
        for _ in range(100):
            families, after = await scrape(session, exporter.port)
            dead = value(after, "pnc_outbox_depth", status="dead", channel="email")
            if dead and smtp.received:
                break
            await asyncio.sleep(0.1)

    assert families >= DATABASE_FAMILIES | PROCESS_FAMILIES
    assert value(after, "pnc_database_up") == 1
    assert value(after, "pnc_outbox_depth", status="dead", channel="email") == 1
    assert value(after, "pnc_outbox_depth", status="held", channel="email") == 0
    assert value(after, "pnc_channel_paused", channel="email") == 0
    assert ("pnc_reminders_due", ()) in after and ("pnc_reminders_late", ()) in after

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert grew("pnc_deliveries_total", channel="email", outcome="sent") >= 1
    assert grew("pnc_deliveries_total", channel="email", outcome="dead") == 1
    assert grew("pnc_delivery_latency_seconds_count", channel="email") >= 1
    ok = {"subcommand": "status", "outcome": "ok"}
    assert grew("pnc_command_duration_seconds_count", **ok) == 1
    refused = {"subcommand": "status", "outcome": "refused"}
    assert grew("pnc_command_duration_seconds_count", **refused) == 2
    assert grew("pnc_command_duration_seconds_count", subcommand="assess", outcome="ok") == 1
    assert grew("pnc_refusals_total", code="unknown_factory") == 1
    assert sum(grew("pnc_refusals_total", code=c) for _, c in _codes(after)) == 2


def _codes(samples: dict[Key, float]) -> list[tuple[str, str]]:
    return [(n, dict(labels)["code"]) for n, labels in samples if n == "pnc_refusals_total"]


async def test_a_channel_that_is_down_shows_as_paused_and_its_notices_as_pending(
    running: tuple[Server, Exporter], slack: FakeSlack, smtp: SmtpServer, people: None
) -> None:
    server, exporter = running
    assert exporter.port is not None
    smtp.stop()  # SMTP unreachable: the email channel is paused
    async with aiohttp.ClientSession() as session:
        _, before = await scrape(session, exporter.port)
        client = SlackClient(f"http://127.0.0.1:{server.port}", slack, session)
        await client.command(f"assess VN-1002 2026-11-02 {FAIL4}", ASSESSOR)
        for _ in range(100):
            _, after = await scrape(session, exporter.port)
            if value(after, "pnc_channel_paused", channel="email"):
                break
            await asyncio.sleep(0.1)
    assert value(after, "pnc_channel_paused", channel="email") == 1
    assert value(after, "pnc_channel_paused", channel="slack") == 0
    assert value(after, "pnc_outbox_depth", status="pending", channel="email") == 2
    paused = ("pnc_deliveries_total", (("channel", "email"), ("outcome", "paused")))
    assert after[paused] - before.get(paused, 0) == 2
    # written at the (frozen) now: not yet old
    assert value(after, "pnc_outbox_oldest_pending_seconds", channel="email") == 0


async def test_replicas_on_postgresql_report_the_same_database_figures(
    db: Database, core: Core, clock: FrozenClock, people: None
) -> None:
    if not db.is_postgresql:
        pytest.skip("replicas share a PostgreSQL database")
    await assessments.record(core, ASSESSOR_ACTOR, "VN-1002", NOW.date(), FAIL4.split(","))
    # a buyer call in four days: its reminders are due in one (PNC_CALL_REMINDER_DAYS = 3)
    await calls.add(core, MANAGER, (NOW + timedelta(days=4)).date().isoformat(), "15:00")
    async with db.transaction(write=True) as s:
        await outbox.lock_channel(s, "email")
        until = NOW + timedelta(days=3)
        await outbox.pause_channel(
            s, "email", until=until, reason="test", failures=1, alerted=False
        )
    clock.advance(days=2)  # nothing ran meanwhile: the notices wait, the reminders are late
    replicas = [Database(db.url) for _ in range(2)]
    exporters = [Exporter(replica, clock) for replica in replicas]
    try:
        ports = [await e.start("127.0.0.1", 0) for e in exporters]
        async with aiohttp.ClientSession() as session:
            scraped = [(await scrape(session, port))[1] for port in ports]
    finally:
        for e in exporters:
            await e.stop()
        for replica in replicas:
            await replica.dispose()
    first, second = ({k: v for k, v in s.items() if k[0] in DATABASE_FAMILIES} for s in scraped)
    assert first == second
    assert value(first, "pnc_database_up") == 1
    assert value(first, "pnc_outbox_depth", status="pending", channel="email") >= 2
    assert value(first, "pnc_outbox_oldest_pending_seconds", channel="email") == 2 * 86400
    assert value(first, "pnc_reminders_due") >= 1
    assert value(first, "pnc_reminders_late") == value(first, "pnc_reminders_due")
    assert value(first, "pnc_channel_paused", channel="email") == 1


async def test_without_the_database_the_process_figures_are_still_served_and_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    gone = Database(f"postgresql+asyncpg://pnc@127.0.0.1:{free_port()}/pnc")
    exporter = Exporter(gone, FrozenClock())
    exporter.timeout = 2.0
    port = await exporter.start("127.0.0.1", 0)
    try:
        with caplog.at_level(logging.WARNING, logger="bot.metrics"):
            async with aiohttp.ClientSession() as session:
                for _ in range(3):
                    families, samples = await scrape(session, port)
    finally:
        await exporter.stop()
        await gone.dispose()
    assert value(samples, "pnc_database_up") == 0
    assert families >= PROCESS_FAMILIES
    assert not (DATABASE_FAMILIES - {"pnc_database_up"}) & families
    warnings: list[Any] = [r for r in caplog.records if r.name == "bot.metrics"]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]
    assert "cannot read the database" in warnings[0].getMessage()


async def test_a_metrics_port_in_use_is_refused_saying_so() -> None:
    unused = Database("sqlite+aiosqlite:///:memory:")
    first, second = Exporter(unused, FrozenClock()), Exporter(unused, FrozenClock())
    port = await first.start("127.0.0.1", 0)
    try:
        with pytest.raises(ConfigError, match=f"Cannot serve the metrics on 127.0.0.1:{port}"):
            await second.start("127.0.0.1", port)
    finally:
        await first.stop()
        await unused.dispose()
