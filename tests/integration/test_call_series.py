"""Quarterly buyer calls that recur, against a real database with a clock the tests move (SQLite
and PostgreSQL): a series is written ahead with its reminders, each call's reminder goes out as
time passes and the series goes on, one call or the rest of the series can be removed, and
replicas writing the series at once write each call once."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from bot.errors import Conflict, InvalidDate, InvalidInput, PermissionDenied, UnknownCall
from bot.usecases import assessments, calls
from bot.usecases.core import Core
from scheduler.reminders import ReminderRunner
from store.models import AuditEntry, BuyerCall, CallSeries, OutboxMessage, Reminder
from tests.conftest import ASSESSOR, MANAGER, FrozenClock

FAIL4 = "CO-01,CO-02,OS-01,WT-01"


@pytest.fixture
async def watched(core: Core, registered: None) -> None:
    """VN-1 at risk, subscribed by two buyers: each call's agenda and buyer lists name it."""
    await assessments.record(core, ASSESSOR, "VN-1", "2026-06-01", FAIL4)


async def rows(core: Core, model: type) -> list:
    async with core.db.transaction() as s:
        return list((await s.exec(select(model).order_by(model.id))).scalars())


async def series_calls(core: Core) -> list[BuyerCall]:
    return [c for c in await rows(core, BuyerCall) if c.series_id is not None]


def days(found: list[BuyerCall]) -> list[str]:
    return [c.held_at.astimezone(UTC).strftime("%Y-%m-%d") for c in found]


async def live_days(core: Core) -> list[str]:
    return days([c for c in await series_calls(core) if c.removed_at is None])


async def pending(core: Core) -> list[Reminder]:
    return [
        r for r in await rows(core, Reminder) if r.kind == "buyer_call" and r.status == "pending"
    ]


async def agendas(core: Core) -> list[OutboxMessage]:
    return [n for n in await rows(core, OutboxMessage) if n.kind == "buyer_call_agenda"]


def no_duplicates(found: list[BuyerCall]) -> None:
    twice = [at for at, n in Counter(c.held_at for c in found).items() if n > 1]
    assert twice == [], twice


async def test_a_series_is_written_ahead_with_a_reminder_for_each_call(
    core: Core, watched: None
) -> None:
    series = await calls.add_series(core, MANAGER, "2026-12-10", "14:30")
    assert [c.held_at.strftime("%Y-%m-%d %H:%M") for c in series.next] == [
        "2026-12-10 14:30",
        "2027-03-10 14:30",
        "2027-06-10 14:30",
        "2027-09-10 14:30",
    ]
    written = await series_calls(core)
    assert {c.series_id for c in written} == {series.id}
    assert [r.due_at for r in await pending(core)] == [  # 3 days before, 14:30 in Ho Chi Minh City
        datetime(2026, 12, 7, 7, 30, tzinfo=UTC),
        datetime(2027, 3, 7, 7, 30, tzinfo=UTC),
        datetime(2027, 6, 7, 7, 30, tzinfo=UTC),
        datetime(2027, 9, 7, 7, 30, tzinfo=UTC),
    ]
    assert sorted(r.subject for r in await pending(core)) == sorted(f"call:{c.id}" for c in written)
    calendar = await calls.calendar(core)
    assert calendar.calls == ()
    assert [line.id for line in calendar.series[0].next] == [c.id for c in written]
    assert [c.id for c in await calls.upcoming(core)] == [c.id for c in written]
    (entry,) = [e for e in await rows(core, AuditEntry) if e.action == "call.add"]
    assert entry.detail["series_id"] == series.id and entry.detail["every_months"] == 3


