"""What people read: a factory's status and history (always derived from its history by the
policy, never read from a stored verdict), the factories at risk or designated, and someone's
recent submissions."""

from __future__ import annotations

import dataclasses
from functools import lru_cache
from typing import Any

from bot import policy, validation
from bot.countries import Catalogue, Country
from bot.errors import UnknownFactory
from bot.usecases import inspectorate, progress, registry, ztp
from bot.usecases.core import Core
from bot.usecases.read_models import (
    ApplicationLine,
    AssessmentLine,
    BuyerLine,
    EventLine,
    IssueLine,
    ReferralLine,
    StatusView,
    Submission,
    WatchedFactory,
    WatchList,
)
from store import history, snapshot
from store import registry as registry_rows
from store.models import Factory
from store.progress import as_report


async def factory(core: Core, factory_id: str) -> Factory:
    """A registered factory, or ``UnknownFactory`` with close ids."""
    fid = validation.identifier(factory_id, "factory id")
    async with core.db.transaction() as s:
        return await registry.existing_factory(s, fid)


async def status(core: Core, factory_id: str) -> StatusView:
    """Everything there is to show about one factory, derived from its history: its rows read
    in one transaction (``store.snapshot``, the hot path), then ``status_view``."""
    fid = validation.identifier(factory_id, "factory id")
    rows = await snapshot.factory_rows(core.db.hot, fid)
    if rows is None:
        async with core.db.transaction() as s:
            await registry.existing_factory(s, fid)  # raises, naming close ids
        rows = await snapshot.factory_rows(core.db.hot, fid)  # registered just now
        if rows is None:  # pragma: no cover - and removed again (factories are never removed)
            raise UnknownFactory(fid, [])
    return status_view(core, rows)


def status_view(core: Core, rows: snapshot.FactoryRows) -> StatusView:
    """The status of a factory from its rows: the policy's evaluation of its history, its
    remediation, and what is on record about it."""
    found = rows.factory
    country = core.countries.country(found.country)
    evaluation = policy.evaluate(
        country.rules,
        found.id,
        [history.as_record(r) for r in rows.assessments],
        [history.as_readmission(r) for r in rows.readmissions],
    )
    designated_on = inspectorate.designated_on(evaluation)
    remediation = progress.remediation_from(
        core,
        found,
        evaluation.verdicts,
        {r.id: r.report_on for r in rows.assessments},
        [as_report(r) for r in rows.reports],
    )
    verdicts = {v.assessment.id: v for v in evaluation.verdicts}
    lines = {r.id: _line(r, verdicts[r.id], country) for r in rows.assessments}
    tz = core.settings.tz
    return StatusView(
        factory_id=found.id,
        name=found.name,
        country=country.code,
        country_name=country.name,
        language=found.language or country.language,
        cycle_end=found.cycle_end,
        state=evaluation.state.value,
        label=evaluation.label,
        streak=evaluation.streak,
        threshold=evaluation.threshold,
        consecutive=evaluation.consecutive,
        public_reporting_since=country.rules.public_reporting_since,
        designated=evaluation.designated,
        assessments=tuple(lines[v.assessment.id] for v in evaluation.verdicts),
        basis=tuple(lines[a.id] for a in evaluation.basis),
        subscribers=tuple(BuyerLine(b.id, b.name) for b in rows.subscribers),
        referrals=tuple(ReferralLine.of(r, tz) for r in rows.referrals),
        visits=inspectorate.visit_lines(rows.visits, designated_on),
        designated_on=designated_on,
        ztp_cases=tuple(ztp.case_line(core, r) for r in rows.open_cases),
        remediation=remediation,
        applications=tuple(
            ApplicationLine(
                a.id,
                a.applied_on,
                a.applied_by,
                tuple(a.evidence),
                tuple(a.inspectorate_reports),
                a.unannounced_on,
                a.decided_on,
                a.decision,
                a.decision_note,
            )
            for a in rows.readmissions
        ),
        events=tuple(
            EventLine(
                e.kind,
                e.occurred_on,
                e.key,
                e.notice,
                e.unsupported_at is None,
                e.created_at,
                id=e.id,
                held_because=e.held_because,
                reviewed_at=e.reviewed_at,
                reviewed_by=e.reviewed_by,
                review_note=e.review_note,
            )
            for e in rows.events
        ),
    )


async def history_of(core: Core, factory_id: str) -> StatusView:
    """The status with everything kept for the record: withdrawn assessments too."""
    view = await status(core, factory_id)
    async with core.db.transaction() as s:
        rows = await history.withdrawn_assessments(s, view.factory_id)
    country = core.countries.country(view.country)
    withdrawn = tuple(
        dataclasses.replace(
            _line(r, policy.Verdict(history.as_record(r), False, False), country),
            withdrawn_reason=r.withdraw_reason,
        )
        for r in rows
    )
    return dataclasses.replace(view, withdrawn=withdrawn)


async def watch_list(core: Core, country: str | None = None, limit: int = 50) -> WatchList:
    """Factories at risk or designated, most urgent first (``at-risk``, App Home)."""
    code = core.countries.country(country).code if country else None
    async with core.db.transaction() as s:
        rows, total = await registry_rows.watched_factories(s, code, limit)
    factories = []
    for r in rows:
        consecutive = core.countries.country(r.country).rules.consecutive
        label = policy.label_for(policy.State(r.state), r.streak, consecutive)
        factories.append(WatchedFactory(r.id, r.name, r.country, r.state, label))
    return WatchList(code, tuple(factories), total)


async def recent_submissions(core: Core, user_id: str, limit: int = 10) -> list[Submission]:
    async with core.db.transaction() as s:
        rows = await history.recent_submissions(s, user_id, limit)
    return [
        Submission(r.factory_id, r.name, r.assessed_on, len(r.nc_issues), r.submitted_at)
        for r in rows
    ]


@lru_cache(maxsize=8192)
def _issue(catalogue: Catalogue, code: str) -> IssueLine:
    """An issue's line, made once per catalogue (a status shows each factory's issues)."""
    return IssueLine(code, catalogue.name(code), catalogue.name(code, "vi"))


def _line(row: Any, verdict: policy.Verdict, country: Country) -> AssessmentLine:
    """An assessment's line (``row``: an ``Assessment``, or a row of ``store.snapshot``)."""
    catalogue = country.catalogue
    issues = tuple(_issue(catalogue, code) for code in row.nc_issues)
    assert row.id is not None
    return AssessmentLine(
        id=row.id,
        assessed_on=row.assessed_on,
        kind=row.kind,
        nc_issues=issues,
        counted=verdict.counted,
        fails=verdict.fails,
        not_counted=verdict.not_counted.value if verdict.not_counted else None,
        submitted_by=row.submitted_by,
        submitted_at=row.submitted_at,
        source=row.source,
        amended=row.amended_at is not None,
    )
