"""The Labour Inspectorate's visits to a designated factory, and the improvement reports that
answer them (FAQ: to be readmitted, a factory submits copies of its improvement reports in
response to visits by the Inspectorate).

Staff record each visit they learn of; each report added to the factory's readmission
application answers the oldest visit since the designation still without one; a readmission is
approved only once every such visit has its report (``readmission.decide``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from bot import policy, validation
from bot.errors import AlreadyExists
from bot.roles import Actor, Permission, RoleLevel
from bot.usecases import access, registry
from bot.usecases.core import Core
from bot.usecases.read_models import VisitLine
from store import history, visits
from store.db import Session
from store.models import Factory, InspectorateVisit

#: recording a visit is a fact from the field, like a stakeholder meeting held: assessors
VISIT = Permission("inspectorate visit", RoleLevel.ASSESSOR)


@dataclass(frozen=True)
class VisitRecorded:
    """A visit recorded, and what it asks of the factory."""

    factory_id: str
    factory_name: str
    visited_on: date
    #: the date of the current designation, if the factory is designated
    designated_on: date | None
    #: whether the factory's readmission waits for an improvement report answering it
    asks_report: bool
    #: whether the factory has a readmission application under review
    applying: bool


def designated_on(evaluation: policy.Evaluation) -> date | None:
    """The day of the current designation: its last basis assessment (None if not
    designated)."""
    if not evaluation.designated or not evaluation.basis:
        return None
    return evaluation.basis[-1].assessed_on


async def evaluation(core: Core, s: Session, factory: Factory) -> policy.Evaluation:
    """What the factory's history means now."""
    h = await history.load_histories(s, [factory.id], {factory.id: factory})
    return policy.evaluate(
        core.countries.country(factory.country).rules,
        factory.id,
        h.assessments.get(factory.id, []),
        h.readmissions.get(factory.id, []),
        verdicts=False,
    )


async def record_visit(core: Core, actor: Actor, factory_id: str, day: str) -> VisitRecorded:
    """Record a visit of the Labour Inspectorate to a factory (not in the future; one a day)."""
    await access.require(core, actor, VISIT)
    fid = validation.identifier(factory_id, "factory id")
    visited = validation.past_date(day, core.today(), "visit date")
    async with core.db.transaction(write=True) as s:
        factory = await registry.existing_factory(s, fid, lock=True)
        if await visits.visit_on(s, fid, visited) is not None:
            raise AlreadyExists(
                f"A visit of the Labour Inspectorate to `{fid}` on {visited.isoformat()} is "
                "already recorded.",
                f"`status {fid}` lists the visits; record another day's visit with its date.",
            )
        state = await evaluation(core, s, factory)
        since = designated_on(state)
        visit = await visits.add_visit(
            s,
            InspectorateVisit(
                factory_id=fid,
                visited_on=visited,
                recorded_by=actor.user_id,
                recorded_at=core.clock(),
            ),
        )
        asks = since is not None and visited >= since
        core.audit(
            s,
            actor,
            "inspectorate.visit",
            fid,
            {"visit": visit.id, "visited_on": visited.isoformat(), "asks_report": asks},
        )
    return VisitRecorded(
        fid,
        factory.name,
        visited,
        since,
        asks,
        state.state is policy.State.READMISSION_REVIEW,
    )


async def answer_visits(
    core: Core, s: Session, actor: Actor, factory_id: str, since: date, links: Sequence[str]
) -> list[InspectorateVisit]:
    """Each report link answers the oldest visit from ``since`` on still without a report, in
    the order given; returns the visits answered (fewer than the links if fewer wait)."""
    waiting = await visits.unanswered(s, factory_id, since)
    answered = []
    for visit, link in zip(waiting, links, strict=False):
        visit.report, visit.report_added_by = link, actor.user_id
        visit.report_added_at = core.clock()
        s.add(visit)
        answered.append(visit)
    return answered


async def unanswered(s: Session, factory_id: str, since: date | None) -> list[date]:
    """The days of the visits from ``since`` on without a report (none if not designated)."""
    if since is None:
        return []
    return [v.visited_on for v in await visits.unanswered(s, factory_id, since)]


async def review_facts(core: Core, s: Session, factory: Factory | None) -> dict[str, Any]:
    """What the readmission review reminder says of the visits since the designation: each
    visit's day and its report (None while it has none)."""
    if factory is None:
        return {"visits": []}
    since = designated_on(await evaluation(core, s, factory))
    found = await visits.visits(s, factory.id)
    return {
        "visits": [
            {"visited_on": v.visited_on.isoformat(), "report": v.report}
            for v in found
            if since is not None and v.visited_on >= since
        ]
    }


def visit_lines(rows: Sequence[InspectorateVisit], since: date | None) -> tuple[VisitLine, ...]:
    """Visits as ``status`` and ``history`` show them (``since``: the day of the current
    designation, from which each visit asks for a report)."""
    return tuple(
        VisitLine(
            v.visited_on,
            v.recorded_by,
            v.report,
            v.report_added_at,
            since is not None and v.visited_on >= since,
        )
        for v in rows
    )