async def test_each_call_of_a_series_sends_its_reminder_and_the_series_goes_on(
    core: Core, clock: FrozenClock, watched: None
) -> None:
    await calls.add_series(core, MANAGER, "2027-01-31", "09:00")
    runner = ReminderRunner(core)
    for sent in range(1, 7):
        clock.now = min(r.due_at for r in await pending(core))
        if sent == 4:  # a restart on the way changes nothing
            runner = ReminderRunner(Core(core.db, core.config, core.settings, clock))
        assert await runner.run_due() == 1
        assert len(await agendas(core)) == sent
        assert len(await pending(core)) == 4  # always four calls with their reminder to come
        no_duplicates(await series_calls(core))
    assert await live_days(core) == [
        "2027-01-31",
        "2027-04-30",
        "2027-07-31",
        "2027-10-31",
        "2028-01-31",
        "2028-04-30",
        "2028-07-31",
        "2028-10-31",
        "2029-01-31",
        "2029-04-30",
    ]
    buyers = [n for n in await rows(core, OutboxMessage) if n.kind == "buyer_call_reminder"]
    assert Counter(n.recipient_id for n in buyers) == {"B-A": 6, "B-N": 6}
    assert len({n.key for n in await agendas(core)}) == 6  # one agenda per call
    created_by = Counter(c.created_by for c in await series_calls(core))
    assert created_by == {MANAGER.user_id: 4, "pnc-bot": 6}
    calendar = await calls.calendar(core)
    assert [line.held_at.strftime("%Y-%m-%d") for line in calendar.series[0].next] == [
        "2028-04-30",
        "2028-07-31",
        "2028-10-31",
        "2029-01-31",
    ]


async def test_removing_one_call_of_a_series_keeps_the_series_going(
    core: Core, clock: FrozenClock, watched: None
) -> None:
    await calls.add_series(core, MANAGER, "2026-12-10")
    assert await calls.remove(core, MANAGER, "2027-03-10") == 1
    assert await live_days(core) == ["2026-12-10", "2027-06-10", "2027-09-10", "2027-12-10"]
    reminders = {r.subject: r.status for r in await rows(core, Reminder)}
    removed = next(c for c in await series_calls(core) if c.removed_at is not None)
    assert reminders.pop(f"call:{removed.id}") == "cancelled"
    assert set(reminders.values()) == {"pending"} and len(reminders) == 4
    with pytest.raises(UnknownCall):
        await calls.remove(core, MANAGER, "2027-03-10")

    runner = ReminderRunner(core)
    while (due := await pending(core)) and due[0].due_at < datetime(2027, 7, 1, tzinfo=UTC):
        clock.now = min(r.due_at for r in due)
        await runner.run_due()
    assert len(await agendas(core)) == 2  # December and June; never March
    assert "2027-03-10" not in await live_days(core)
    no_duplicates(await series_calls(core))
    (entry,) = [e for e in await rows(core, AuditEntry) if e.action == "call.remove"]
    assert entry.detail["day"] == "2027-03-10" and len(entry.detail["planned"]) == 1


async def test_removing_a_series_from_one_of_its_calls_keeps_the_earlier_ones(
    core: Core, clock: FrozenClock, watched: None
) -> None:
    await calls.add_series(core, MANAGER, "2026-12-10", "10:00")
    removed = await calls.remove_series(core, MANAGER, "2027-06-10")
    assert [at.strftime("%Y-%m-%d %H:%M") for at in removed.removed] == [
        "2027-06-10 10:00",
        "2027-09-10 10:00",
    ]
    assert [at.strftime("%Y-%m-%d") for at in removed.kept] == ["2026-12-10", "2027-03-10"]
    (series,) = await rows(core, CallSeries)
    assert series.removed_at is not None and series.removed_by == MANAGER.user_id
    assert len(await pending(core)) == 2
    calendar = await calls.calendar(core)
    assert calendar.series == ()
    assert [c.held_at.strftime("%Y-%m-%d") for c in calendar.calls] == ["2026-12-10", "2027-03-10"]

    clock.advance(days=365)
    await ReminderRunner(core).run_due()
    assert len(await agendas(core)) == 2  # the calls that stayed, and no more
    assert await live_days(core) == ["2026-12-10", "2027-03-10"]
    (entry,) = [e for e in await rows(core, AuditEntry) if e.action == "call.series.remove"]
    assert entry.detail["day"] == "2027-06-10" and entry.detail["series"] == [series.id]


