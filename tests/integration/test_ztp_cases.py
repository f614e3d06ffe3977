"""Zero-tolerance cases (#13), on SQLite and PostgreSQL: an assessment of any kind with a
zero-tolerance code opens a case once (re-evaluated again, or by two replicas at once), with an
urgent staff alert, the authorities' email where an address is configured, and the reminders of
its deadlines; a historic import records its findings without telling anyone; progress moves a
case forward only, and closing it cancels its reminders; a case never counts towards PNC.
"""

from __future__ import annotations

import asyncio
import itertools
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlmodel import select

from bot.countries import load_config
from bot.errors import (
    InvalidInput,
    PermissionDenied,
    UnknownIssueCodes,
    UnknownZtpCase,
    ZtpCaseConflict,
)
from bot.render import render_slack
from bot.settings import Settings
from bot.usecases import assessments, reading, ztp
from bot.usecases.core import Core
from bot.usecases.reevaluation import reevaluate
from bot.vocabulary import NoticeKind, NoticeMode, ReminderStatus, ZtpStatus
from scheduler.reminders import ReminderRunner
from store import history
from store.db import Database
from store.models import Assessment, AuditEntry, OutboxMessage, Reminder, ZtpCase, ZtpUpdate
from tests.conftest import ASSESSOR, MANAGER, VIEWER, FrozenClock
from tests.fakes import SmtpServer
from tests.integration.helpers import dispatcher, drain, smtp_transport

AUTHORITY = "ztp@molisa.example"


def configured(settings: Settings, tmp_path: Path, extra: str = "") -> Settings:
    path = tmp_path / "pnc.toml"
    path.write_text(f'[countries.VN]\nztp_emails = ["{AUTHORITY}"]\n{extra}', encoding="utf-8")
    return settings.model_copy(update={"config_path": path})


@pytest.fixture
def escalating(db: Database, settings: Settings, clock: FrozenClock, tmp_path: Path) -> Core:
    """A core whose Viet Nam configures the authorities' address."""
    with_address = configured(settings, tmp_path)
    return Core(db, load_config(with_address), with_address, clock)


async def rows(core: Core, model: type) -> list:  # type: ignore[type-arg]
    async with core.db.transaction() as s:
        return list((await s.exec(select(model).order_by(model.id))).all())


async def ztp_reminders(core: Core) -> list[Reminder]:
    return [r for r in await rows(core, Reminder) if r.kind.startswith("ztp_")]


async def ztp_notices(core: Core) -> list[OutboxMessage]:
    return [o for o in await rows(core, OutboxMessage) if o.kind.startswith("ztp_")]


async def test_an_advisory_visit_finding_child_labour_opens_a_case_once(
    escalating: Core, registered: None
) -> None:
    core = escalating
    outcome = await assessments.record(
        core, ASSESSOR, "VN-1", "2026-11-18", "CL-01,FL-02,OS-01", "advisory"
    )
    assert not outcome.counted_kind and outcome.state == "not_at_risk"
    cases = await rows(core, ZtpCase)
    assert [(c.code, c.status, c.assessment_id) for c in cases] == [
        ("CL-01", ZtpStatus.OPEN, outcome.assessment_id),
        ("FL-02", ZtpStatus.OPEN, outcome.assessment_id),
    ]
    assert cases[0].key == f"ztp:{outcome.assessment_id}:CL-01"
    sent = await ztp_notices(core)
    assert sorted((o.kind, o.recipient_type, o.language) for o in sent) == [
        (NoticeKind.ZTP_OPENED, "staff", "en"),
        (NoticeKind.ZTP_OPENED, "staff", "en"),
        (NoticeKind.ZTP_REFERRAL, "authority", "vi"),
        (NoticeKind.ZTP_REFERRAL, "authority", "vi"),
    ]
    assert all(o.event_id is None and o.factory_id == "VN-1" for o in sent)
    # the factory is not emailed about a case
    assert not any(o.recipient_type == "factory" for o in sent)
    due = sorted((r.kind, r.due_at - core.clock()) for r in await ztp_reminders(core))
    assert due == [
        ("ztp_action_plan", timedelta(hours=72)),
        ("ztp_action_plan", timedelta(hours=72)),
        ("ztp_investigation", timedelta(hours=48)),
        ("ztp_investigation", timedelta(hours=48)),
    ]
    # re-evaluated again (another assessment, a correction): nothing opens twice
    await assessments.record(core, ASSESSOR, "VN-1", "2026-11-19", "OS-02")
    async with core.db.transaction(write=True) as s:
        await reevaluate(core, s, ["VN-1"], NoticeMode.DUE)
    assert len(await rows(core, ZtpCase)) == 2 and len(await ztp_notices(core)) == 4
    audit = [a for a in await rows(core, AuditEntry) if a.action == "ztp.opened"]
    assert [a.detail["code"] for a in audit] == ["CL-01", "FL-02"]
    view = await reading.status(core, "VN-1")
    assert [c.code for c in view.ztp_cases] == ["CL-01", "FL-02"]
    assert view.to_json()["ztp_cases"][0]["status"] == "open"
    shown = render_slack("slack/status.txt", v=view, shown=view.latest(5))
    assert "Zero-tolerance cases open" in shown and "#1 `CL-01`" in shown


