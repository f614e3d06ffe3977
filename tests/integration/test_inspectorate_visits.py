"""The Labour Inspectorate's visits and the improvement reports answering them (#12), on SQLite
and PostgreSQL: a visit recorded (not in the future, once a day, an existing factory); an
approval of readmission refused while a visit since the designation has no report, naming it;
each report added to the open application answering the oldest visit without one; status and
history showing each visit with its report.
"""

from __future__ import annotations

from datetime import date

import pytest
from sqlmodel import select

from bot.errors import (
    AlreadyExists,
    InvalidDate,
    InvalidInput,
    PermissionDenied,
    StateConflict,
    UnknownFactory,
)
from bot.render import render_slack, render_text
from bot.usecases import assessments, inspectorate, reading, readmission
from bot.usecases.core import Core
from bot.vocabulary import NoticeKind
from scheduler.reminders import ReminderRunner
from store import registry as registry_rows
from store.models import AuditEntry, InspectorateVisit, OutboxMessage, Readmission
from tests.conftest import ASSESSOR, MANAGER, VIEWER, FrozenClock
from tests.integration.helpers import FAIL4

DAYS = ("2024-01-10", "2025-01-10", "2026-01-10")
EVIDENCE = "https://drive.example/vn-1/evidence"
REPORT_1 = "https://drive.example/vn-1/improvement-1.pdf"
REPORT_2 = "https://drive.example/vn-1/improvement-2.pdf"


async def designate(core: Core) -> None:
    for day in DAYS:
        await assessments.record(core, ASSESSOR, "VN-1", day, FAIL4)


async def visits(core: Core) -> list[InspectorateVisit]:
    async with core.db.transaction() as s:
        found = await s.exec(select(InspectorateVisit).order_by(InspectorateVisit.visited_on))
        return list(found.all())


async def audit(core: Core, action: str) -> list[AuditEntry]:
    async with core.db.transaction() as s:
        found = await s.exec(select(AuditEntry).where(AuditEntry.action == action))
        return list(found.all())


async def application(core: Core) -> Readmission:
    async with core.db.transaction() as s:
        return (await s.exec(select(Readmission))).one()


async def test_a_visit_is_recorded_once_on_a_past_day_of_an_existing_factory(
    core: Core, registered: None
) -> None:
    await designate(core)
    with pytest.raises(InvalidDate) as future:
        await inspectorate.record_visit(core, ASSESSOR, "VN-1", "2026-11-21")
    assert "is in the future" in future.value.message and "2026-11-20" in str(future.value.hint)
    with pytest.raises(InvalidDate):
        await inspectorate.record_visit(core, ASSESSOR, "VN-1", "2026-13-01")
    with pytest.raises(UnknownFactory) as unknown:
        await inspectorate.record_visit(core, ASSESSOR, "VN-2", "2026-11-01")
    assert "VN-1" in unknown.value.suggestions
    with pytest.raises(PermissionDenied):
        await inspectorate.record_visit(core, VIEWER, "VN-1", "2026-11-01")
    assert await visits(core) == []
    recorded = await inspectorate.record_visit(core, ASSESSOR, "vn-1", "2026-11-01")
    assert recorded.factory_id == "VN-1" and recorded.visited_on == date(2026, 11, 1)
    assert recorded.designated_on == date(2026, 1, 10)
    assert recorded.asks_report and not recorded.applying
    with pytest.raises(AlreadyExists) as twice:
        await inspectorate.record_visit(core, MANAGER, "VN-1", "2026-11-01")
    assert "on 2026-11-01 is already recorded" in twice.value.message
    (visit,) = await visits(core)
    assert visit.recorded_by == ASSESSOR.user_id and visit.report is None
    (entry,) = await audit(core, "inspectorate.visit")
    assert entry.subject == "VN-1"
    assert entry.detail == {"visit": visit.id, "visited_on": "2026-11-01", "asks_report": True}


