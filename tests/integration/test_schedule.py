"""Buyer calls, reminders and the readmission workflow against a real database, with a clock the
tests move (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update

from bot.countries import load_config
from bot.dispatcher import Dispatcher
from bot.errors import InvalidDate, InvalidInput, NotFound, PermissionDenied, StateConflict
from bot.render import render_slack
from bot.settings import Settings
from bot.transports import FileTransport
from bot.usecases import assessments, calls, follow_ups, reading, readmission, registry
from bot.usecases.core import Core
from scheduler.clock import Background
from scheduler.reminders import ReminderRunner
from store.db import Database
from store.models import Factory, OutboxMessage, Reminder
from tests.conftest import ASSESSOR, MANAGER, VIEWER, FrozenClock

FAIL4 = "CO-01,CO-02,OS-01,WT-01"
EVIDENCE = ["https://drive.example/vn-1/evidence"]


@pytest.fixture
async def world(core: Core) -> None:
    """VN-1 designated (subscribed by Acme and Nordic), VN-2 at risk (Acme), VN-3 fine (Zen)."""
    for fid, name in (("VN-1", "Saigon Stitch"), ("VN-2", "Hanoi Knit"), ("VN-3", "Hue Denim")):
        await registry.add_factory(
            core, MANAGER, fid, name, "VN", f"hr@{fid.lower()}.example", cycle_end="2027-06-30"
        )
    for bid, name in (("B-A", "Acme"), ("B-N", "Nordic"), ("B-Z", "Zen")):
        await registry.add_buyer(core, MANAGER, bid, name, f"{bid.lower()}@buyer.example")
    for bid, fid in (("B-A", "VN-1"), ("B-N", "VN-1"), ("B-A", "VN-2"), ("B-Z", "VN-3")):
        await registry.subscribe(core, MANAGER, bid, fid)
    for day in ("2023-05-01", "2024-05-01", "2025-05-01"):
        await assessments.record(core, ASSESSOR, "VN-1", day, FAIL4)
    await assessments.record(core, ASSESSOR, "VN-2", "2025-06-01", FAIL4)
    await assessments.record(core, ASSESSOR, "VN-3", "2025-06-01", "none")


async def notices(core: Core, kind: str) -> list[OutboxMessage]:
    async with core.db.transaction() as s:
        rows = await s.exec(
            select(OutboxMessage).where(OutboxMessage.kind == kind).order_by(OutboxMessage.id)
        )
        return list(rows.scalars())


async def reminders(core: Core) -> list[Reminder]:
    async with core.db.transaction() as s:
        return list((await s.exec(select(Reminder).order_by(Reminder.id))).scalars())


async def test_a_call_soon_sends_the_agenda_and_each_buyer_its_own_list_at_once(
    core: Core, world: None
) -> None:
    call = await calls.add(core, MANAGER, "2026-11-22")  # the day after tomorrow
    assert call.reminder_at <= call.held_at  # within the 3 days: due at once
    assert await ReminderRunner(core).run_due() == 1
    emails = {n.recipient_id: n for n in await notices(core, "buyer_call_reminder")}
    assert set(emails) == {"B-A", "B-N"}  # Zen's factory is fine: no list for Zen
    assert [f["id"] for f in emails["B-A"].payload["factories"]] == ["VN-1", "VN-2"]
    assert [f["id"] for f in emails["B-N"].payload["factories"]] == ["VN-1"]
    assert emails["B-A"].payload["factories"][0]["label"] == "Persistently non-compliant"
    assert emails["B-A"].payload["factories"][1]["last_nc_count"] == 4
    assert "Nordic" not in json.dumps(emails["B-A"].payload)  # not even in the data
    agenda = await notices(core, "buyer_call_agenda")
    assert len(agenda) == 1 and agenda[0].addresses == ["C0STAFF"]
    groups = {g["buyer"]: [f["id"] for f in g["factories"]] for g in agenda[0].payload["groups"]}
    assert groups == {"Acme": ["VN-1", "VN-2"], "Nordic": ["VN-1"]}


async def test_a_reminder_fires_once_at_its_time_in_the_configured_zone(
    core: Core, clock: FrozenClock, world: None
) -> None:
    await calls.add(core, MANAGER, "2026-12-10", "14:30")  # Ho Chi Minh City, UTC+7
    (due,) = [r for r in await reminders(core) if r.kind == "buyer_call"]
    assert due.due_at == datetime(2026, 12, 7, 7, 30, tzinfo=UTC)  # 3 days before, 14:30 local
    runner = ReminderRunner(core)
    clock.now = due.due_at - timedelta(seconds=1)
    await runner.run_due()
    assert await notices(core, "buyer_call_agenda") == []
    clock.now = due.due_at
    await runner.run_due()
    assert len(await notices(core, "buyer_call_agenda")) == 1
    clock.advance(days=1)
    await runner.run_due()
    assert len(await notices(core, "buyer_call_agenda")) == 1  # never twice


async def test_a_reminder_survives_a_restart(core: Core, clock: FrozenClock, world: None) -> None:
    await calls.add(core, MANAGER, "2026-12-10")
    clock.advance(days=30)  # the bot was down when the reminder fell due
    restarted = Core(core.db, core.config, core.settings, clock)
    await ReminderRunner(restarted).run_due()
    assert len(await notices(core, "buyer_call_agenda")) == 1


async def test_a_removed_call_sends_nothing(core: Core, clock: FrozenClock, world: None) -> None:
    await calls.add(core, MANAGER, "2026-12-10")
    await calls.add(core, MANAGER, "2026-12-20")
    assert await calls.remove(core, MANAGER, "2026-12-10") == 1
    clock.advance(days=40)
    await ReminderRunner(core).run_due()
    assert len(await notices(core, "buyer_call_agenda")) == 1  # only the call still planned
    statuses = Counter(r.status for r in await reminders(core) if r.kind == "buyer_call")
    assert statuses == {"cancelled": 1, "done": 1}
    assert [c.held_at.date() for c in await calls.upcoming(core)] == []
    with pytest.raises(NotFound):
        await calls.remove(core, MANAGER, "2026-12-10")


async def test_calls_are_refused_in_the_past_twice_or_by_others(core: Core, world: None) -> None:
    with pytest.raises(InvalidDate):
        await calls.add(core, MANAGER, "2026-11-19")
    with pytest.raises(InvalidInput):
        await calls.add(core, MANAGER, "2026-12-01", "25:99")
    await calls.add(core, MANAGER, "2026-12-01")
    with pytest.raises(Exception, match="already a call"):
        await calls.add(core, MANAGER, "2026-12-01", "09:00")
    with pytest.raises(PermissionDenied):
        await calls.add(core, ASSESSOR, "2026-12-02")


async def test_two_runners_send_each_reminder_once(
    core: Core, clock: FrozenClock, world: None
) -> None:
    for day in range(1, 13):
        await calls.add(core, MANAGER, f"2026-12-{day + 10:02d}")
    clock.advance(days=40)
    first, second = ReminderRunner(core, batch=2), ReminderRunner(core, batch=3)
    await asyncio.gather(first.run_due(), second.run_due())
    keys = Counter(n.key for n in await notices(core, "buyer_call_agenda"))
    assert len(keys) == 12 and set(keys.values()) == {1}


async def test_readmission_from_application_to_approval(
    core: Core, clock: FrozenClock, world: None
) -> None:
    applied = await readmission.apply(
        core, ASSESSOR, "VN-1", EVIDENCE, ["https://moit.example/report-1"]
    )
    assert applied.label == "Readmission under review"
    ack = await notices(core, "readmission_applied")
    assert {(n.channel, n.recipient_type) for n in ack} == {
        ("email", "factory"),
        ("slack", "staff"),
    }
    staff = next(n for n in ack if n.channel == "slack")
    assert staff.payload["evidence"] == EVIDENCE and "U0ADMIN" in staff.payload["managers"]
    review = [r for r in await reminders(core) if r.kind == "readmission_review"]
    assert review[0].due_at == clock.now + timedelta(days=7)

    visit = await readmission.schedule_visit(core, MANAGER, "VN-1", "2026-12-03")
    assert visit == date(2026, 12, 3)
    eve = next(r for r in await reminders(core) if r.kind == "unannounced_visit")
    assert eve.due_at == datetime(2026, 12, 2, 2, 0, tzinfo=UTC)  # the day before, 09:00 local
    assert [n.recipient_type for n in await notices(core, "unannounced_scheduled")] == [
        "staff"
    ]  # the factory is not told

    runner = ReminderRunner(core)
    clock.advance(days=7)
    await runner.run_due()  # the weekly review reminder; the next one is planned
    assert len(await notices(core, "readmission_review_reminder")) == 1
    clock.now = eve.due_at
    await runner.run_due()
    assert len(await notices(core, "unannounced_visit_reminder")) == 1

    clock.now = datetime(2026, 12, 3, 4, 0, tzinfo=UTC)
    visit_outcome = await assessments.record(
        core, ASSESSOR, "VN-1", "2026-12-03", "OS-02", "unannounced"
    )
    assert visit_outcome.label == "Readmission under review"  # shown, not counted
    view = await reading.status(core, "VN-1")
    assert view.assessments[-1].not_counted == "designated"
    assert view.applications[0].evidence == tuple(EVIDENCE)

    approved = await readmission.decide(core, MANAGER, "VN-1", True, "all issues resolved")
    told = await notices(core, "readmission_approved")
    assert [n.payload.get("visit_on") for n in told if n.channel == "slack"] == ["2026-12-03"]
    assert all("visit_on" not in n.payload for n in told if n.channel == "email")
    assert approved.label == "Not at risk"
    decided = await notices(core, "readmission_approved")
    assert sorted((n.channel, n.recipient_id) for n in decided) == [
        ("email", "B-A"),
        ("email", "B-N"),
        ("email", "VN-1"),
        ("slack", "VN"),
    ]
    assert decided[0].payload["note"] == "all issues resolved"
    pending = [
        r
        for r in await reminders(core)
        if r.subject.startswith("readmission:") and r.status == "pending"
    ]
    assert pending == []  # review reminders stop with the decision
    clock.advance(days=20)
    again = await assessments.record(core, ASSESSOR, "VN-1", "2026-12-20", FAIL4)
    assert again.label == "At risk (1 of 3)"  # a new streak starts


async def test_readmission_refusals(core: Core, world: None) -> None:
    with pytest.raises(StateConflict, match="not designated"):
        await readmission.apply(core, ASSESSOR, "VN-2", EVIDENCE)
    with pytest.raises(InvalidInput, match="not a link"):
        await readmission.apply(core, ASSESSOR, "VN-1", ["evidence.pdf"])
    with pytest.raises(InvalidInput, match="needs the evidence"):
        await readmission.apply(core, ASSESSOR, "VN-1", [])
    with pytest.raises(StateConflict, match="no readmission application"):
        await readmission.decide(core, MANAGER, "VN-1", True, None)
    await readmission.apply(core, ASSESSOR, "VN-1", EVIDENCE)
    with pytest.raises(StateConflict, match="already has a readmission application"):
        await readmission.apply(core, ASSESSOR, "VN-1", EVIDENCE)
    with pytest.raises(InvalidInput, match="needs a reason"):
        await readmission.decide(core, MANAGER, "VN-1", False, "  ")
    with pytest.raises(PermissionDenied):
        await readmission.decide(core, ASSESSOR, "VN-1", True, None)
    with pytest.raises(InvalidDate):
        await readmission.schedule_visit(core, MANAGER, "VN-1", "2026-11-01")
    rejected = await readmission.decide(core, MANAGER, "VN-1", False, "root causes of OS-01 remain")
    assert rejected.label == "Persistently non-compliant"
    assert (await notices(core, "readmission_rejected"))[0].payload["note"] == (
        "root causes of OS-01 remain"
    )
    again = await readmission.apply(core, ASSESSOR, "VN-1", EVIDENCE)  # it may apply again
    assert again.label == "Readmission under review"


async def test_the_stakeholder_meeting_is_reminded_until_held(
    core: Core, clock: FrozenClock, world: None
) -> None:
    meeting = [r for r in await reminders(core) if r.kind == "stakeholder_meeting"]
    assert len(meeting) == 1 and meeting[0].due_at == clock.now + timedelta(days=7)
    runner = ReminderRunner(core)
    clock.advance(days=7)
    assert await runner.run_due() == 1
    clock.advance(days=7)
    assert await runner.run_due() == 1
    sent = await notices(core, "stakeholder_meeting_reminder")
    assert len(sent) == 2 and sent[0].payload["buyers"] == ["Acme", "Nordic"]
    with pytest.raises(PermissionDenied):
        await follow_ups.meeting_held(core, VIEWER, "VN-1", "2026-12-01")
    clock.advance(days=1)
    await follow_ups.meeting_held(core, ASSESSOR, "VN-1", "2026-12-04")
    clock.advance(days=30)
    assert await runner.run_due() == 0
    with pytest.raises(StateConflict):
        await follow_ups.meeting_held(core, ASSESSOR, "VN-1", "2026-12-04")


async def test_staff_hear_when_a_designated_factory_s_cycle_ends(
    core: Core, clock: FrozenClock, world: None
) -> None:
    ends = [r for r in await reminders(core) if r.kind == "cycle_end"]
    assert [r.subject for r in ends] == ["factory:VN-1:2027-06-30"]
    clock.now = datetime(2027, 6, 30, 3, 0, tzinfo=UTC)  # 10:00 local
    await ReminderRunner(core).run_due()
    assert len(await notices(core, "cycle_end_notice")) == 1


async def test_the_clock_alone_wakes_the_workers(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    """No commit wakes anyone: a reminder falling due a second later is sent by the clock."""
    core = Core(db, load_config(settings), settings)  # real time
    await calls.add(core, MANAGER, "2030-01-10")
    async with core.db.transaction(write=True) as s:
        row = (await s.exec(select(Reminder))).scalars().one()
        row.due_at = datetime.now(UTC) + timedelta(seconds=1)
        s.add(row)
    transport = FileTransport(tmp_path / "mail")
    dispatcher = Dispatcher.for_core(core, [transport])
    background = Background(dispatcher, ReminderRunner(core), dispatch_every=0.2, remind_every=0.2)
    await background.start()
    try:
        deadline = asyncio.get_running_loop().time() + 10
        while not await notices(core, "buyer_call_agenda"):
            assert asyncio.get_running_loop().time() < deadline, "the clock never ticked"
            await asyncio.sleep(0.1)
    finally:
        await background.stop()


class WokenDuringItsRound(ReminderRunner):
    """Its first round is woken by a commit that wrote reminders while it was under way."""

    rounds = 0

    async def run_due(self) -> int:
        self.rounds += 1
        if self.rounds == 1:
            self.wake()
        return 0


async def test_a_wake_up_during_a_reminder_round_brings_another_round(
    core: Core,
) -> None:
    runner = WokenDuringItsRound(core)
    running = asyncio.create_task(runner.run(safety_interval=30))
    await asyncio.sleep(0.3)
    runner.stop()
    await running
    assert runner.rounds >= 2  # not left waiting for the next tick


async def test_a_failing_reminder_is_set_aside_and_the_others_are_sent(
    core: Core, world: None
) -> None:
    now = core.clock()
    async with core.db.transaction(write=True) as s:  # a reminder its handler cannot read
        s.add(Reminder(kind="cycle_end", subject="factory-malformed", due_at=now, created_at=now))
    await calls.add(core, MANAGER, "2026-11-22")  # due at once, after the broken one
    runner = ReminderRunner(core)
    assert await runner.run_due() == 2
    assert len(await notices(core, "buyer_call_agenda")) == 1  # the call's went out
    by_kind = {r.kind: r for r in await reminders(core)}
    assert by_kind["buyer_call"].status == "done"
    broken = by_kind["cycle_end"]
    assert broken.status == "failed" and broken.done_at == now
    assert "ValueError" in (broken.note or "")
    (alert,) = await notices(core, "reminder_failed")
    assert alert.channel == "slack" and alert.addresses == ["C0STAFF"]
    text = render_slack("slack/alerts/reminder_failed.txt", **alert.payload)
    assert "cycle end" in text and "factory-malformed" in text and "ValueError" in text
    assert await runner.run_due() == 0  # set aside: not tried, nor reported, again
    assert len(await notices(core, "reminder_failed")) == 1


async def test_a_call_agenda_names_a_factory_whose_country_left_the_configuration(
    core: Core, world: None
) -> None:
    async with core.db.transaction(write=True) as s:  # "XX": not (or no longer) configured
        await s.exec(update(Factory).where(Factory.id == "VN-2").values(country="XX"))
    await calls.add(core, MANAGER, "2026-11-22")
    assert await ReminderRunner(core).run_due() == 1
    (agenda,) = await notices(core, "buyer_call_agenda")
    listed = {f["id"] for g in agenda.payload["groups"] for f in g["factories"]}
    assert listed == {"VN-1", "VN-2"}
    assert [r.status for r in await reminders(core) if r.kind == "buyer_call"] == ["done"]
