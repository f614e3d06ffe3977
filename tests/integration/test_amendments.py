"""A history corrected after its events were recorded: which notices are cancelled, which count
as told, and what an event the history supports again leaves to do (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from bot.errors import InvalidDate, StateConflict
from bot.transports import FileTransport
from bot.usecases import assessments, follow_ups, readmission
from bot.usecases.core import Core
from scheduler.reminders import ReminderRunner
from store.models import AuditEntry, FollowUp, OutboxMessage, PncEvent, Reminder
from store.outbox import UNSUPPORTED
from tests.conftest import ASSESSOR, MANAGER, FrozenClock
from tests.integration.helpers import dispatcher, drain

FAIL4 = "CO-01,CO-02,OS-01,WT-01"
FAIL5 = "CO-01,CO-02,OS-01,WT-01,WT-02"
PASS = "CO-01"


async def rows(core: Core, factory_id: str = "VN-1") -> list[OutboxMessage]:
    async with core.db.transaction() as s:
        found = await s.exec(
            select(OutboxMessage)
            .where(OutboxMessage.factory_id == factory_id)
            .order_by(OutboxMessage.id)
        )
        return list(found.scalars())


async def set_outbox(core: Core, **values: Any) -> None:
    """Put every outbox row in the state a dispatcher would have left it in."""
    async with core.db.transaction(write=True) as s:
        await s.exec(update(OutboxMessage).values(**values))


async def recorded(core: Core, factory_id: str = "VN-1") -> dict[str, PncEvent]:
    async with core.db.transaction() as s:
        found = await s.exec(select(PncEvent).where(PncEvent.factory_id == factory_id))
        return {e.key.split("/", 1)[1]: e for e in found.scalars()}


async def test_a_retrying_notice_of_a_corrected_event_is_cancelled(
    core: Core, registered: None
) -> None:
    await assessments.record(core, ASSESSOR, "VN-1", "2026-01-10", FAIL4)
    await set_outbox(core, attempts=2, last_error="451 try later")  # waiting to retry
    outcome = await assessments.amend(core, MANAGER, "VN-1", "2026-01-10", "typo", nc_issues=PASS)
    assert outcome.contradicted == ()  # nobody had been told
    assert {r.status for r in await rows(core)} == {"cancelled"}


async def test_a_dead_notice_reached_nobody_so_nothing_is_held(
    core: Core, registered: None
) -> None:
    await assessments.record(core, ASSESSOR, "VN-1", "2026-01-10", FAIL4)
    await set_outbox(core, status="dead", attempts=8, last_error="550 no such user")
    # an earlier failing assessment comes in late: the warning "1 of 3" becomes "2 of 3"
    outcome = await assessments.record(core, ASSESSOR, "VN-1", "2025-12-10", FAIL4)
    assert outcome.contradicted == ()
    events = await recorded(core)
    gone = [e.id for e in events.values() if e.unsupported_at is not None]
    assert len(gone) == 1
    assert {r.status for r in await rows(core) if r.event_id in gone} == {"cancelled"}
    assert not [r for r in await rows(core) if r.kind == "history_changed"]
    assert {e.notice for e in events.values() if e.unsupported_at is None} == {"due"}
    assert {r.status for r in await rows(core) if r.event_id not in gone} == {"pending"}


async def test_a_partly_delivered_notice_counts_as_told(core: Core, registered: None) -> None:
    await assessments.record(core, ASSESSOR, "VN-1", "2026-01-10", FAIL4)
    await set_outbox(core, attempts=1, delivered_to=["a1@acme.example"])
    outcome = await assessments.amend(core, MANAGER, "VN-1", "2026-01-10", "typo", nc_issues=PASS)
    assert len(outcome.contradicted) == 1  # someone read it: staff review
    event_rows = [r for r in await rows(core) if r.event_id is not None]
    assert {r.status for r in event_rows} == {"cancelled"}  # the others are not sent it
    assert [r.kind for r in await rows(core) if r.event_id is None] == ["history_changed"]


async def test_a_notice_being_sent_cannot_be_recalled_and_counts_as_told(
    core: Core, registered: None
) -> None:
    await assessments.record(core, ASSESSOR, "VN-1", "2026-01-10", FAIL4)
    await set_outbox(core, status="sending", attempts=1, claimed_by="d1")
    outcome = await assessments.amend(core, MANAGER, "VN-1", "2026-01-10", "typo", nc_issues=PASS)
    assert len(outcome.contradicted) == 1
    assert {r.status for r in await rows(core) if r.event_id is not None} == {"sending"}


async def test_an_event_supported_again_is_notified_with_what_the_history_now_says(
    core: Core, registered: None, clock: FrozenClock, deliver: Any
) -> None:
    await assessments.record(core, ASSESSOR, "VN-1", "2026-01-10", FAIL4)
    await assessments.amend(core, MANAGER, "VN-1", "2026-01-10", "typo", nc_issues=PASS)
    assert {r.status for r in await rows(core)} == {"cancelled"}
    clock.advance(hours=1)
    back = await assessments.amend(
        core, MANAGER, "VN-1", "2026-01-10", "typo after all", nc_issues=FAIL5
    )
    assert [e.key for e in back.new_events] == ["VN-1/at_risk_warning/a1/k1"]
    assert back.contradicted == ()
    revived = await rows(core)
    assert {(r.status, r.attempts, r.last_error) for r in revived} == {("pending", 0, None)}
    assert {r.next_attempt_at for r in revived} == {clock.now}
    # the notices say what the history says now, not what it said when first recorded
    assert {len(r.payload["issues"]) for r in revived} == {5}
    event = (await recorded(core))["at_risk_warning/a1/k1"]
    assert (event.notice, event.unsupported_at, event.notified_at) == ("due", None, clock.now)
    assert await deliver() == len([r for r in revived if r.channel == "email"])
    assert {r.status for r in await rows(core) if r.channel == "email"} == {"sent"}


async def test_an_event_supported_again_after_people_were_told_is_not_sent_twice(
    core: Core, registered: None, deliver: Any
) -> None:
    await assessments.record(core, ASSESSOR, "VN-1", "2026-01-10", FAIL4)
    await deliver()
    told = await assessments.amend(core, MANAGER, "VN-1", "2026-01-10", "typo", nc_issues=PASS)
    assert len(told.contradicted) == 1
    back = await assessments.amend(core, MANAGER, "VN-1", "2026-01-10", "no", nc_issues=FAIL4)
    assert back.new_events == () and back.contradicted == ()
    assert await deliver() == 0
    event = (await recorded(core))["at_risk_warning/a1/k1"]
    assert (event.notice, event.unsupported_at) == ("due", None)


async def test_an_event_supported_again_while_the_history_changed_is_held(
    core: Core, registered: None, deliver: Any
) -> None:
    await assessments.record(core, ASSESSOR, "VN-1", "2026-01-10", FAIL4)
    await assessments.amend(core, MANAGER, "VN-1", "2026-01-10", "typo", nc_issues=PASS)
    await assessments.record(core, ASSESSOR, "VN-1", "2026-02-10", FAIL4)
    await deliver()  # "1 of 3" for 2026-02-10 reached people
    # 2026-01-10 fails after all: its warning is supported again, and 2026-02-10 is "2 of 3"
    back = await assessments.amend(core, MANAGER, "VN-1", "2026-01-10", "no", nc_issues=FAIL4)
    assert back.contradicted == ("VN-1/at_risk_warning/a2/k1",)
    events = await recorded(core)
    assert events["at_risk_warning/a1/k1"].notice == "held"
    assert events["at_risk_warning/a2/k2"].notice == "held"
    first = [r for r in await rows(core) if r.event_id == events["at_risk_warning/a1/k1"].id]
    assert {r.status for r in first} == {"cancelled"}
    alert = [r for r in await rows(core) if r.kind == "history_changed"]
    assert sorted(alert[0].payload["held"]) == [
        "VN-1/at_risk_warning/a1/k1",
        "VN-1/at_risk_warning/a2/k2",
    ]


# --- what a designation leaves to do --------------------------------------------------------


async def designate(core: Core) -> None:
    for day in ("2026-01-10", "2026-04-10", "2026-07-10"):
        await assessments.record(core, ASSESSOR, "VN-1", day, FAIL4)


async def follow_ups_of(core: Core) -> list[FollowUp]:
    async with core.db.transaction() as s:
        return list((await s.exec(select(FollowUp).order_by(FollowUp.id))).scalars())


async def pending(core: Core) -> list[tuple[str, str]]:
    async with core.db.transaction() as s:
        found = await s.exec(
            select(Reminder).where(Reminder.status == "pending").order_by(Reminder.id)
        )
        return [(r.kind, r.subject) for r in found.scalars()]


async def test_a_designation_no_longer_supported_stops_its_meeting_reminders(
    core: Core, registered: None, clock: FrozenClock
) -> None:
    await designate(core)
    assert await pending(core) == [
        ("stakeholder_meeting", "follow_up:1"),
        ("cycle_end", "factory:VN-1:2027-06-30"),
    ]
    outcome = await assessments.amend(core, MANAGER, "VN-1", "2026-07-10", "wrong", nc_issues=PASS)
    assert outcome.label == "Not at risk"
    assert await pending(core) == []
    [follow_up] = await follow_ups_of(core)
    assert (follow_up.closed_on, follow_up.closed_by) == (clock.now.date(), "pnc-bot")
    runner = ReminderRunner(core)
    for _ in range(4):
        clock.advance(days=7)
        assert await runner.run_due() == 0
    with pytest.raises(StateConflict):
        await follow_ups.meeting_held(core, ASSESSOR, "VN-1", "2026-11-20")
    async with core.db.transaction() as s:
        actions = (await s.exec(select(AuditEntry.action))).scalars().all()
    assert "follow_up.closed" in actions


async def test_a_designation_supported_again_reopens_its_meeting(
    core: Core, registered: None, clock: FrozenClock
) -> None:
    await designate(core)
    await assessments.amend(core, MANAGER, "VN-1", "2026-07-10", "wrong", nc_issues=PASS)
    clock.advance(days=1)
    back = await assessments.amend(core, MANAGER, "VN-1", "2026-07-10", "no", nc_issues=FAIL4)
    assert back.label == "Persistently non-compliant"
    [follow_up] = await follow_ups_of(core)
    assert (follow_up.closed_on, follow_up.closed_by) == (None, None)
    assert sorted(await pending(core)) == [
        ("cycle_end", "factory:VN-1:2027-06-30"),
        ("stakeholder_meeting", "follow_up:1"),
    ]
    clock.advance(days=7)
    assert await ReminderRunner(core).run_due() == 1
    await follow_ups.meeting_held(core, ASSESSOR, "VN-1", "2026-11-25")


async def test_a_meeting_held_stays_held_whatever_the_history_does(
    core: Core, registered: None, clock: FrozenClock
) -> None:
    await designate(core)
    await follow_ups.meeting_held(core, ASSESSOR, "VN-1", "2026-11-19")
    await assessments.amend(core, MANAGER, "VN-1", "2026-07-10", "wrong", nc_issues=PASS)
    await assessments.amend(core, MANAGER, "VN-1", "2026-07-10", "no", nc_issues=FAIL4)
    [follow_up] = await follow_ups_of(core)
    assert (follow_up.closed_on, follow_up.closed_by) == (date(2026, 11, 19), "U0ASSESSOR")
    assert await pending(core) == [("cycle_end", "factory:VN-1:2027-06-30")]


async def test_an_application_no_longer_supported_stops_its_review_reminders(
    core: Core, registered: None, clock: FrozenClock
) -> None:
    await designate(core)
    await readmission.apply(core, MANAGER, "VN-1", ["https://drive.example/evidence"])
    await readmission.schedule_visit(core, MANAGER, "VN-1", "2026-12-10")
    assert {k for k, s in await pending(core) if s == "readmission:1"} == {
        "readmission_review",
        "unannounced_visit",
    }
    await assessments.amend(core, MANAGER, "VN-1", "2026-07-10", "wrong", nc_issues=PASS)
    assert await pending(core) == []  # no review of an application nobody can decide
    await assessments.amend(core, MANAGER, "VN-1", "2026-07-10", "no", nc_issues=FAIL4)
    assert {k for k, s in await pending(core) if s == "readmission:1"} == {
        "readmission_review",
        "unannounced_visit",
    }


async def test_a_meeting_in_the_future_is_refused_in_the_words_of_a_meeting(
    core: Core, registered: None
) -> None:
    await designate(core)
    with pytest.raises(InvalidDate) as exc_info:
        await follow_ups.meeting_held(core, ASSESSOR, "VN-1", "2026-12-01")
    assert exc_info.value.render() == (
        "The meeting date 2026-12-01 is in the future. "
        "Give the day the meeting took place (today is 2026-11-20)."
    )


async def test_a_notice_being_sent_when_its_event_lost_support_is_not_retried(
    core: Core, registered: None, clock: FrozenClock, tmp_path: Path
) -> None:
    """It could not be recalled while in flight; once that attempt fails, it is not tried again."""
    await assessments.record(core, ASSESSOR, "VN-1", "2026-01-10", FAIL4)
    await set_outbox(core, status="sending", attempts=1, claimed_by="d1")
    outcome = await assessments.amend(core, MANAGER, "VN-1", "2026-01-10", "typo", nc_issues=PASS)
    assert len(outcome.contradicted) == 1
    # the attempt in flight failed (451): the dispatcher put the rows back to wait for a retry
    async with core.db.transaction(write=True) as s:
        await s.exec(
            update(OutboxMessage)
            .where(OutboxMessage.event_id.is_not(None))  # type: ignore[union-attr]
            .values(status="pending", claimed_by=None, next_attempt_at=clock(), last_error="451")
        )
    outbox = tmp_path / "outbox"
    await drain(dispatcher(core, FileTransport(outbox)))
    emails = [r for r in await rows(core) if r.event_id is not None and r.channel == "email"]
    assert {(r.status, r.attempts, r.last_error) for r in emails} == {("cancelled", 1, UNSUPPORTED)}
    assert not list(outbox.glob("*.eml"))  # no email went out
