"""Assessments: recorded by assessors, corrected or withdrawn by managers. Each change is one
transaction with the re-evaluation of the factory's whole history, the events and notices it
gives rise to, and the audit entry."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

from bot import policy, remediation, validation
from bot.errors import DuplicateAssessment, InvalidInput, UnknownAssessment
from bot.policy import Event
from bot.roles import Actor, Permission, RoleLevel
from bot.usecases import access, registry
from bot.usecases.core import Core
from bot.usecases.reevaluation import Reevaluation, reevaluate
from bot.vocabulary import NoticeMode
from store import history
from store.db import Session, flush_unique
from store.models import Assessment, Factory

RECORD = Permission("assess", RoleLevel.ASSESSOR)
AMEND = Permission("assessment amend", RoleLevel.MANAGER)
WITHDRAW = Permission("assessment withdraw", RoleLevel.MANAGER)


@dataclass(frozen=True)
class AssessmentOutcome:
    assessment_id: int
    factory_id: str
    factory_name: str
    assessed_on: date
    nc_count: int
    label: str
    state: str
    new_events: tuple[Event, ...]
    contradicted: tuple[str, ...]
    kind: str = "regular"
    #: False for a kind the factory's country does not count (an advisory visit, …)
    counted_kind: bool = True
    #: the day its Progress Report One is due (None: none is awaited of it)
    report_due: date | None = None


async def record(
    core: Core,
    actor: Actor,
    factory_id: str,
    assessed_on: str | date,
    nc_issues: str | Iterable[str],
    kind: str | None = None,
    *,
    report_on: str | date | None = None,
) -> AssessmentOutcome:
    """Record one assessment; its events and the audit entry are written with it.
    ``report_on``: the date of its report, if not the assessment's own (Progress Report One)."""
    await access.require(core, actor, RECORD)
    fid = validation.identifier(factory_id, "factory id")
    day = validation.assessment_date(assessed_on, core.today())
    the_kind = validation.assessment_kind(kind)
    reported = validation.report_date(report_on, day, core.today())
    async with core.db.transaction(write=True) as s:
        factory = await registry.existing_factory(s, fid, lock=True)
        country = core.countries.country(factory.country)
        codes = validation.issue_codes(nc_issues, country.catalogue, country.code)
        await _no_assessment_on(s, fid, day)
        row = Assessment(
            factory_id=fid,
            assessed_on=day,
            kind=the_kind,
            nc_issues=sorted(codes),
            submitted_by=actor.user_id,
            submitted_at=core.clock(),
            source=actor.source,
            report_on=reported,
        )
        s.add(row)
        await flush_unique(s, DuplicateAssessment(_duplicate(fid, day)))
        result = await _reevaluate(core, s, factory)
        core.audit(
            s,
            actor,
            "assessment.record",
            fid,
            {
                "assessment_id": row.id,
                "assessed_on": day.isoformat(),
                "nc_issues": sorted(codes),
                **({"kind": the_kind} if the_kind != "regular" else {}),
                **({"report_on": reported.isoformat()} if reported else {}),
            },
        )
    return _outcome(row, factory, result, country.rules.counted_kinds)


async def amend(
    core: Core,
    actor: Actor,
    factory_id: str,
    assessed_on: str | date,
    reason: str,
    *,
    nc_issues: str | Iterable[str] | None = None,
    new_date: str | date | None = None,
    kind: str | None = None,
) -> AssessmentOutcome:
    """Correct a recorded assessment (manager); the history is re-evaluated."""
    await access.require(core, actor, AMEND)
    fid = validation.identifier(factory_id, "factory id")
    day = validation.iso_date(assessed_on) if isinstance(assessed_on, str) else assessed_on
    why = validation.text(reason, "reason", 500)
    if nc_issues is None and new_date is None and kind is None:
        raise InvalidInput("Nothing to amend.", "Give new issue codes, a new date or a kind.")
    async with core.db.transaction(write=True) as s:
        factory = await registry.existing_factory(s, fid, lock=True)
        row = await _existing_assessment(s, fid, day)
        country = core.countries.country(factory.country)
        before = _facts(row)
        if nc_issues is not None:
            row.nc_issues = sorted(
                validation.issue_codes(nc_issues, country.catalogue, country.code)
            )
        if new_date is not None:
            moved = validation.assessment_date(new_date, core.today())
            if moved != row.assessed_on:
                await _no_assessment_on(s, fid, moved)
                row.assessed_on = moved
        if kind is not None:
            row.kind = validation.assessment_kind(kind)
        row.amended_at, row.amended_by, row.amend_reason = core.clock(), actor.user_id, why
        s.add(row)
        await flush_unique(s, DuplicateAssessment(_duplicate(fid, row.assessed_on)))
        result = await _reevaluate(core, s, factory)
        core.audit(
            s,
            actor,
            "assessment.amend",
            fid,
            {"assessment_id": row.id, "reason": why, "before": before, "after": _facts(row)},
        )
    return _outcome(row, factory, result, country.rules.counted_kinds)


