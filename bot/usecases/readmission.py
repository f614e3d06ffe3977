"""Readmission (FAQ: "Can a PNC factory return to the programme?").

A designated factory applies with evidence that it has resolved all its publicly reported
issues, including their root causes, and copies of its improvement reports to the Labour
Inspectorate; a programme manager may schedule an unannounced verification visit, then decides.
Each step is a record in the history — the policy derives the state and the events from it —
and each is one transaction with its notices and reminders. Each improvement report answers the
oldest recorded visit of the Inspectorate still without one (``inspectorate``); an approval
waits until every visit since the designation has its report.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from bot import policy, validation
from bot.errors import AlreadyExists, InvalidDate, InvalidInput, StateConflict
from bot.roles import Actor, Permission, RoleLevel
from bot.usecases import access, follow_ups, inspectorate, registry
from bot.usecases.core import Core
from bot.usecases.reevaluation import Reevaluation, StateOutcome, reevaluate
from bot.vocabulary import ApplicationSubject, Decision, NoticeMode, ReminderKind
from store import history, reminders
from store.db import Session
from store.history import Histories
from store.models import Factory, Readmission

APPLY = Permission("readmission apply", RoleLevel.ASSESSOR)
SCHEDULE_VISIT = Permission("readmission unannounced", RoleLevel.MANAGER)
APPROVE = Permission("readmission approve", RoleLevel.MANAGER)
REJECT = Permission("readmission reject", RoleLevel.MANAGER)
#: adding what the factory sent is an assessor's work, like the application itself
REPORT = Permission("readmission report", RoleLevel.ASSESSOR)

_URL = re.compile(r"^https?://[^\s<>\"'\x00-\x1f\x7f-\x9f]{3,2000}$")


def urls(values: Sequence[str], what: str) -> list[str]:
    found = []
    for value in values:
        cleaned = value.strip().strip("<>").split("|", 1)[0]  # Slack sends <url|label>
        if not _URL.fullmatch(cleaned):
            raise InvalidInput(
                f"`{validation.shown(value)}` is not a link to the {what}.",
                "Give links starting with https://, e.g. to the shared folder of documents.",
            )
        validation.visible(cleaned, f"link to the {what}")
        found.append(cleaned)
    return found


async def apply(
    core: Core, actor: Actor, factory_id: str, evidence: Sequence[str], reports: Sequence[str] = ()
) -> StateOutcome:
    """Open an application; refused unless the factory is designated and has none open."""
    await access.require(core, actor, APPLY)
    fid = validation.identifier(factory_id, "factory id")
    if not evidence:
        raise InvalidInput(
            "An application needs the evidence.",
            "Give links to the evidence that all issues and their root causes are resolved.",
        )
    evidence_links = urls(evidence, "evidence")
    report_links = urls(reports, "Inspectorate improvement reports")
    async with core.db.transaction(write=True) as s:
        factory = await registry.existing_factory(s, fid, lock=True)
        h, state = await _history(core, s, factory)
        if state.state is policy.State.READMISSION_REVIEW:
            raise StateConflict(
                f"`{fid}` already has a readmission application under review.",
                f"A manager decides it: `readmission approve {fid}` or `readmission reject "
                f"{fid} <reason>`.",
            )
        if state.state is not policy.State.PNC:
            raise StateConflict(
                f"`{fid}` is not designated ({state.label}); only a designated factory can "
                "apply for readmission."
            )
        application = Readmission(
            factory_id=fid,
            applied_on=core.today(),
            applied_by=actor.user_id,
            applied_at=core.clock(),
            evidence=evidence_links,
            inspectorate_reports=report_links,
        )
        s.add(application)
        await s.flush()
        result = await _reevaluate(core, s, h, application)
        since = inspectorate.designated_on(state)
        answered = (
            await inspectorate.answer_visits(core, s, actor, fid, since, report_links)
            if since is not None and report_links
            else []
        )
        core.audit(
            s,
            actor,
            "readmission.apply",
            fid,
            {
                "application": application.id,
                "evidence": evidence_links,
                "reports": report_links,
                "visits_answered": [v.visited_on.isoformat() for v in answered],
            },
        )
    return StateOutcome.of(factory, result)


async def schedule_visit(core: Core, actor: Actor, factory_id: str, day: str) -> date:
    """Schedule the unannounced verification visit; staff are reminded the day before."""
    await access.require(core, actor, SCHEDULE_VISIT)
    fid = validation.identifier(factory_id, "factory id")
    visit = validation.iso_date(day, "visit date")
    today = core.today()
    if visit < today:
        raise InvalidDate(
            f"The visit date {visit.isoformat()} is in the past.",
            f"Give a day from today ({today.isoformat()}) on.",
        )
    async with core.db.transaction(write=True) as s:
        factory = await registry.existing_factory(s, fid, lock=True)
        application, h, _ = await _open_application(core, s, factory)
        assert application.id is not None
        application.unannounced_on = visit
        s.add(application)
        await s.flush()
        await _reevaluate(core, s, h, application)
        subject = ApplicationSubject(application.id)
        await reminders.cancel_reminders(
            s, subject, [ReminderKind.UNANNOUNCED_VISIT], "visit moved"
        )
        await reminders.add_reminders(
            s, [follow_ups.visit_eve(core, application.id, visit, core.clock())]
        )
        core.audit(
            s,
            actor,
            "readmission.unannounced",
            fid,
            {"application": application.id, "visit_on": visit.isoformat()},
        )
        core.reminders_written(s)
    return visit


async def decide(
    core: Core,
    actor: Actor,
    factory_id: str,
    approve: bool,
    note: str | None,
    application_id: int | None = None,
) -> StateOutcome:
    """Approve (the factory is readmitted: a new streak starts) or reject (it stays
    designated; a reason is required). With ``application_id`` (a button's), refused unless
    that is the application under review."""
    permission = APPROVE if approve else REJECT
    await access.require(core, actor, permission)
    fid = validation.identifier(factory_id, "factory id")
    text = validation.text(note, "reason", 2000) if note and note.strip() else None
    if not approve and text is None:
        raise InvalidInput(
            "A rejection needs a reason.",
            f"`readmission reject {fid} <reason>`: the factory is told why.",
        )
    async with core.db.transaction(write=True) as s:
        factory = await registry.existing_factory(s, fid, lock=True)
        application, h, state = await _open_application(core, s, factory)
        assert application.id is not None
        if application_id is not None and application.id != application_id:
            raise StateConflict(f"Application #{application_id} of `{fid}` is not under review.")
        if approve:
            await _reports_complete(s, fid, state)
        application.decided_on = core.today()
        application.decision = Decision.APPROVED if approve else Decision.REJECTED
        application.decided_by, application.decision_note = actor.user_id, text
        s.add(application)
        await s.flush()
        result = await _reevaluate(core, s, h, application)
        await reminders.cancel_reminders(s, ApplicationSubject(application.id), note="decided")
        core.audit(
            s,
            actor,
            permission.action.replace(" ", "."),
            fid,
            {"application": application.id, "note": text},
        )
    return StateOutcome.of(factory, result)


@dataclass(frozen=True)
class ReportAdded:
    """An improvement report added to an open application, and the visit it answers."""

    factory_id: str
    link: str
    #: the day of the visit it answers (None if no recorded visit was waiting for one)
    answers: date | None
    #: the days of the visits still without a report
    waiting: tuple[date, ...]


async def add_report(core: Core, actor: Actor, factory_id: str, link: str) -> ReportAdded:
    """Add an improvement report to the open application; it answers the oldest visit of the
    Inspectorate since the designation still without a report."""
    await access.require(core, actor, REPORT)
    fid = validation.identifier(factory_id, "factory id")
    (url,) = urls([link], "Inspectorate improvement report")
    async with core.db.transaction(write=True) as s:
        factory = await registry.existing_factory(s, fid, lock=True)
        application, _, state = await _open_application(core, s, factory)
        since = inspectorate.designated_on(state)
        waiting = await inspectorate.unanswered(s, fid, since)
        if not waiting and url in application.inspectorate_reports:
            raise AlreadyExists(
                f"The application of `{fid}` already has this improvement report.",
                "No recorded visit of the Labour Inspectorate waits for a report.",
            )
        if url not in application.inspectorate_reports:
            application.inspectorate_reports = [*application.inspectorate_reports, url]
            s.add(application)
        answered = (
            await inspectorate.answer_visits(core, s, actor, fid, since, [url])
            if since is not None
            else []
        )
        answers = answered[0].visited_on if answered else None
        core.audit(
            s,
            actor,
            "readmission.report",
            fid,
            {
                "application": application.id,
                "report": url,
                "answers": answers.isoformat() if answers else None,
            },
        )
    return ReportAdded(fid, url, answers, tuple(waiting[1:] if answers else waiting))


async def _reports_complete(s: Session, fid: str, state: policy.Evaluation) -> None:
    """Refuse an approval while a visit of the Inspectorate since the designation has no
    improvement report."""
    waiting = await inspectorate.unanswered(s, fid, inspectorate.designated_on(state))
    if not waiting:
        return
    days = ", ".join(d.isoformat() for d in waiting)
    visits = "visit" if len(waiting) == 1 else "visits"
    raise StateConflict(
        f"`{fid}` has no improvement report for the Labour Inspectorate's {visits} of {days}; "
        "readmission needs one for each visit.",
        f"Add each report the factory sent with `readmission report {fid} <link>`, then approve.",
    )


async def _history(core: Core, s: Session, factory: Factory) -> tuple[Histories, policy.Evaluation]:
    """The factory's history (read once per use case) and what it means."""
    h = await history.load_histories(s, [factory.id], {factory.id: factory})
    country = core.countries.country(factory.country)
    return h, policy.evaluate(
        country.rules,
        factory.id,
        h.assessments.get(factory.id, []),
        h.readmissions.get(factory.id, []),
        verdicts=False,
    )


async def _open_application(
    core: Core, s: Session, factory: Factory
) -> tuple[Readmission, Histories, policy.Evaluation]:
    h, state = await _history(core, s, factory)
    if state.open_application is None:
        raise StateConflict(
            f"`{factory.id}` has no readmission application under review ({state.label}).",
            f"The factory applies first: `readmission apply {factory.id} <evidence link>`.",
        )
    application = await history.get_application(s, state.open_application.id)
    assert application is not None
    return application, h, state


async def _reevaluate(
    core: Core, s: Session, h: Histories, application: Readmission
) -> Reevaluation:
    """Re-evaluate the history read before, with the application as it now stands."""
    fid = application.factory_id
    h.readmissions[fid] = [
        *(r for r in h.readmissions.get(fid, []) if r.id != application.id),
        history.as_readmission(application),
    ]
    return (await reevaluate(core, s, [fid], NoticeMode.DUE, h))[fid]