async def test_a_zero_tolerance_code_counts_towards_pnc_like_any_other_issue_and_no_more(
    core: Core, registered: None
) -> None:
    outcome = await assessments.record(core, ASSESSOR, "VN-1", "2026-11-18", "CL-01")
    assert outcome.state == "not_at_risk" and outcome.nc_count == 1
    assert outcome.new_events == ()
    (case,) = await rows(core, ZtpCase)
    assert case.code == "CL-01"


async def test_without_an_address_the_staff_alert_says_nobody_outside_was_told(
    core: Core, registered: None
) -> None:
    await assessments.record(core, ASSESSOR, "VN-1", "2026-11-18", "CL-02")
    (alert,) = await ztp_notices(core)
    assert alert.kind == NoticeKind.ZTP_OPENED and alert.payload["authorities"] == []
    text = render_slack("slack/alerts/ztp_opened.txt", **alert.payload)
    assert "Urgent" in text and "No authorities' address is configured for Viet Nam" in text
    assert "ztp_emails" in text


async def test_a_historic_import_records_its_findings_closed_and_tells_nobody(
    escalating: Core, registered: None
) -> None:
    core = escalating
    async with core.db.transaction(write=True) as s:
        s.add(
            Assessment(
                factory_id="VN-1",
                assessed_on=core.today() - timedelta(days=400),
                nc_issues=["FL-01"],
                submitted_by="import",
                submitted_at=core.clock(),
                source="import",
            )
        )
        await s.flush()
        await reevaluate(core, s, ["VN-1"], NoticeMode.SUPPRESSED)
    (case,) = await rows(core, ZtpCase)
    assert case.status == ZtpStatus.CLOSED and case.note == ztp.IMPORTED
    assert await ztp_notices(core) == [] and await ztp_reminders(core) == []
    # the next assessment re-evaluates the history: the imported finding stays as it is
    await assessments.record(core, ASSESSOR, "VN-1", "2026-11-18", "OS-01")
    assert len(await rows(core, ZtpCase)) == 1 and await ztp_notices(core) == []
    assert (await reading.status(core, "VN-1")).ztp_cases == ()


async def test_a_finding_recorded_before_cases_were_tracked_is_left_alone(
    escalating: Core, registered: None
) -> None:
    core = escalating
    async with core.db.transaction(write=True) as s:
        s.add(
            Assessment(
                factory_id="VN-1",
                assessed_on=core.today() - timedelta(days=30),
                nc_issues=["CL-01"],
                submitted_by="U0OLD",
                submitted_at=core.clock() - timedelta(days=20),
                source="slack",
            )
        )
    await assessments.record(core, ASSESSOR, "VN-1", "2026-11-18", "OS-01")
    assert await rows(core, ZtpCase) == []
    # amended now: the finding is current, and escalated
    await assessments.amend(
        core, MANAGER, "VN-1", core.today() - timedelta(days=30), "typo", nc_issues="CL-01,CL-02"
    )
    assert sorted(c.code for c in await rows(core, ZtpCase)) == ["CL-01", "CL-02"]


async def test_two_replicas_re_evaluating_at_once_open_the_case_once(
    escalating: Core, registered: None
) -> None:
    core = escalating
    await assessments.record(core, ASSESSOR, "VN-1", "2026-11-18", "OS-01")
    async with core.db.transaction(write=True) as s:
        s.add(
            Assessment(
                factory_id="VN-1",
                assessed_on=core.today() - timedelta(days=1),
                nc_issues=["CL-03"],
                submitted_by="U0X",
                submitted_at=core.clock(),
                source="slack",
            )
        )
    other = Database(core.db.url)
    replica = Core(other, core.config, core.settings, core.clock)

    async def run(c: Core) -> None:
        async with c.db.transaction(write=True) as s:
            await reevaluate(c, s, ["VN-1"], NoticeMode.DUE)

    try:
        await asyncio.gather(run(core), run(replica))
    finally:
        await other.dispose()
    assert len(await rows(core, ZtpCase)) == 1
    assert len(await ztp_notices(core)) == 2 and len(await ztp_reminders(core)) == 2