async def test_a_visit_before_the_designation_or_to_a_factory_not_designated_asks_no_report(
    core: Core, registered: None
) -> None:
    free = await inspectorate.record_visit(core, ASSESSOR, "VN-1", "2023-05-01")
    assert free.designated_on is None and not free.asks_report
    await designate(core)
    before = await inspectorate.record_visit(core, ASSESSOR, "VN-1", "2025-12-01")
    assert before.designated_on == date(2026, 1, 10) and not before.asks_report
    await readmission.apply(core, ASSESSOR, "VN-1", [EVIDENCE])
    # neither blocks the approval
    outcome = await readmission.decide(core, MANAGER, "VN-1", True, None)
    assert outcome.state == "not_at_risk"
    view = await reading.status(core, "VN-1")
    assert [(v.visited_on.isoformat(), v.asks_report) for v in view.visits] == [
        ("2023-05-01", False),
        ("2025-12-01", False),
    ]


async def test_an_approval_waits_for_a_report_on_each_visit_since_the_designation(
    core: Core, registered: None
) -> None:
    await designate(core)
    await inspectorate.record_visit(core, ASSESSOR, "VN-1", "2026-03-02")
    await inspectorate.record_visit(core, ASSESSOR, "VN-1", "2026-06-15")
    # a report before any application: refused, nothing written
    with pytest.raises(StateConflict) as early:
        await readmission.add_report(core, ASSESSOR, "VN-1", REPORT_1)
    assert "has no readmission application under review" in early.value.message
    await readmission.apply(core, ASSESSOR, "VN-1", [EVIDENCE])
    with pytest.raises(StateConflict) as refused:
        await readmission.decide(core, MANAGER, "VN-1", True, "all resolved")
    assert "Labour Inspectorate's visits of 2026-03-02, 2026-06-15" in refused.value.message
    assert "`readmission report VN-1 <link>`" in str(refused.value.hint)
    assert (await application(core)).decided_on is None
    # the first report answers the oldest visit
    with pytest.raises(InvalidInput):
        await readmission.add_report(core, ASSESSOR, "VN-1", "improvement-1.pdf")
    with pytest.raises(PermissionDenied):
        await readmission.add_report(core, VIEWER, "VN-1", REPORT_1)
    added = await readmission.add_report(core, ASSESSOR, "VN-1", f"<{REPORT_1}|report>")
    assert added.link == REPORT_1 and added.answers == date(2026, 3, 2)
    assert added.waiting == (date(2026, 6, 15),)
    first, second = await visits(core)
    assert first.report == REPORT_1 and first.report_added_by == ASSESSOR.user_id
    assert first.report_added_at is not None and second.report is None
    assert (await application(core)).inspectorate_reports == [REPORT_1]
    (entry,) = await audit(core, "readmission.report")
    assert entry.detail["report"] == REPORT_1 and entry.detail["answers"] == "2026-03-02"
    with pytest.raises(StateConflict) as still:
        await readmission.decide(core, MANAGER, "VN-1", True, None)
    assert "visit of 2026-06-15;" in still.value.message and "2026-03-02" not in still.value.message
    # what the status and the history show meanwhile
    view = await reading.status(core, "VN-1")
    shown = render_slack("slack/status.txt", v=view, shown=view.latest(5))
    assert f"• Visit of 2026-03-02: improvement report {REPORT_1}" in shown
    assert "• Visit of 2026-06-15: _no improvement report yet_ — readmission waits for it" in shown
    history = render_slack("slack/history.txt", v=await reading.history_of(core, "VN-1"))
    assert "• Visit of 2026-06-15: _no improvement report yet_" in history
    text = render_text("cli/status.txt", v=view, shown=view.latest(5))
    assert "visit of 2026-06-15: no improvement report yet; readmission waits for it" in text
    visits_json = view.to_json()["inspectorate_visits"]
    assert [(v["visited_on"], v["report"], v["asks_report"]) for v in visits_json] == [
        ("2026-03-02", REPORT_1, True),
        ("2026-06-15", None, True),
    ]
    # the review reminder's facts
    async with core.db.transaction() as s:
        factory = await registry_rows.get_factory(s, "VN-1")
        facts = await inspectorate.review_facts(core, s, factory)
    assert facts == {
        "visits": [
            {"visited_on": "2026-03-02", "report": REPORT_1},
            {"visited_on": "2026-06-15", "report": None},
        ]
    }
    # the second report answers the other visit; the approval goes through
    added = await readmission.add_report(core, ASSESSOR, "VN-1", REPORT_2)
    assert added.answers == date(2026, 6, 15) and added.waiting == ()
    outcome = await readmission.decide(core, MANAGER, "VN-1", True, "all resolved")
    assert outcome.state == "not_at_risk"
    assert (await application(core)).inspectorate_reports == [REPORT_1, REPORT_2]


