"""A reminder whose handling fails is tried again with backoff (a minute, then doubling, at most
an hour apart); a repeating one goes on with its series once it succeeds; after ten failed
attempts it is set aside and staff are told once. On SQLite and PostgreSQL, with a frozen
clock."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, text

import scheduler.reminders
from bot.render import render_slack
from bot.usecases import assessments, calls, registry
from bot.usecases.core import Core
from bot.vocabulary import ReminderKind
from scheduler.reminders import ReminderRunner
from store import migrate
from store.db import Database
from store.models import OutboxMessage, Reminder
from tests.conftest import ASSESSOR, MANAGER, FrozenClock

FAIL4 = "CO-01,CO-02,OS-01,WT-01"


@pytest.fixture
async def designated(core: Core) -> None:
    """VN-1 designated, subscribed by Acme: a stakeholder meeting is reminded weekly."""
    await registry.add_factory(
        core, MANAGER, "VN-1", "Saigon Stitch", "VN", "hr@vn-1.example", cycle_end="2027-06-30"
    )
    await registry.add_buyer(core, MANAGER, "B-A", "Acme", "b-a@buyer.example")
    await registry.subscribe(core, MANAGER, "B-A", "VN-1")
    for day in ("2023-05-01", "2024-05-01", "2025-05-01"):
        await assessments.record(core, ASSESSOR, "VN-1", day, FAIL4)


class Flaky:
    """Makes a reminder kind's handler raise its next ``times`` calls (for ever: -1)."""

    def __init__(self, kind: ReminderKind, times: int) -> None:
        self.real = scheduler.reminders.HANDLERS[kind]
        self.times = times
        self.calls = 0

    async def __call__(self, *args: Any) -> str | None:
        self.calls += 1
        if self.times != 0:
            self.times -= 1
            raise ConnectionResetError("the database went away")
        return await self.real(*args)


@pytest.fixture
def flaky(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    def install(kind: ReminderKind, times: int) -> Flaky:
        handler = Flaky(kind, times)
        monkeypatch.setitem(scheduler.reminders.HANDLERS, kind, handler)
        return handler

    yield install


async def notices(core: Core, kind: str) -> list[OutboxMessage]:
    async with core.db.transaction() as s:
        rows = await s.exec(select(OutboxMessage).where(OutboxMessage.kind == kind))
        return list(rows.scalars())


async def of_kind(core: Core, kind: ReminderKind) -> list[Reminder]:
    async with core.db.transaction() as s:
        rows = await s.exec(select(Reminder).where(Reminder.kind == kind).order_by(Reminder.due_at))
        return list(rows.scalars())


async def test_a_failing_repeating_reminder_is_retried_and_its_series_goes_on(
    core: Core, clock: FrozenClock, designated: None, flaky: Any
) -> None:
    handler = flaky(ReminderKind.STAKEHOLDER_MEETING, 3)
    runner = ReminderRunner(core)
    (first,) = await of_kind(core, ReminderKind.STAKEHOLDER_MEETING)
    clock.now = first.due_at
    for wait in (0, 60, 120, 240):  # three failures: 1, 2, 4 minutes apart; then it succeeds
        clock.advance(seconds=wait - 1)
        assert wait == 0 or await runner.run_due() == 0, "tried again too soon"
        clock.advance(seconds=1)
        assert await runner.run_due() == 1
    assert handler.calls == 4
    meetings = await of_kind(core, ReminderKind.STAKEHOLDER_MEETING)
    assert [(r.status, r.attempts) for r in meetings] == [("done", 3), ("pending", 0)]
    assert meetings[1].due_at == clock.now + timedelta(days=7)
    assert len(await notices(core, "stakeholder_meeting_reminder")) == 1
    assert await notices(core, "reminder_failed") == []  # staff are not bothered by a retry
    clock.advance(days=7)
    assert await runner.run_due() == 1  # the series goes on
    assert len(await notices(core, "stakeholder_meeting_reminder")) == 2


async def test_a_reminder_that_keeps_failing_is_set_aside_after_ten_attempts_and_staff_told_once(
    core: Core, clock: FrozenClock, designated: None, flaky: Any
) -> None:
    handler = flaky(ReminderKind.STAKEHOLDER_MEETING, -1)
    runner = ReminderRunner(core)
    (meeting,) = await of_kind(core, ReminderKind.STAKEHOLDER_MEETING)
    clock.now = meeting.due_at
    waits = []
    for _ in range(10):
        before = clock.now
        while not await runner.run_due():
            clock.advance(seconds=30)  # the clock's tick
            assert clock.now - before < timedelta(hours=2), f"not tried again after {waits}"
        waits.append((clock.now - before).total_seconds())
    assert waits == [0, 60, 120, 240, 480, 960, 1920, 3600, 3600, 3600]  # capped at an hour
    (meeting,) = await of_kind(core, ReminderKind.STAKEHOLDER_MEETING)
    assert meeting.status == "failed" and meeting.attempts == 10
    assert "ConnectionResetError" in (meeting.note or "")
    clock.advance(days=30)
    assert await runner.run_due() == 0 and handler.calls == 10  # set aside
    (alert,) = await notices(core, "reminder_failed")
    text = render_slack("slack/alerts/reminder_failed.txt", **alert.payload)
    assert "10 attempts" in text and "ConnectionResetError" in text and "by hand" in text


async def test_a_one_off_reminder_is_retried_too(
    core: Core, clock: FrozenClock, flaky: Any
) -> None:
    handler = flaky(ReminderKind.BUYER_CALL, 1)
    await calls.add(core, MANAGER, "2026-11-22")  # soon: its agenda is due at once
    runner = ReminderRunner(core)
    assert await runner.run_due() == 1
    assert await notices(core, "buyer_call_agenda") == []
    clock.advance(minutes=1)
    assert await runner.run_due() == 1
    assert handler.calls == 2 and len(await notices(core, "buyer_call_agenda")) == 1
    ((status, attempts),) = [
        (r.status, r.attempts) for r in await of_kind(core, ReminderKind.BUYER_CALL)
    ]
    assert (status, attempts) == ("done", 1)
    assert await notices(core, "reminder_failed") == []


async def test_reminders_written_before_the_upgrade_have_failed_no_attempt(tmp_path: Path) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp_path}/old.db")
    try:
        await migrate.upgrade(db, "0006")
        async with db.engine.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO reminder (kind, subject, due_at, status, created_at) VALUES "
                    "('buyer_call', 'call:1', '2026-11-20 03:00:00', 'pending', "
                    "'2026-11-19 03:00:00')"
                )
            )
        await migrate.upgrade(db)
        async with db.engine.connect() as conn:
            row = (await conn.execute(text("SELECT attempts, retry_at FROM reminder"))).one()
        assert tuple(row) == (0, None)
    finally:
        await db.dispose()