async def withdraw(
    core: Core, actor: Actor, factory_id: str, assessed_on: str | date, reason: str
) -> AssessmentOutcome:
    """Withdraw a recorded assessment (manager): kept for the record, no longer counted."""
    await access.require(core, actor, WITHDRAW)
    fid = validation.identifier(factory_id, "factory id")
    day = validation.iso_date(assessed_on) if isinstance(assessed_on, str) else assessed_on
    why = validation.text(reason, "reason", 500)
    async with core.db.transaction(write=True) as s:
        factory = await registry.existing_factory(s, fid, lock=True)
        row = await _existing_assessment(s, fid, day)
        row.withdrawn_at, row.withdrawn_by, row.withdraw_reason = core.clock(), actor.user_id, why
        s.add(row)
        await s.flush()
        result = await _reevaluate(core, s, factory)
        core.audit(
            s,
            actor,
            "assessment.withdraw",
            fid,
            {"assessment_id": row.id, "assessed_on": day.isoformat(), "reason": why},
        )
    return _outcome(row, factory, result)


async def _reevaluate(core: Core, s: Session, factory: Factory) -> Reevaluation:
    """Re-evaluate the factory's history as it now stands (its locked row is not read again)."""
    h = await history.load_histories(s, [factory.id], {factory.id: factory})
    return (await reevaluate(core, s, [factory.id], NoticeMode.DUE, h))[factory.id]


async def _existing_assessment(s: Session, fid: str, day: date) -> Assessment:
    row = await history.live_assessment_on(s, fid, day)
    if row is None:
        days = [a.assessed_on.isoformat() for a in await history.live_assessments(s, fid)]
        raise UnknownAssessment(
            f"{fid} {day.isoformat()}",
            extra=f"Recorded assessments of `{fid}`: {', '.join(days) or 'none'}.",
        )
    return row


async def _no_assessment_on(s: Session, fid: str, day: date) -> None:
    if await history.live_assessment_on(s, fid, day) is not None:
        raise DuplicateAssessment(
            _duplicate(fid, day),
            "A factory has one assessment a day; a manager can amend or withdraw it.",
        )


def _duplicate(fid: str, day: date) -> str:
    return f"`{fid}` already has an assessment on {day.isoformat()}."


def _facts(row: Assessment) -> dict[str, object]:
    """What an amendment may change, as the audit entry records it before and after."""
    return {
        "assessed_on": row.assessed_on.isoformat(),
        "nc_issues": list(row.nc_issues),
        "kind": row.kind,
    }


def _outcome(
    row: Assessment,
    factory: Factory,
    result: Reevaluation,
    counted_kinds: frozenset[str] = policy.COUNTED_KINDS,
) -> AssessmentOutcome:
    assert row.id is not None
    return AssessmentOutcome(
        assessment_id=row.id,
        factory_id=factory.id,
        factory_name=factory.name,
        assessed_on=row.assessed_on,
        nc_count=len(row.nc_issues),
        label=result.evaluation.label,
        state=result.evaluation.state.value,
        new_events=result.new_events,
        contradicted=result.contradicted,
        kind=row.kind,
        counted_kind=row.kind in counted_kinds,
        report_due=remediation.due_of(result.evaluation.verdicts, row.id, row.report_on),
    )