async def test_a_report_given_with_the_application_answers_a_visit(
    core: Core, registered: None
) -> None:
    await designate(core)
    await inspectorate.record_visit(core, ASSESSOR, "VN-1", "2026-03-02")
    await readmission.apply(core, ASSESSOR, "VN-1", [EVIDENCE], [REPORT_1])
    (visit,) = await visits(core)
    assert visit.report == REPORT_1
    (entry,) = await audit(core, "readmission.apply")
    assert entry.detail["visits_answered"] == ["2026-03-02"]
    # a visit recorded during the review is answered by a report added after it
    applying = await inspectorate.record_visit(core, ASSESSOR, "VN-1", "2026-11-19")
    assert applying.asks_report and applying.applying
    with pytest.raises(StateConflict):
        await readmission.decide(core, MANAGER, "VN-1", True, None)
    # the same report again answers it too (one report may cover two visits)
    again = await readmission.add_report(core, ASSESSOR, "VN-1", REPORT_1)
    assert again.answers == date(2026, 11, 19)
    assert (await application(core)).inspectorate_reports == [REPORT_1]
    # once no visit waits, the same link again is refused
    with pytest.raises(AlreadyExists):
        await readmission.add_report(core, ASSESSOR, "VN-1", REPORT_1)
    await readmission.decide(core, MANAGER, "VN-1", True, None)


async def test_a_rejection_does_not_wait_for_reports(core: Core, registered: None) -> None:
    await designate(core)
    await inspectorate.record_visit(core, ASSESSOR, "VN-1", "2026-03-02")
    await readmission.apply(core, ASSESSOR, "VN-1", [EVIDENCE])
    outcome = await readmission.decide(core, MANAGER, "VN-1", False, "reports missing")
    assert outcome.state == "pnc"


async def test_the_review_reminder_names_each_visit_and_whether_its_report_came(
    core: Core, registered: None, clock: FrozenClock
) -> None:
    await designate(core)
    await readmission.apply(core, ASSESSOR, "VN-1", [EVIDENCE])
    await inspectorate.record_visit(core, ASSESSOR, "VN-1", "2026-11-10")
    await readmission.add_report(core, ASSESSOR, "VN-1", REPORT_1)
    await inspectorate.record_visit(core, ASSESSOR, "VN-1", "2026-11-18")
    clock.advance(days=core.settings.readmission_reminder_days)
    await ReminderRunner(core).run_due()
    async with core.db.transaction() as s:
        reminder = select(OutboxMessage).where(
            OutboxMessage.kind == NoticeKind.READMISSION_REVIEW_REMINDER
        )
        (alert,) = (await s.exec(reminder)).all()
    assert alert.payload["visits"] == [
        {"visited_on": "2026-11-10", "report": REPORT_1},
        {"visited_on": "2026-11-18", "report": None},
    ]
    text = render_slack(f"slack/alerts/{alert.kind}.txt", **alert.payload)
    assert "2026-11-18" in text and "2026-11-10" in text