async def test_reminders_alert_staff_at_each_missed_deadline_and_closing_cancels_them(
    core: Core, registered: None, clock: FrozenClock
) -> None:
    await assessments.record(core, ASSESSOR, "VN-1", "2026-11-18", "CL-01")
    runner = ReminderRunner(core)
    clock.advance(hours=47)
    assert await runner.run_due() == 0
    clock.advance(hours=1)
    assert await runner.run_due() == 1
    (late,) = [o for o in await ztp_notices(core) if o.kind == NoticeKind.ZTP_DEADLINE]
    assert late.payload["deadline"] == "investigation" and late.payload["urgent"]
    text = render_slack("slack/alerts/ztp_deadline.txt", **late.payload)
    assert "no investigation recorded" in text and "/pnc ztp update 1 investigating" in text
    await ztp.update(core, ASSESSOR, "1", "investigating", "the inspectorate opened it")
    clock.advance(hours=24)
    assert await runner.run_due() == 1
    deadline = [o for o in await ztp_notices(core) if o.kind == NoticeKind.ZTP_DEADLINE]
    assert [o.payload["deadline"] for o in deadline] == ["investigation", "action_plan"]
    # still no action plan a day later: reminded again
    clock.advance(hours=24)
    assert await runner.run_due() == 1
    line = await ztp.update(core, ASSESSOR, "#1", "closed", "the child was removed and schooled")
    assert line.status == ZtpStatus.CLOSED and line.closed_at == clock()
    pending = [r for r in await ztp_reminders(core) if r.status == ReminderStatus.PENDING]
    assert pending == []
    clock.advance(days=3)
    assert await runner.run_due() == 0
    assert (await reading.status(core, "VN-1")).ztp_cases == ()


async def test_progress_moves_a_case_forward_only_and_is_audited(
    core: Core, registered: None
) -> None:
    await assessments.record(core, ASSESSOR, "VN-1", "2026-11-18", "FL-04")
    with pytest.raises(PermissionDenied):
        await ztp.update(core, VIEWER, "1", "investigating", "x")
    with pytest.raises(UnknownZtpCase) as unknown:
        await ztp.update(core, ASSESSOR, "7", "investigating", "x")
    assert "#1" in str(unknown.value.hint)
    with pytest.raises(InvalidInput) as word:
        await ztp.update(core, ASSESSOR, "1", "investigate", "x")
    assert "investigating" in str(word.value.hint)
    with pytest.raises(InvalidInput):
        await ztp.update(core, ASSESSOR, "one", "closed", "x")
    with pytest.raises(InvalidInput):
        await ztp.update(core, ASSESSOR, "1", "closed", "  ")
    await ztp.update(core, ASSESSOR, "1", "action-plan", "agreed at once")
    with pytest.raises(ZtpCaseConflict) as same:
        await ztp.update(core, ASSESSOR, "1", "action-plan", "again")
    assert "already `action-plan`" in same.value.message
    with pytest.raises(ZtpCaseConflict) as backwards:
        await ztp.update(core, ASSESSOR, "1", "investigating", "late news")
    assert "forward only" in str(backwards.value.hint)
    await ztp.update(core, ASSESSOR, "1", "closed", "done")
    with pytest.raises(ZtpCaseConflict) as closed:
        await ztp.update(core, ASSESSOR, "1", "closed", "again")
    assert "was closed" in closed.value.message
    updates = await rows(core, ZtpUpdate)
    assert [(u.status, u.note, u.by) for u in updates] == [
        ("action_plan", "agreed at once", ASSESSOR.user_id),
        ("closed", "done", ASSESSOR.user_id),
    ]
    audit = [a.detail for a in await rows(core, AuditEntry) if a.action == "ztp.update"]
    assert [(d["from"], d["to"]) for d in audit] == [
        ("open", "action_plan"),
        ("action_plan", "closed"),
    ]