async def test_series_refusals_say_what_is_wrong_and_write_nothing(
    core: Core, watched: None
) -> None:
    await calls.add(core, MANAGER, "2027-03-10")  # 09:00
    before = await rows(core, BuyerCall), await rows(core, Reminder)
    with pytest.raises(Conflict, match="already a call on 2027-03-10 at 09:00"):
        await calls.add_series(core, MANAGER, "2026-12-10")  # its second call
    with pytest.raises(InvalidDate):
        await calls.add_series(core, MANAGER, "2026-11-19")
    with pytest.raises(PermissionDenied):
        await calls.add_series(core, ASSESSOR, "2026-12-11")
    with pytest.raises(InvalidInput) as caught:
        await calls.remove_series(core, MANAGER, "2027-03-10")
    assert caught.value.render() == (
        "The buyer call on 2027-03-10 is not part of a series. "
        "Remove it alone with `/pnc calls remove 2027-03-10`."
    )
    with pytest.raises(UnknownCall):
        await calls.remove_series(core, MANAGER, "2027-03-11")
    with pytest.raises(PermissionDenied):
        await calls.remove_series(core, ASSESSOR, "2027-03-10")
    assert (await rows(core, BuyerCall), await rows(core, Reminder)) == before
    assert await rows(core, CallSeries) == []


async def test_two_runners_writing_a_series_at_once_write_each_call_once(
    core: Core, clock: FrozenClock, watched: None
) -> None:
    await calls.add_series(core, MANAGER, "2026-12-10")
    clock.now = datetime(2027, 3, 8, tzinfo=UTC)  # down for months: two reminders are due
    first, second = ReminderRunner(core, batch=1), ReminderRunner(core, batch=1)
    await asyncio.gather(first.run_due(), second.run_due())
    assert len(await agendas(core)) == 2
    no_duplicates(await series_calls(core))
    assert len(await pending(core)) == 4


async def test_plan_ahead_at_once_in_two_transactions_writes_each_call_once(
    core: Core, clock: FrozenClock, watched: None
) -> None:
    series = await calls.add_series(core, MANAGER, "2026-12-10")
    clock.now = datetime(2027, 3, 8, tzinfo=UTC)  # two calls' reminders are past: two are due

    async def plan() -> int:
        async with core.db.transaction(write=True) as s:
            return len(await calls.plan_ahead(core, s, series.id))

    assert sorted(await asyncio.gather(plan(), plan(), plan())) in ([0, 0, 2], [0, 0, 0])
    no_duplicates(await series_calls(core))
    assert len([r for r in await pending(core) if r.due_at > clock.now]) >= 4


async def test_on_postgresql_a_replica_writing_a_series_is_not_waited_for(
    core: Core, clock: FrozenClock, watched: None
) -> None:
    """While one transaction writes the series' next calls, another one leaves them to it."""
    if not core.db.is_postgresql:
        pytest.skip("SQLite has one writer at a time")
    series = await calls.add_series(core, MANAGER, "2026-12-10")
    clock.now = datetime(2027, 3, 8, tzinfo=UTC)
    async with core.db.transaction(write=True) as first:
        assert len(await calls.plan_ahead(core, first, series.id)) == 2
        async with core.db.transaction(write=True) as second:
            assert await calls.plan_ahead(core, second, series.id) == []
    async with core.db.transaction(write=True) as later:
        assert await calls.plan_ahead(core, later, series.id) == []  # nothing left to write
    no_duplicates(await series_calls(core))
    assert len(await series_calls(core)) == 6
    assert (clock.now - timedelta(days=1)) < max(c.held_at for c in await series_calls(core))
