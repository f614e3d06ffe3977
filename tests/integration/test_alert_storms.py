"""Alert storms (issue #16): when many notices die for one cause, staff get one summary alert per
cause and window — the count, the first few factories, the command that retries them all — not
one alert per notice; and ``outbox retry dead`` revives them all in one audited transaction. On
SQLite and PostgreSQL, with several dispatchers at once."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import select

from bot.delivery import RetryPolicy
from bot.errors import InvalidInput, MalformedCommand, UnknownFactory
from bot.usecases import assessments, outbox_admin, registry
from bot.usecases.core import Core
from handlers import commands
from store.models import AuditEntry, OutboxMessage
from tests.conftest import ASSESSOR, MANAGER, FrozenClock
from tests.fakes import FakeSlack, SmtpServer
from tests.integration.helpers import FAIL4, dispatcher, drain, outbox, slack_transport
from tests.integration.helpers import smtp_transport as smtp_of

REFUSED = "550 5.1.1 <{address}>: Recipient address rejected: User unknown in table {n}"


async def factories(core: Core, smtp: SmtpServer, numbers: range, *, refused: bool = True) -> None:
    """Factories VN-<n>, each with one address (refused by the SMTP server, each with its own
    words) and a failing assessment: one email and one staff post each."""
    for n in numbers:
        address = f"f{n}@x.example"
        await registry.add_factory(core, MANAGER, f"VN-{n}", f"Factory {n}", "VN", address)
        if refused:
            smtp.refuse[address] = REFUSED.format(address=address, n=1000 + n)
        await assessments.record(core, ASSESSOR, f"VN-{n}", "2026-01-10", FAIL4)


async def alerts(core: Core) -> list[OutboxMessage]:
    return [r for r in await outbox(core) if r.kind == "delivery_failed"]


def alert_posts(slack: FakeSlack) -> list[str]:
    posts = [c.body["text"] for c in slack.calls_to("chat.postMessage")]
    return [t for t in posts if "not delivered" in t]


async def test_a_storm_of_dead_notices_gives_staff_one_alert_per_cause(
    core: Core, clock: FrozenClock, smtp: SmtpServer, slack: FakeSlack
) -> None:
    await factories(core, smtp, range(20))
    d = dispatcher(core, smtp_of(smtp), slack_transport(slack))
    await drain(d)
    await d.close()
    view = await outbox_admin.overview(core, limit=100)
    assert view.counts["dead"] == 20 and len(view.dead) == 20  # each is still listed
    (alert,) = await alerts(core)
    assert alert.status == "sent"
    assert alert.payload["count"] == 20
    (post,) = alert_posts(slack)
    assert "20 notices not delivered" in post
    assert "/pnc outbox retry dead" in post
    assert "VN-0" in post and "User unknown" in post


async def test_deaths_after_the_alert_went_out_are_gathered_until_the_window_ends(
    core: Core, clock: FrozenClock, smtp: SmtpServer, slack: FakeSlack
) -> None:
    d = dispatcher(core, smtp_of(smtp), slack_transport(slack))
    await factories(core, smtp, range(1))
    await drain(d)
    assert len(alert_posts(slack)) == 1  # the first death of a cause is told at once
    for n in range(1, 6):  # the storm goes on, a few minutes apart
        clock.advance(minutes=3)
        await factories(core, smtp, range(n, n + 1))
        await drain(d)
    assert len(alert_posts(slack)) == 1  # gathered, not told one by one
    waiting = [r for r in await alerts(core) if r.status == "pending"]
    assert len(waiting) == 1 and waiting[0].payload["count"] == 5
    clock.advance(hours=1)  # the window is over: its summary goes out
    await drain(d)
    await d.close()
    posts = alert_posts(slack)
    assert len(posts) == 2 and "5 notices not delivered" in posts[1]
    assert sum(r.payload["count"] for r in await alerts(core)) == 6  # every death counted


async def test_different_causes_get_their_own_alert(
    core: Core, clock: FrozenClock, smtp: SmtpServer, slack: FakeSlack
) -> None:
    await factories(core, smtp, range(3))
    await factories(core, smtp, range(3, 6), refused=False)
    for n in range(3, 6):
        smtp.refuse[f"f{n}@x.example"] = "552 5.2.2 mailbox over quota"
    d = dispatcher(core, smtp_of(smtp), slack_transport(slack))
    await drain(d)
    await d.close()
    counts = sorted(r.payload["count"] for r in await alerts(core))
    assert counts == [3, 3]
    posts = alert_posts(slack)
    assert len(posts) == 2
    assert any("over quota" in p for p in posts) and any("User unknown" in p for p in posts)


async def test_replicas_write_one_alert_per_cause_and_count_every_death(
    core: Core, clock: FrozenClock, smtp: SmtpServer, slack: FakeSlack
) -> None:
    await factories(core, smtp, range(30))
    replicas = [
        dispatcher(core, smtp_of(smtp), slack_transport(slack), name=name)
        for name in ("one", "two", "three")
    ]
    for d in replicas:
        d.outbox.policy = RetryPolicy(batch=4)
    await asyncio.gather(*(drain(d) for d in replicas))
    clock.advance(hours=1)
    await asyncio.gather(*(drain(d) for d in replicas))
    for d in replicas:
        await d.close()
    found = await alerts(core)
    assert 1 <= len(found) <= 2  # the first at once, the rest gathered
    assert {r.status for r in found} == {"sent"}
    assert sum(r.payload["count"] for r in found) == 30
    assert len({r.key for r in found}) == len(found)
    assert (await outbox_admin.overview(core)).counts["dead"] == 30


async def test_retry_dead_revives_every_dead_notice_in_one_audited_transaction(
    core: Core, clock: FrozenClock, smtp: SmtpServer, slack: FakeSlack
) -> None:
    await factories(core, smtp, range(4))
    d = dispatcher(core, smtp_of(smtp), slack_transport(slack))
    await drain(d)
    clock.advance(minutes=5)
    revived = await outbox_admin.retry_dead(core, MANAGER)
    assert revived.count == 4
    emails = [r for r in await outbox(core) if r.channel == "email"]
    assert {(r.status, r.attempts, r.next_attempt_at) for r in emails} == {
        ("pending", 0, clock.now)
    }
    async with core.db.transaction() as s:
        audited = (
            (await s.exec(select(AuditEntry).where(AuditEntry.action == "outbox.retry")))
            .scalars()
            .all()
        )
    assert len(audited) == 1 and audited[0].detail["count"] == 4
    # nothing is dead any more: retrying again revives nothing, and says so
    assert (await outbox_admin.retry_dead(core, MANAGER)).count == 0
    # they die again at once: one more alert, told at once, counting all four
    before = len(alert_posts(slack))
    clock.advance(seconds=1)
    await drain(d)
    await d.close()
    posts = alert_posts(slack)
    assert len(posts) == before + 1 and "4 notices not delivered" in posts[-1]


async def test_retry_dead_is_narrowed_by_kind_and_factory(
    core: Core, clock: FrozenClock, smtp: SmtpServer, slack: FakeSlack
) -> None:
    await factories(core, smtp, range(3))
    await registry.add_buyer(core, MANAGER, "B-N", "Nordic", "csr@nordic.example")
    await registry.subscribe(core, MANAGER, "B-N", "VN-1")
    smtp.refuse["csr@nordic.example"] = "550 5.1.1 no such user"
    await assessments.record(core, ASSESSOR, "VN-1", "2026-02-10", FAIL4)  # designated
    d = dispatcher(core, smtp_of(smtp), slack_transport(slack))
    await drain(d)
    await d.close()
    dead = [r for r in await outbox(core) if r.status == "dead"]
    assert len([r for r in dead if r.factory_id == "VN-1"]) >= 2

    def due_again() -> Any:
        async def rows() -> list[tuple[str | None, str]]:
            return sorted(
                (r.factory_id, r.kind) for r in await outbox(core) if r.status == "pending"
            )

        return rows()

    only_vn1 = await outbox_admin.retry_dead(core, MANAGER, factory="vn-1")
    assert only_vn1.count == len([r for r in dead if r.factory_id == "VN-1"])
    assert {f for f, _ in await due_again()} == {"VN-1"}
    kind = await outbox_admin.retry_dead(core, MANAGER, kind="at_risk_warning", factory="VN-2")
    assert kind.count == 1
    assert ("VN-2", "at_risk_warning") in await due_again()


async def test_retry_dead_refuses_what_it_does_not_know_and_writes_nothing(
    core: Core, clock: FrozenClock, smtp: SmtpServer
) -> None:
    await factories(core, smtp, range(2))
    await drain(dispatcher(core, smtp_of(smtp)))
    with pytest.raises(InvalidInput) as bad_kind:
        await outbox_admin.retry_dead(core, MANAGER, kind="at_risk_warnin")
    assert "`at_risk_warning`" in bad_kind.value.render()
    with pytest.raises(UnknownFactory) as bad_factory:
        await outbox_admin.retry_dead(core, MANAGER, factory="VN-I")
    assert "VN-1" in bad_factory.value.render()
    assert {r.status for r in await outbox(core) if r.channel == "email"} == {"dead"}
    async with core.db.transaction() as s:
        retries = (
            (await s.exec(select(AuditEntry).where(AuditEntry.action == "outbox.retry")))
            .scalars()
            .all()
        )
    assert retries == []


async def test_the_slack_command_retries_every_dead_notice_and_says_how_many(
    core: Core, clock: FrozenClock, smtp: SmtpServer
) -> None:
    await factories(core, smtp, range(3))
    await drain(dispatcher(core, smtp_of(smtp)))
    command = commands.parse("outbox retry dead at_risk_warning")
    assert command.subcommand is not None and command.action == "outbox retry"
    reply = await command.subcommand.run(core, MANAGER, command.args)
    assert reply is not None
    assert "3 dead notices" in reply["text"] and "due again" in reply["text"]
    one = commands.parse("outbox retry 1")
    assert one.args["notice"] == "1"
    with pytest.raises(MalformedCommand) as refused:
        commands.parse("outbox retry dead at_risk_warnin")
    assert "at_risk_warning" in refused.value.render()


async def test_a_notice_revived_that_dies_again_is_reported_again_at_once_each_time(
    core: Core, clock: FrozenClock, smtp: SmtpServer, slack: FakeSlack
) -> None:
    await factories(core, smtp, range(1))
    d = dispatcher(core, smtp_of(smtp), slack_transport(slack))
    await drain(d)
    for _ in range(2):
        clock.advance(seconds=30)
        assert (await outbox_admin.retry_dead(core, MANAGER)).count == 1
        await drain(d)
    await d.close()
    assert len(alert_posts(slack)) == 3
    assert [r.payload["count"] for r in await alerts(core)] == [1, 1, 1]


async def test_deaths_recorded_at_the_same_moment_write_one_alert_and_count_each(
    core: Core, clock: FrozenClock, smtp: SmtpServer
) -> None:
    """Many transactions counting a death of one cause at once (several dispatchers): the
    alert's key is written once (the others wait on it, then add to it) and each is counted."""
    await factories(core, smtp, range(12), refused=False)
    d = dispatcher(core, smtp_of(smtp))
    claimed = await d.outbox.claim("email")
    assert len(claimed) == 12
    policy = RetryPolicy()

    async def die(row: Any) -> None:
        async with core.db.transaction(write=True) as s:
            error = f"{row.addresses[0]}: 550 5.7.1 relaying denied"
            await d.outbox.alerts.dead(s, row, error, clock.now, policy.alert_every)
            await asyncio.sleep(0.05)  # hold the transaction open while the others run

    await asyncio.gather(*(die(row) for row in claimed))
    (alert,) = await alerts(core)
    assert alert.status == "pending" and alert.payload["count"] == 12
    assert len(alert.payload["factories"]) == 5 and alert.payload["more_factories"]
