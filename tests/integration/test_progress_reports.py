"""Progress Report One and remediation issue by issue (#13 §2, §3), on SQLite and PostgreSQL:
the report date given with an assessment; the factory's reminder and the staff alert scheduled
once, sent through the reminder runner (the email in Vietnamese with English below, through a
real SMTP server), cancelled when the report is recorded, moot after a later assessment, back
after it is withdrawn; a historic import scheduling nothing past; the states in status.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from sqlmodel import select

from bot import mail
from bot.errors import (
    ImportRejected,
    InvalidDate,
    InvalidReportDate,
    NotFoundInAssessment,
    PermissionDenied,
    StateConflict,
    UnknownIssueCodes,
)
from bot.render import render_slack, render_text
from bot.usecases import assessments, calls, imports, progress, reading, readmission, registry
from bot.usecases.core import Core
from bot.vocabulary import ReminderKind, ReminderStatus
from scheduler.reminders import ReminderRunner
from store.models import Assessment, AuditEntry, OutboxMessage, ProgressReport, Reminder
from tests.conftest import ASSESSOR, MANAGER, VIEWER, FrozenClock
from tests.fakes import FakeSlack, SmtpServer
from tests.integration.helpers import FAIL4, dispatcher, drain, slack_transport, smtp_transport

KINDS = (ReminderKind.PROGRESS_DUE, ReminderKind.PROGRESS_OVERDUE)
#: 09:00 in Ho Chi Minh City
REMIND = datetime(2026, 12, 8, 2, 0, tzinfo=UTC)
OVERDUE = datetime(2026, 12, 16, 2, 0, tzinfo=UTC)


async def progress_reminders(core: Core) -> list[Reminder]:
    async with core.db.transaction() as s:
        found = await s.exec(
            select(Reminder).where(Reminder.kind.in_(KINDS)).order_by(Reminder.id)  # type: ignore[attr-defined]
        )
        return list(found.all())


def pending(rows: list[Reminder]) -> list[tuple[str, str, datetime]]:
    return [(r.kind, r.subject, r.due_at) for r in rows if r.status == ReminderStatus.PENDING]


async def notices(core: Core, kind: str) -> list[OutboxMessage]:
    async with core.db.transaction() as s:
        found = await s.exec(select(OutboxMessage).where(OutboxMessage.kind == kind))
        return list(found.all())


async def assessed(core: Core) -> Assessment:
    async with core.db.transaction() as s:
        return (await s.exec(select(Assessment).order_by(Assessment.id.desc()))).first()  # type: ignore[union-attr,return-value]


async def test_the_report_date_sets_the_due_day_and_the_reminders_are_scheduled_once(
    core: Core, registered: None
) -> None:
    with pytest.raises(InvalidReportDate) as future:
        await assessments.record(
            core, ASSESSOR, "VN-1", "2026-11-10", FAIL4, report_on="2026-11-21"
        )
    assert "is in the future" in future.value.message
    with pytest.raises(InvalidReportDate) as before:
        await assessments.record(
            core, ASSESSOR, "VN-1", "2026-11-10", FAIL4, report_on="2026-11-09"
        )
    assert "before the assessment (2026-11-10)" in before.value.message
    assert isinstance(before.value, InvalidDate)
    assert await progress_reminders(core) == []
    outcome = await assessments.record(
        core, ASSESSOR, "VN-1", "2026-11-10", FAIL4, report_on="2026-11-15"
    )
    row = await assessed(core)
    assert row.report_on == date(2026, 11, 15)
    subject = f"assessment:{outcome.assessment_id}"
    expected = [("progress_due", subject, REMIND), ("progress_overdue", subject, OVERDUE)]
    assert pending(await progress_reminders(core)) == expected
    # re-evaluating again (an advisory visit, a readmission step…) schedules nothing more
    await assessments.record(core, ASSESSOR, "VN-1", "2026-11-12", "CO-01", "advisory")
    assert pending(await progress_reminders(core)) == expected
    assert len(await progress_reminders(core)) == 2
    view = await reading.status(core, "VN-1")
    r = view.remediation
    assert r.tracked is not None and r.tracked.id == outcome.assessment_id
    assert r.due_on == date(2026, 12, 15) and r.report_state == "due"
    assert view.to_json()["remediation"]["progress_report"] == {
        "due_on": "2026-12-15",
        "state": "due",
        "reported_on": None,
        "fixed": [],
    }


async def test_the_reminder_and_the_overdue_alert_go_out_through_the_runner(
    core: Core, registered: None, clock: FrozenClock, smtp: SmtpServer, slack: FakeSlack
) -> None:
    await assessments.record(core, ASSESSOR, "VN-1", "2026-11-10", FAIL4, report_on="2026-11-15")
    await drain(dispatcher(core, smtp_transport(smtp), slack_transport(slack)))
    smtp.received.clear()
    runner = ReminderRunner(core)
    assert await runner.run_due() == 0
    clock.now = REMIND
    assert await runner.run_due() == 1
    assert await runner.run_due() == 0
    await drain(dispatcher(core, smtp_transport(smtp), slack_transport(slack)))
    (sent,) = smtp.received
    assert sent.recipients == ["hr@stitch.example"]
    assert sent.message["PNC-Notice"] == "progress_report_reminder"
    assert sent.message["PNC-Factory"] == "VN-1"
    assert str(sent.message["Subject"]).startswith(
        "Hạn nộp Báo cáo tiến độ lần một ngày 15/12/2026"
    )
    text = sent.message.get_body(("plain",)).get_content()
    assert text.index("Kính gửi: Ban Giám đốc Saigon Stitch") < text.index(
        "Dear management of Saigon Stitch"
    )
    assert "is due on 2026-12-15, in 7 days" in text and "còn 7 ngày" in text
    for code in FAIL4.split(","):
        assert f"- {code} " in text
    assert "Better Work verifies only the publicly reported non-compliance issues" in text
    html = sent.message.get_body(("html",)).get_content()
    assert "<strong>CO-01</strong>" in html
    clock.now = OVERDUE
    assert await runner.run_due() == 1
    await drain(dispatcher(core, smtp_transport(smtp), slack_transport(slack)))
    (alert,) = await notices(core, "progress_report_overdue")
    assert alert.addresses == ["C0STAFF"] and alert.status == "sent"
    (posted,) = [c for c in slack.calls_to("chat.postMessage") if "overdue" in str(c.body)]
    assert "Progress Report One overdue" in str(posted.body)
    assert len(smtp.received) == 1
    view = await reading.status(core, "VN-1")
    assert view.remediation.report_state == "overdue"


async def test_a_progress_report_is_checked_cancels_the_reminders_and_moves_the_states(
    core: Core, registered: None, clock: FrozenClock
) -> None:
    with pytest.raises(StateConflict) as nothing:
        await progress.record(core, ASSESSOR, "VN-1", "2026-11-18", "none")
    assert "no counted assessment with publicly reported non-compliance" in nothing.value.message
    outcome = await assessments.record(core, ASSESSOR, "VN-1", "2026-11-10", FAIL4)
    with pytest.raises(NotFoundInAssessment) as other:
        await progress.record(core, ASSESSOR, "VN-1", "2026-11-18", "CO-01,OS-02")
    assert "did not find `OS-02` (did you mean `OS-01`, `CO-02`?)" in other.value.message
    assert "It found `CO-01`, `CO-02`, `OS-01`, `WT-01`" in str(other.value.hint)
    with pytest.raises(UnknownIssueCodes):
        await progress.record(core, ASSESSOR, "VN-1", "2026-11-18", "XX-99")
    with pytest.raises(InvalidDate):
        await progress.record(core, ASSESSOR, "VN-1", "2026-11-21", "CO-01")
    with pytest.raises(StateConflict):
        await progress.record(core, ASSESSOR, "VN-1", "2026-11-09", "CO-01")
    with pytest.raises(PermissionDenied):
        await progress.record(core, VIEWER, "VN-1", "2026-11-18", "CO-01")
    async with core.db.transaction() as s:
        assert (await s.exec(select(ProgressReport))).all() == []
    recorded = await progress.record(core, ASSESSOR, "vn-1", "2026-11-18", "co-01, CO-02")
    assert recorded.fixed == ("CO-01", "CO-02") and recorded.tracked
    assert recorded.remediation.counts["reported"] == 2
    assert pending(await progress_reminders(core)) == []
    assert {r.status for r in await progress_reminders(core)} == {"cancelled"}
    async with core.db.transaction() as s:
        (entry,) = (
            await s.exec(select(AuditEntry).where(AuditEntry.action == "progress.record"))
        ).all()
    assert entry.actor == ASSESSOR.user_id and entry.subject == "VN-1"
    assert entry.detail["assessment_id"] == outcome.assessment_id
    assert entry.detail["fixed"] == ["CO-01", "CO-02"]
    # a verification visit finds CO-02 again: CO-01 verified, CO-02 still open
    await assessments.record(core, ASSESSOR, "VN-1", "2026-11-19", "CO-02", "verification")
    view = await reading.status(core, "VN-1")
    states = {i.code: i.state.value for i in view.remediation.issues}
    assert states == {
        "CO-01": "verified",
        "CO-02": "still_open",
        "OS-01": "open",
        "WT-01": "open",
    }
    assert view.remediation.report_state == "received"
    shown = render_slack("slack/status.txt", v=view, shown=view.latest(5))
    assert "2 of 4 issues reported fixed, 1 verified, 1 still open" in shown
    assert "Progress Report One: received 2026-11-18" in shown
    assert (
        "`CO-02` Overtime not paid at the legal rate: *still open (reported fixed 2026-11-18; "
        "found again 2026-11-19 by a verification visit)*"
    ) in shown
    text = render_text("cli/status.txt", v=view, shown=view.latest(5))
    assert (
        "CO-01    verified (reported fixed 2026-11-18; no longer found 2026-11-19 by a "
        "verification visit)"
    ) in text
    # the reminder's moment comes: nothing is sent
    clock.now = REMIND
    assert await ReminderRunner(core).run_due() == 0
    assert await notices(core, "progress_report_reminder") == []


async def test_a_later_assessment_makes_the_reminders_moot_and_a_withdrawal_brings_them_back(
    core: Core, registered: None
) -> None:
    first = await assessments.record(core, ASSESSOR, "VN-1", "2026-11-01", FAIL4)
    a = f"assessment:{first.assessment_id}"
    due = [
        ("progress_due", a, datetime(2026, 11, 24, 2, tzinfo=UTC)),
        ("progress_overdue", a, datetime(2026, 12, 2, 2, tzinfo=UTC)),
    ]
    assert pending(await progress_reminders(core)) == due
    # a later counted assessment with nothing to fix: the earlier report is moot
    await assessments.record(core, ASSESSOR, "VN-1", "2026-11-15", "none")
    assert pending(await progress_reminders(core)) == []
    view = await reading.status(core, "VN-1")
    assert view.remediation.due_on is None
    assert [i.code for i in view.remediation.resolved] == sorted(FAIL4.split(","))
    # withdrawn: the first one is tracked again, its reminders pending again
    await assessments.withdraw(core, MANAGER, "VN-1", "2026-11-15", "entered twice")
    assert pending(await progress_reminders(core)) == due
    # a later one with issues: its own reminders (the day has passed: at once, by a person)
    later = await assessments.record(core, ASSESSOR, "VN-1", "2026-11-16", "OS-01")
    b = f"assessment:{later.assessment_id}"
    assert [(k, s) for k, s, _ in pending(await progress_reminders(core))] == [
        ("progress_due", b),
        ("progress_overdue", b),
    ]


async def test_a_historic_import_schedules_nothing_past(
    core: Core, registered: None, tmp_path: Path
) -> None:
    await registry.add_factory(core, MANAGER, "VN-2", "Hanoi Knit", "VN", "hr@knit.example")
    await registry.add_factory(core, MANAGER, "VN-3", "Hue Weave", "VN", "hr@weave.example")
    path = tmp_path / "a.csv"
    path.write_text(
        "factory_id,assessed_on,nc_issues,kind,report_on\n"
        f'VN-1,2025-01-10,"{FAIL4}",,2025-01-20\n'
        "VN-2,2026-10-20,CO-01,,2026-10-25\n"
        "VN-3,2026-11-05,OS-01,,\n"
    )
    bad_path = tmp_path / "b.csv"
    bad_path.write_text(
        "factory_id,assessed_on,nc_issues,report_on\nVN-1,2025-01-10,CO-01,2025-01-01\n"
    )
    with pytest.raises(ImportRejected) as bad:
        await imports.run(core, "assessments", bad_path, MANAGER)
    assert "line 2: The report date 2025-01-01 is before the assessment" in bad.value.render()
    await imports.run(core, "assessments", path, MANAGER)
    rows = pending(await progress_reminders(core))
    async with core.db.transaction() as s:
        ids = {a.factory_id: a.id for a in (await s.exec(select(Assessment))).all()}
    # VN-1: long past, nothing; VN-2: due 2026-11-24, its reminder day passed: only the alert;
    # VN-3: due 2026-12-05, both to come
    assert sorted(rows) == sorted(
        [
            (
                "progress_overdue",
                f"assessment:{ids['VN-2']}",
                datetime(2026, 11, 25, 2, tzinfo=UTC),
            ),
            ("progress_due", f"assessment:{ids['VN-3']}", datetime(2026, 11, 28, 2, tzinfo=UTC)),
            ("progress_overdue", f"assessment:{ids['VN-3']}", datetime(2026, 12, 6, 2, tzinfo=UTC)),
        ]
    )
    view = await reading.status(core, "VN-1")
    assert view.remediation.tracked is not None
    assert view.remediation.tracked.report_date == date(2025, 1, 20)
    assert view.remediation.report_state == "overdue"


async def designate_and_report(core: Core) -> None:
    """VN-1 designated by its assessment of 2026-11-01; CO-01, CO-02 and OS-01 reported fixed,
    then a verification visit finds CO-02 again (CO-01 and OS-01 verified)."""
    for day in ("2024-01-10", "2025-01-10", "2026-11-01"):
        await assessments.record(core, ASSESSOR, "VN-1", day, FAIL4)
    await progress.record(core, ASSESSOR, "VN-1", "2026-11-10", "CO-01,CO-02,OS-01")
    await assessments.record(core, ASSESSOR, "VN-1", "2026-11-15", "CO-02", "verification")


async def test_the_buyer_call_shows_each_factorys_progress(
    core: Core, registered: None, clock: FrozenClock
) -> None:
    await designate_and_report(core)
    await calls.add(core, MANAGER, "2026-11-22")
    assert await ReminderRunner(core).run_due() == 1
    (agenda,) = await notices(core, "buyer_call_agenda")
    (f,) = agenda.payload["groups"][0]["factories"]
    assert f["remediation"]["issues"] == 4 and f["remediation"]["reported"] == 3
    text = render_slack("slack/alerts/buyer_call_agenda.txt", **agenda.payload)
    assert "3 of 4 issues reported fixed, 2 verified, 1 still open" in text
    emails = await notices(core, "buyer_call_reminder")
    assert len(emails) == 2
    for email in emails:
        _, body, page = mail.render(email.kind, ["en"], dict(email.payload))
        assert "  Progress: 3 of 4 issues reported fixed, 2 verified, 1 still open" in body
        assert "3 of 4 issues reported fixed, 2 verified, 1 still open</span>" in page


async def test_the_readmission_review_shows_issue_by_issue_what_is_fixed_and_verified(
    core: Core, registered: None, clock: FrozenClock
) -> None:
    await designate_and_report(core)
    await readmission.apply(core, ASSESSOR, "VN-1", ["https://drive.example/vn-1/evidence"])
    clock.advance(days=core.settings.readmission_reminder_days)
    await ReminderRunner(core).run_due()
    (alert,) = await notices(core, "readmission_review_reminder")
    issues = {i["code"]: i["state"] for i in alert.payload["remediation"]["issues"]}
    assert issues == {
        "CO-01": "verified",
        "CO-02": "still_open",
        "OS-01": "verified",
        "WT-01": "open",
    }
    text = render_slack(f"slack/alerts/{alert.kind}.txt", **alert.payload)
    assert (
        "Issue by issue, of the assessment of 2026-11-01: `CO-01` verified (reported "
        "2026-11-10); `CO-02` still open (reported 2026-11-10); `OS-01` verified "
        "(reported 2026-11-10); `WT-01` open — 3 of 4 issues reported fixed, 2 verified, 1 still "
        "open."
    ) in text


async def test_a_reminder_just_due_survives_a_re_evaluation_that_is_no_persons(
    core: Core, registered: None, clock: FrozenClock, tmp_path: Path
) -> None:
    outcome = await assessments.record(
        core, ASSESSOR, "VN-1", "2026-11-10", FAIL4, report_on="2026-11-15"
    )
    clock.now = REMIND.replace(minute=1)  # due a minute ago; the runner has not come by yet
    path = tmp_path / "old.csv"
    path.write_text("factory_id,assessed_on,nc_issues\nVN-1,2020-01-10,none\n")
    await imports.run(core, "assessments", path, MANAGER)  # re-evaluates VN-1, telling nobody
    subject = f"assessment:{outcome.assessment_id}"
    assert pending(await progress_reminders(core)) == [
        ("progress_due", subject, REMIND),
        ("progress_overdue", subject, OVERDUE),
    ]
    assert await ReminderRunner(core).run_due() == 1
    (sent,) = await notices(core, "progress_report_reminder")
    assert sent.addresses == ["hr@stitch.example"] and sent.language == "vi"
