"""Progress Report One and the remediation of publicly reported issues (#13).

``record`` stores what a factory reports fixed (``/pnc progress``); ``remediation_of`` derives,
issue by issue, where the issues of each factory's latest counted assessment stand
(``bot.remediation``, pure); ``reschedule`` keeps the reminders of Progress Report One in step
with the history, inside ``reevaluation.reevaluate``'s transaction: the factory's reminder
``progress_reminder_days`` before it is due and the staff alert the day after, for the tracked
assessment only (a later counted assessment, a withdrawal or a recorded report makes the
earlier ones moot).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from bot import policy, remediation, validation
from bot.countries import Country
from bot.errors import AlreadyExists, NotFoundInAssessment, StateConflict
from bot.remediation import Remediation, Report, Visit
from bot.roles import Actor, Permission, RoleLevel
from bot.suggest import close_matches
from bot.usecases import access, registry
from bot.usecases.core import Core, local_moment
from bot.vocabulary import AssessmentSubject, ReminderKind, ReminderStatus, parse_subject
from store import progress as rows
from store import reminders
from store.db import Session
from store.history import Histories, load_histories
from store.models import Factory, ProgressReport

#: a progress report is a fact from the field, like an assessment: assessors record it
RECORD = Permission("progress", RoleLevel.ASSESSOR)


@dataclass(frozen=True)
class ProgressRecorded:
    """A progress report recorded, and where the factory's issues stand with it."""

    factory_id: str
    factory_name: str
    #: the assessment it answers
    assessed_on: date
    reported_on: date
    fixed: tuple[str, ...]
    remediation: Remediation
    #: whether it answers the assessment whose issues are tracked (not an earlier one)
    tracked: bool


async def record(
    core: Core, actor: Actor, factory_id: str, reported_on: str | date, fixed: str | Iterable[str]
) -> ProgressRecorded:
    """Record a progress report: what the factory reports fixed (``none``: nothing) of the
    issues found by its latest counted assessment with publicly reported non-compliance on or
    before that day. Its pending reminders are cancelled."""
    await access.require(core, actor, RECORD)
    fid = validation.identifier(factory_id, "factory id")
    day = validation.past_date(reported_on, core.today(), "progress report date")
    async with core.db.transaction(write=True) as s:
        factory = await registry.existing_factory(s, fid, lock=True)
        country = core.countries.country(factory.country)
        codes = validation.issue_codes(fixed, country.catalogue, country.code)
        history = await _visits(core, s, factory)
        answered = remediation.answered(history, day)
        if answered is None:
            raise StateConflict(
                f"`{fid}` has no counted assessment with publicly reported non-compliance on or "
                f"before {day.isoformat()}.",
                f"A progress report answers such an assessment; `status {fid}` lists them.",
            )
        found = sorted(answered.nc_issues)
        unknown = sorted(codes - answered.nc_issues)
        if unknown:
            raise NotFoundInAssessment(
                f"of `{fid}` on {answered.assessed_on.isoformat()}",
                {c: close_matches(c, found, 2) for c in unknown},
                found,
            )
        earlier = (await rows.reports(s, [fid])).get(fid, [])
        if any(r.assessment_id == answered.id and r.reported_on == day for r in earlier):
            raise AlreadyExists(
                f"A progress report of `{fid}` on {day.isoformat()} is already recorded.",
                f"`status {fid}` shows it; record a later report with its own date.",
            )
        report = await rows.add_report(
            s,
            ProgressReport(
                factory_id=fid,
                assessment_id=answered.id,
                reported_on=day,
                fixed=sorted(codes),
                recorded_by=actor.user_id,
                recorded_at=core.clock(),
            ),
        )
        await reminders.cancel_reminders(
            s,
            AssessmentSubject(answered.id),
            rows.KINDS,
            f"progress report of {day.isoformat()} recorded",
        )
        core.audit(
            s,
            actor,
            "progress.record",
            fid,
            {
                "progress_report": report.id,
                "assessment_id": answered.id,
                "reported_on": day.isoformat(),
                "fixed": sorted(codes),
            },
        )
        assert report.id is not None
        now = remediation.track(
            history,
            [*earlier, Report(answered.id, day, frozenset(codes), report.id)],
            today=core.today(),
            names=_names(country),
        )
    tracked = now.tracked is not None and now.tracked.id == answered.id
    return ProgressRecorded(
        fid, factory.name, answered.assessed_on, day, tuple(sorted(codes)), now, tracked
    )


# --- reading ----------------------------------------------------------------------------------


async def remediation_of(core: Core, s: Session, factory: Factory) -> Remediation:
    """Where the issues of the factory's latest counted assessment stand today."""
    history = await _visits(core, s, factory)
    reports = await reports_of(s, factory.id)
    country = country_of(core, factory.country)
    return remediation.track(history, reports, today=core.today(), names=_names(country))


async def reports_of(s: Session, factory_id: str) -> list[Report]:
    """The factory's progress reports, oldest first."""
    return (await rows.reports(s, [factory_id])).get(factory_id, [])