async def test_a_case_opened_by_hand_under_any_code_of_the_catalogue(
    escalating: Core, registered: None
) -> None:
    core = escalating
    with pytest.raises(PermissionDenied):
        await ztp.open_by_hand(core, VIEWER, "VN-1", "OS-01", "exits locked")
    with pytest.raises(UnknownIssueCodes) as bad:
        await ztp.open_by_hand(core, ASSESSOR, "VN-1", "OS-1", "exits locked")
    assert "OS-01" in bad.value.render()
    with pytest.raises(InvalidInput):
        await ztp.open_by_hand(core, ASSESSOR, "VN-1", "OS-01,CL-01", "two")
    with pytest.raises(InvalidInput):
        await ztp.open_by_hand(core, ASSESSOR, "VN-1", "OS-01", " ")
    assert await rows(core, ZtpCase) == []
    opened = await ztp.open_by_hand(
        core, ASSESSOR, "vn-1", "os-01", "exits locked during the night shift"
    )
    assert opened.case.by_hand and opened.emailed == (AUTHORITY,) and opened.staff_told
    (case,) = await rows(core, ZtpCase)
    assert case.key.startswith("ztp:manual:VN-1:") and case.opened_by == ASSESSOR.user_id
    assert len(await ztp_notices(core)) == 2
    (entry,) = [a for a in await rows(core, AuditEntry) if a.action == "ztp.open"]
    assert entry.actor == ASSESSOR.user_id and entry.detail["code"] == "OS-01"
    assert [c.id for c in await ztp.open_cases(core)] == [case.id]
    assert [c.id for c in await ztp.cases_of(core, "VN-1")] == [case.id]


@pytest.mark.parametrize("language", ["vi", "en"])
async def test_the_authorities_email_goes_through_smtp_in_their_language(
    db: Database,
    settings: Settings,
    clock: FrozenClock,
    tmp_path: Path,
    smtp: SmtpServer,
    language: str,
) -> None:
    chosen = configured(settings, tmp_path, f'ztp_language = "{language}"\n')
    core = Core(db, load_config(chosen), chosen, clock)
    from bot.usecases import registry

    await registry.add_factory(
        core, MANAGER, "VN-1", "Saigon Stitch", "VN", "hr@stitch.example", "vi"
    )
    await assessments.record(core, ASSESSOR, "VN-1", "2026-11-18", "CL-01")
    await drain(dispatcher(core, smtp_transport(smtp)))
    (sent,) = smtp.received
    assert sent.recipients == [AUTHORITY]
    assert sent.message["PNC-Notice"] == "ztp_referral" and sent.message["PNC-Factory"] == "VN-1"
    text = sent.message.get_body(("plain",)).get_content()
    english = text.index("To the authorities (Viet Nam)")
    assert "open an investigation within 48 hours, by 2026-11-22 10:00" in text
    if language == "vi":
        assert str(sent.message["Subject"]).startswith("Khẩn, không khoan nhượng")
        assert text.index("Kính gửi: Cơ quan chức năng") < english
    else:
        assert str(sent.message["Subject"]).startswith("Urgent, zero tolerance: Workers under")
        assert "Kính gửi" not in text


PROPERTY = settings(
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    database=None,
    max_examples=15,
)
VISIT = st.tuples(
    st.integers(1, 400),
    st.frozensets(st.sampled_from(["CL-01", "CL-02", "FL-03", "OS-01", "WT-01"]), max_size=3),
    st.sampled_from(["regular", "advisory", "verification", "unannounced"]),
)


@PROPERTY
@given(visits=st.lists(VISIT, min_size=1, max_size=5, unique_by=lambda v: v[0]))
async def test_cases_opened_are_the_distinct_findings_and_re_running_opens_none(
    core: Core, visits: list[tuple[int, frozenset[str], str]]
) -> None:
    from bot.usecases import registry

    fid = f"VN-P{next(_NUMBERS)}"
    await registry.add_factory(core, MANAGER, fid, "Property Garments", "VN", "hr@p.example")
    for days_ago, codes, kind in visits:
        day = core.today() - timedelta(days=days_ago)
        await assessments.record(core, ASSESSOR, fid, day, ",".join(codes) or "none", kind)
    zt_codes = core.country("VN").ztp.codes
    async with core.db.transaction() as s:
        live = await history.live_assessments(s, fid)
    expected = {(a.id, c) for a in live for c in a.nc_issues if c in zt_codes}
    for _ in range(2):
        async with core.db.transaction(write=True) as s:
            await reevaluate(core, s, [fid], NoticeMode.DUE)
    opened = [c for c in await rows(core, ZtpCase) if c.factory_id == fid]
    assert {(c.assessment_id, c.code) for c in opened} == expected
    assert len(opened) == len(expected)
    alerts = [
        o
        for o in await ztp_notices(core)
        if o.factory_id == fid and o.kind == NoticeKind.ZTP_OPENED
    ]
    assert len(alerts) == len(expected)


_NUMBERS = itertools.count(1)
