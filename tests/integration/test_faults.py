"""Faults the bot must ride out without losing a notice (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import timedelta

import aiosmtplib

from bot.services import Services
from bot.transports import ChannelDown, SmtpSettings, SmtpTransport
from tests.conftest import ASSESSOR, MANAGER, FrozenClock
from tests.fakes import FakeSlack, SmtpServer
from tests.integration.helpers import (
    FAIL4,
    dispatcher,
    drain,
    outbox,
    slack_transport,
    smtp_transport,
)


async def test_smtp_hanging_mid_data_is_retried_and_nothing_is_lost(
    services: Services, clock: FrozenClock, registry: None, smtp: SmtpServer
) -> None:
    smtp.data_stalls.append(4.0)  # longer than the 2-second timeout below
    url = smtp.url.replace("timeout=5", "timeout=2")
    await services.record_assessment(ASSESSOR, "VN-1", "2026-01-10", FAIL4)
    d = dispatcher(services, clock, SmtpTransport(SmtpSettings.from_url(url), connections=1))
    await drain(d)
    stalled = [
        r
        for r in await outbox(services)
        if r.channel == "email" and r.attempts == 1 and r.status == "pending"
    ]
    assert len(stalled) == 1 and "timed out" in (stalled[0].last_error or "")
    clock.advance(minutes=2)
    await drain(d)
    await d.close()
    assert {r.status for r in await outbox(services) if r.channel == "email"} == {"sent"}
    # the stalled message may have been accepted after all: then it arrives twice, with one id
    counts = Counter(m.message_id for m in smtp.received)
    assert len(counts) == 3 and max(counts.values()) <= 2


async def test_slack_5xx_is_retried_until_it_answers(
    services: Services, clock: FrozenClock, registry: None, slack: FakeSlack
) -> None:
    await services.record_assessment(ASSESSOR, "VN-1", "2026-01-10", FAIL4)
    slack.fail("chat.postMessage", 503, times=2)
    d = dispatcher(services, clock, slack_transport(slack))
    for _ in range(3):
        await drain(d)
        clock.advance(minutes=5)
    staff = next(r for r in await outbox(services) if r.channel == "slack")
    assert staff.status == "sent" and staff.attempts == 3
    assert len(slack.calls_to("chat.postMessage")) == 3
    assert timedelta(0) < clock.now - staff.created_at


async def test_a_channel_that_stays_down_is_paused_longer_each_time_up_to_five_minutes(
    services: Services, clock: FrozenClock, registry: None, smtp: SmtpServer
) -> None:
    smtp.stop()
    await services.record_assessment(ASSESSOR, "VN-1", "2026-01-10", FAIL4)
    d = dispatcher(services, clock, SmtpTransport(SmtpSettings.from_url(smtp.url)))
    pauses = []
    for _ in range(8):
        await drain(d)
        (paused,) = (await services.outbox()).paused
        pauses.append((paused.until - clock.now).total_seconds())
        clock.now = paused.until + timedelta(seconds=1)
    for got, want in zip(pauses, [15, 30, 60, 120, 240, 300, 300, 300], strict=True):
        assert want * 0.9 <= got <= want * 1.1, pauses  # with ±10 % jitter
    assert all(r.attempts == 0 for r in await outbox(services))


class SecondConnectionRefused(SmtpTransport):
    """The relay refuses a second connection (421, too many connections) a moment after the
    first one started sending."""

    async def _client(self, number: int) -> aiosmtplib.SMTP:
        if number == 1:
            await asyncio.sleep(0.05)
            raise ChannelDown("SMTP server refused the session: 421 too many connections")
        return await super()._client(number)


async def test_a_lane_that_finds_the_channel_down_stops_its_sibling_before_the_pause(
    services: Services, clock: FrozenClock, registry: None, smtp: SmtpServer
) -> None:
    for n in range(2, 8):
        await services.add_factory(MANAGER, f"VN-{n}", f"Factory {n}", "VN", f"f{n}@x.example")
        await services.record_assessment(ASSESSOR, f"VN-{n}", "2026-01-10", FAIL4)
    await services.record_assessment(ASSESSOR, "VN-1", "2026-01-10", FAIL4)  # 3 more emails
    smtp.data_stalls.extend([0.1] * 50)  # each message takes a moment
    d = dispatcher(services, clock, SecondConnectionRefused(SmtpSettings.from_url(smtp.url)))
    await d.run_once()
    await asyncio.sleep(0.6)  # nothing may still be sending once the channel is paused
    emails = [r for r in await outbox(services) if r.channel == "email"]
    sent = [r for r in emails if r.status == "sent"]
    assert len(emails) == 9 and 1 <= len(sent) < 9
    assert len(smtp.received) == len(sent)  # what the first lane delivered is recorded as sent
    assert {r.status for r in emails} == {"sent", "pending"}
    assert all(r.attempts == 0 for r in emails if r.status == "pending")  # given back unspent
    clock.advance(minutes=1)  # the pause is over
    survivor = dispatcher(services, clock, smtp_transport(smtp), name="d2")
    await drain(survivor)
    await survivor.close()
    await d.close()
    counts = Counter(m.message_id for m in smtp.received)
    assert len(counts) == 9 and set(counts.values()) == {1}
