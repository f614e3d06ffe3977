"""Faults the bot must ride out without losing a notice (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import aiosmtplib

from bot.delivery import RetryPolicy
from bot.dispatcher import Dispatcher
from bot.smtp_url import SmtpSettings
from bot.transports import ChannelDown, Result, SmtpTransport
from bot.usecases import assessments, outbox_admin, registry
from bot.usecases.core import Core
from store.models import DeliveryChannel
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
    core: Core, clock: FrozenClock, registered: None, smtp: SmtpServer
) -> None:
    smtp.data_stalls.append(4.0)  # longer than the 2-second timeout below
    url = smtp.url.replace("timeout=5", "timeout=2")
    await assessments.record(core, ASSESSOR, "VN-1", "2026-01-10", FAIL4)
    d = dispatcher(core, SmtpTransport(SmtpSettings.from_url(url), connections=1))
    await drain(d)
    stalled = [
        r
        for r in await outbox(core)
        if r.channel == "email" and r.attempts == 1 and r.status == "pending"
    ]
    assert len(stalled) == 1 and "timed out" in (stalled[0].last_error or "")
    clock.advance(minutes=2)
    await drain(d)
    await d.close()
    assert {r.status for r in await outbox(core) if r.channel == "email"} == {"sent"}
    # the stalled message may have been accepted after all: then it arrives twice, with one id
    counts = Counter(m.message_id for m in smtp.received)
    assert len(counts) == 3 and max(counts.values()) <= 2


async def test_slack_5xx_is_retried_until_it_answers(
    core: Core, clock: FrozenClock, registered: None, slack: FakeSlack
) -> None:
    await assessments.record(core, ASSESSOR, "VN-1", "2026-01-10", FAIL4)
    slack.fail("chat.postMessage", 503, times=2)
    d = dispatcher(core, slack_transport(slack))
    for _ in range(3):
        await drain(d)
        clock.advance(minutes=5)
    staff = next(r for r in await outbox(core) if r.channel == "slack")
    assert staff.status == "sent" and staff.attempts == 3
    assert len(slack.calls_to("chat.postMessage")) == 3
    assert timedelta(0) < clock.now - staff.created_at


async def test_a_channel_that_stays_down_is_paused_longer_each_time_up_to_five_minutes(
    core: Core, clock: FrozenClock, registered: None, smtp: SmtpServer
) -> None:
    smtp.stop()
    await assessments.record(core, ASSESSOR, "VN-1", "2026-01-10", FAIL4)
    d = dispatcher(core, SmtpTransport(SmtpSettings.from_url(smtp.url)))
    pauses = []
    for _ in range(8):
        await drain(d)
        (paused,) = (await outbox_admin.overview(core)).paused
        pauses.append((paused.until - clock.now).total_seconds())
        clock.now = paused.until + timedelta(seconds=1)
    for got, want in zip(pauses, [15, 30, 60, 120, 240, 300, 300, 300], strict=True):
        assert want * 0.9 <= got <= want * 1.1, pauses  # with ±10 % jitter
    assert all(r.attempts == 0 for r in await outbox(core))


class SecondConnectionRefused(SmtpTransport):
    """The relay refuses a second connection (421, too many connections) a moment after the
    first one started sending."""

    async def _client(self, number: int) -> aiosmtplib.SMTP:
        if number == 1:
            await asyncio.sleep(0.05)
            raise ChannelDown("SMTP server refused the session: 421 too many connections")
        return await super()._client(number)


async def test_a_lane_that_finds_the_channel_down_stops_its_sibling_before_the_pause(
    core: Core, clock: FrozenClock, registered: None, smtp: SmtpServer
) -> None:
    for n in range(2, 8):
        await registry.add_factory(
            core, MANAGER, f"VN-{n}", f"Factory {n}", "VN", f"f{n}@x.example"
        )
        await assessments.record(core, ASSESSOR, f"VN-{n}", "2026-01-10", FAIL4)
    await assessments.record(core, ASSESSOR, "VN-1", "2026-01-10", FAIL4)  # 3 more emails
    smtp.data_stalls.extend([0.1] * 50)  # each message takes a moment
    d = dispatcher(core, SecondConnectionRefused(SmtpSettings.from_url(smtp.url)))
    await d.run_once()
    await asyncio.sleep(0.6)  # nothing may still be sending once the channel is paused
    emails = [r for r in await outbox(core) if r.channel == "email"]
    sent = [r for r in emails if r.status == "sent"]
    assert len(emails) == 9 and 1 <= len(sent) < 9
    assert len(smtp.received) == len(sent)  # what the first lane delivered is recorded as sent
    assert {r.status for r in emails} == {"sent", "pending"}
    assert all(r.attempts == 0 for r in emails if r.status == "pending")  # given back unspent
    clock.advance(minutes=1)  # the pause is over
    survivor = dispatcher(core, smtp_transport(smtp), name="d2")
    await drain(survivor)
    await survivor.close()
    await d.close()
    counts = Counter(m.message_id for m in smtp.received)
    assert len(counts) == 9 and set(counts.values()) == {1}


async def test_slack_dropping_the_connection_retries_the_post(
    core: Core, clock: FrozenClock, registered: None, slack: FakeSlack
) -> None:
    await assessments.record(core, ASSESSOR, "VN-1", "2026-01-10", FAIL4)
    slack.drop("chat.postMessage", times=2)  # the client's own retry meets it too
    d = dispatcher(core, slack_transport(slack))
    await drain(d)
    staff = next(r for r in await outbox(core) if r.channel == "slack")
    assert (staff.status, staff.attempts, staff.claimed_by) == ("pending", 1, None)
    assert "Server disconnected" in (staff.last_error or "")
    clock.advance(minutes=1)
    await drain(d)
    staff = next(r for r in await outbox(core) if r.channel == "slack")
    assert staff.status == "sent"


async def test_slack_retry_after_as_an_http_date_is_honoured(
    core: Core, clock: FrozenClock, registered: None, slack: FakeSlack
) -> None:
    await assessments.record(core, ASSESSOR, "VN-1", "2026-01-10", FAIL4)
    at = format_datetime(datetime.now(UTC) + timedelta(seconds=20), usegmt=True)
    slack.fail("chat.postMessage", 429, {"ok": False, "error": "ratelimited"}, {"Retry-After": at})
    await drain(dispatcher(core, slack_transport(slack)))
    staff = next(r for r in await outbox(core) if r.channel == "slack")
    assert (staff.status, staff.attempts) == ("pending", 0)
    assert timedelta(seconds=15) <= staff.next_attempt_at - clock.now <= timedelta(seconds=20)


class BreaksOnTheSecondMessage(SmtpTransport):
    """A transport with a bug: the second message raises something nobody foresaw."""

    sent = 0

    async def _send_one(self, number: int, row: Any, message: Any) -> Result:
        self.sent += 1
        if self.sent == 2:
            raise RuntimeError("a bug in the transport")
        return await super()._send_one(number, row, message)


async def test_an_unexpected_error_gives_the_rest_of_the_batch_back_as_a_retry(
    core: Core, clock: FrozenClock, registered: None, smtp: SmtpServer
) -> None:
    await assessments.record(core, ASSESSOR, "VN-1", "2026-01-10", FAIL4)
    transport = BreaksOnTheSecondMessage(SmtpSettings.from_url(smtp.url), connections=1)
    d = dispatcher(core, transport)
    assert await d.run_once() == 3  # does not raise
    emails = [r for r in await outbox(core) if r.channel == "email"]
    assert sorted(r.status for r in emails) == ["pending", "pending", "sent"]
    assert len(smtp.received) == 1
    for row in emails:
        if row.status == "pending":
            assert (row.attempts, row.claimed_by) == (1, None)
            assert "RuntimeError: a bug in the transport" in (row.last_error or "")
            assert row.next_attempt_at > clock.now
    clock.advance(minutes=2)
    await drain(d)
    assert {r.status for r in await outbox(core) if r.channel == "email"} == {"sent"}
    assert len({m.message_id for m in smtp.received}) == 3


async def test_a_notice_whose_claims_keep_expiring_is_dead_lettered_at_the_last_attempt(
    core: Core, clock: FrozenClock, registered: None, smtp: SmtpServer, slack: FakeSlack
) -> None:
    await assessments.record(core, ASSESSOR, "VN-1", "2026-01-10", FAIL4)
    limit = RetryPolicy(max_attempts=2)
    for name in ("crashed-1", "crashed-2"):  # each claims, then dies before recording anything
        crashed = dispatcher(core, smtp_transport(smtp), name=name)
        crashed.outbox.policy = limit
        assert len(await crashed.outbox.claim("email")) == 3
        clock.advance(minutes=3)  # its lease expires
    survivor = dispatcher(core, smtp_transport(smtp), slack_transport(slack))
    survivor.outbox.policy = limit
    await drain(survivor)
    emails = [r for r in await outbox(core) if r.channel == "email"]
    assert {(r.status, r.attempts, r.claimed_by) for r in emails} == {("dead", 2, None)}
    assert all("gave up after 2 attempts" in (r.last_error or "") for r in emails)
    assert smtp.received == []
    # one alert for the three given up in one claim (one cause), counting all three
    (alert,) = [r for r in await outbox(core) if r.kind == "delivery_failed"]
    assert alert.status == "sent" and alert.payload["count"] == 3


async def test_a_batch_slower_than_its_lease_keeps_its_claim_by_renewing_it(
    core: Core, clock: FrozenClock, smtp: SmtpServer
) -> None:
    for n in range(12):
        await registry.add_factory(
            core, MANAGER, f"VN-{n}", f"Factory {n}", "VN", f"f{n}@x.example"
        )
        await assessments.record(core, ASSESSOR, f"VN-{n}", "2026-01-10", FAIL4)
    # over one connection: 4 s for the batch, and one message alone takes longer than the lease
    smtp.data_stalls.extend([0.25] * 5 + [1.5] + [0.25] * 6)
    started = time.monotonic()

    def moving() -> datetime:  # the test's "now", moving in real time
        return clock.now + timedelta(seconds=time.monotonic() - started)

    policy = RetryPolicy(lease=timedelta(seconds=1.2))
    slow, other = (
        Dispatcher.for_core(
            dataclasses.replace(core, clock=moving),
            [SmtpTransport(SmtpSettings.from_url(smtp.url), connections=1)],
            policy=policy,
            name=name,
        )
        for name in ("slow", "other")
    )
    sending = asyncio.create_task(slow.run_once())
    await asyncio.sleep(0.1)  # the slow one has claimed all twelve
    while not sending.done():  # another replica keeps looking for expired claims meanwhile
        assert await other.run_once() == 0
        await asyncio.sleep(0.1)
    assert await sending == 12
    assert time.monotonic() - started > 4  # more than three leases
    await slow.close()
    await other.close()
    counts = Counter(m.message_id for m in smtp.received)
    assert len(counts) == 12 and set(counts.values()) == {1}
    emails = [r for r in await outbox(core) if r.channel == "email"]
    assert {(r.status, r.attempts) for r in emails} == {("sent", 1)}


class TakenOverAfterTheFirstMessage(SmtpTransport):
    """After the first message the clock jumps past the lease and another dispatcher claims the
    rest (as if this one had stalled); then the stalled one renews its claim, and carries on."""

    def __init__(self, smtp: SmtpServer, clock: FrozenClock, other: Dispatcher) -> None:
        super().__init__(SmtpSettings.from_url(smtp.url), connections=1)
        self.clock, self.other, self.sent = clock, other, 0

    async def _send_one(self, number: int, row: Any, message: Any) -> Result:
        result = await super()._send_one(number, row, message)
        self.sent += 1
        if self.sent == 1:
            self.clock.advance(minutes=3)
            assert len(await self.other.outbox.claim("email")) == 3
            await asyncio.sleep(0.3)  # the claim is renewed every 0.1 s here
        return result


async def test_notices_taken_over_by_another_dispatcher_are_skipped_not_sent_again(
    core: Core, clock: FrozenClock, registered: None, smtp: SmtpServer
) -> None:
    await assessments.record(core, ASSESSOR, "VN-1", "2026-01-10", FAIL4)
    other = dispatcher(core, smtp_transport(smtp), name="other")
    hung = dispatcher(core, TakenOverAfterTheFirstMessage(smtp, clock, other), name="hung")
    hung.outbox.policy = RetryPolicy(lease=timedelta(seconds=0.3))
    assert await hung.run_once() == 3
    assert len(smtp.received) == 1  # the renewal found the other two taken over: skipped
    emails = [r for r in await outbox(core) if r.channel == "email"]
    assert {(r.status, r.claimed_by) for r in emails} == {("sending", "other")}
    await hung.close()


async def test_slack_rate_limiting_holds_the_batch_and_wakes_the_dispatcher_when_it_ends(
    core: Core, clock: FrozenClock, registered: None, slack: FakeSlack
) -> None:
    await registry.add_factory(core, MANAGER, "VN-2", "Hanoi Knit", "VN", "hr@knit.example")
    for factory in ("VN-1", "VN-2"):  # two staff alerts, one batch
        await assessments.record(core, ASSESSOR, factory, "2026-01-10", FAIL4)
    slack.fail("chat.postMessage", 429, {"ok": False, "error": "ratelimited"}, {"Retry-After": "1"})
    started = time.monotonic()
    d = Dispatcher.for_core(
        dataclasses.replace(
            core, clock=lambda: clock.now + timedelta(seconds=time.monotonic() - started)
        ),
        [slack_transport(slack)],
        name="d1",
    )
    running = asyncio.create_task(d.run(interval=60))  # only the wait's own wake-up is in time
    try:
        await slack.wait(lambda: len(slack.calls_to("chat.postMessage")) >= 3, 5)
    finally:
        d.stop()
        await running
    refused, *retried = posts = slack.calls_to("chat.postMessage")
    assert len(posts) == 3  # nothing posted into the rate limit
    assert all(1.0 <= p.at - refused.at <= 1.5 for p in retried), [p.at - refused.at for p in posts]
    staff = [r for r in await outbox(core) if r.channel == "slack"]
    assert {(r.status, r.attempts) for r in staff} == {("sent", 1)}  # the wait spent none


async def test_dispatchers_pausing_a_channel_at_once_count_every_failure(
    core: Core, clock: FrozenClock
) -> None:
    down = ChannelDown("SMTP server unreachable: connection refused")
    replicas = [dispatcher(core, name=f"d{n}") for n in range(3)]
    for round_ in (1, 2):  # the channel's first pause (its row created), then another
        await asyncio.gather(*(d.outbox.pause("email", down, []) for d in replicas))
        async with core.db.transaction() as s:
            email = await s.get(DeliveryChannel, "email")
            failures = email.failures if email else 0
        assert failures == 3 * round_


class ClosedWhileIdle(SmtpTransport):
    """The first ``drops`` sends find their connection closed by the server."""

    def __init__(self, smtp: SmtpServer, drops: int) -> None:
        super().__init__(SmtpSettings.from_url(smtp.url), connections=1)
        self.drops = drops

    async def _client(self, number: int) -> aiosmtplib.SMTP:
        client = await super()._client(number)
        if self.drops > 0:
            self.drops -= 1

            async def closed(*args: Any, **kwargs: Any) -> Any:
                raise aiosmtplib.SMTPServerDisconnected("Connection lost")

            client.send_message = closed  # type: ignore[method-assign]
        return client


async def test_a_connection_closed_while_idle_is_reopened_once(
    core: Core, clock: FrozenClock, registered: None, smtp: SmtpServer
) -> None:
    await assessments.record(core, ASSESSOR, "VN-1", "2026-01-10", FAIL4)
    await drain(dispatcher(core, ClosedWhileIdle(smtp, drops=1)))
    assert {(r.status, r.attempts) for r in await outbox(core) if r.channel == "email"} == {
        ("sent", 1)
    }
    assert len(smtp.received) == 3


async def test_a_connection_lost_again_after_reopening_is_retried_later(
    core: Core, clock: FrozenClock, registered: None, smtp: SmtpServer
) -> None:
    await assessments.record(core, ASSESSOR, "VN-1", "2026-01-10", FAIL4)
    d = dispatcher(core, ClosedWhileIdle(smtp, drops=2))
    await d.run_once()
    first = next(r for r in await outbox(core) if r.channel == "email" and r.status != "sent")
    assert (first.status, first.attempts) == ("pending", 1)
    assert "connection lost" in (first.last_error or "")
    assert len(smtp.received) == 2  # the other two went out over a fresh connection