def remediation_from(
    core: Core,
    factory: Factory,
    verdicts: Iterable[policy.Verdict],
    report_dates: Mapping[int, date | None],
    reports: Iterable[Report],
) -> Remediation:
    """``remediation_of`` for a caller that has evaluated the factory's history already (the
    status): its verdicts, its assessments' report dates by id, its progress reports."""
    country = country_of(core, factory.country)
    return remediation.track(
        remediation.visits(verdicts, report_dates),
        reports,
        today=core.today(),
        names=_names(country),
    )


async def remediations(
    core: Core, s: Session, factory_ids: Sequence[str]
) -> dict[str, Remediation]:
    """``remediation_of`` for several factories (a buyer call's agenda), in a few queries."""
    ids = list(dict.fromkeys(factory_ids))
    if not ids:
        return {}
    h = await load_histories(s, ids)
    reports = await rows.reports(s, ids)
    found = {}
    for fid in ids:
        if fid not in h.countries:
            continue
        country = country_of(core, h.countries[fid])
        found[fid] = remediation.track(
            _history(country, h, fid),
            reports.get(fid, []),
            today=core.today(),
            names=_names(country),
        )
    return found


def country_of(core: Core, code: str) -> Country:
    """A factory's country in force; the default one's rules for a country since removed
    from the configuration (as the buyer call's agenda reads it)."""
    return core.countries.get(code) or core.countries.default


def _names(country: Country) -> dict[str, str]:
    return {i.code: i.name for i in country.catalogue}


def _history(
    country: Country, h: Histories, fid: str, dates: Mapping[int, date | None] | None = None
) -> list[Visit]:
    """The factory's assessments as remediation reads them; ``dates``: their reports' dates,
    unless the histories hold them."""
    evaluation = policy.evaluate(
        country.rules, fid, h.assessments.get(fid, []), h.readmissions.get(fid, [])
    )
    if dates is None:
        dates = (h.report_dates or {}).get(fid, {})
    return remediation.visits(evaluation.verdicts, dates)


async def _visits(core: Core, s: Session, factory: Factory) -> list[Visit]:
    h = await load_histories(s, [factory.id], {factory.id: factory})
    return _history(country_of(core, factory.country), h, factory.id)


# --- the reminders ------------------------------------------------------------------------------


async def reschedule(
    core: Core, s: Session, h: Histories, factory_ids: Sequence[str], *, live: bool
) -> None:
    """Bring the reminders of Progress Report One in step with these factories' histories
    (``reevaluate`` calls it in its transaction). Only factories with an assessment report
    recent enough to be awaited, or with pending reminders, are looked at; ``live`` (a person
    changed the history) lets a reminder whose day has passed go out at once
    (``remediation.wanted``). A reminder already sent is not sent again."""
    today, now = core.today(), core.clock()
    since = today - timedelta(days=remediation.PROGRESS_REPORT_DAYS + 1)
    recent: Mapping[str, Mapping[int, date | None]]
    if h.report_dates is None:  # histories built by their caller (an import): read them
        recent = await rows.report_dates(s, factory_ids, since)
    else:
        recent = {
            fid: h.report_dates.get(fid, {})
            for fid in factory_ids
            if any(
                h.report_dates.get(fid, {}).get(a.id, a.assessed_on) >= since
                for a in h.assessments.get(fid, [])
            )
        }
    pending = await rows.pending_reminders(s, factory_ids)
    fids = sorted((set(recent) | set(pending)) & set(h.countries))
    if not fids:
        return
    reports = await rows.reports(s, fids)
    want: dict[tuple[str, str], datetime] = {}
    keep: set[tuple[str, str]] = set()
    for fid in fids:
        country = country_of(core, h.countries[fid])
        tracked = remediation.track(
            _history(country, h, fid, recent.get(fid)), reports.get(fid, [])
        )
        plan = remediation.schedule(tracked, country.progress_reminder_days)
        if plan is None:
            continue
        remind, overdue = remediation.wanted(
            plan, lambda d: local_moment(d, core.settings.tz), now, today, live=live
        )
        subject = str(AssessmentSubject(plan.assessment_id))
        # still awaited: its pending reminders stand, even one whose moment has just passed
        keep.update((kind.value, subject) for kind in rows.KINDS)
        for which, moment in (
            (ReminderKind.PROGRESS_DUE, remind),
            (ReminderKind.PROGRESS_OVERDUE, overdue),
        ):
            if moment is not None:
                want[(which.value, subject)] = moment
    known = await rows.reminders_about(s, sorted({subject for _, subject in want}))
    cancel = [r.id for group in pending.values() for r in group if (r.kind, r.subject) not in keep]
    add = []
    for (kind, subject), moment in want.items():
        same = [r for r in known if (r.kind, r.subject) == (kind, subject)]
        live_rows = [r for r in same if r.status != ReminderStatus.CANCELLED]
        waiting = [r for r in live_rows if r.status == ReminderStatus.PENDING]
        if not live_rows:
            add.append(reminders.reminder(ReminderKind(kind), parse_subject(subject), moment, now))
        elif waiting and moment > now and all(r.due_at != moment for r in waiting):
            # the report's date moved: the reminder follows it
            cancel += [r.id for r in waiting]
            add.append(reminders.reminder(ReminderKind(kind), parse_subject(subject), moment, now))
    if cancel:
        await rows.cancel_reminders(s, cancel, "moot: Progress Report One is no longer awaited")
    if add:
        await reminders.add_reminders(s, add)
        core.reminders_written(s)
