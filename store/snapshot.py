"""What ``/pnc status`` reads about one factory, and the role at the door: hot reads
(``store.hot``), all of a factory's rows in one read transaction.

Rows come back as ``HotRow``s with the columns' names, holding what the ORM would give (aware
UTC datetimes, dates, parsed JSON lists).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import String, bindparam, select

from store.hot import Bundle, HotPath, Query
from store.models import (
    ASSESSMENTS,
    BUYERS,
    EVENTS,
    FACTORIES,
    PROGRESS_REPORTS,
    READMISSIONS,
    ROLES,
    SUBSCRIPTIONS,
    VISITS,
)
from store.referrals import referral_log_of
from store.ztp import open_cases_of

_FACTORY = bindparam("factory", type_=String)
_USER = bindparam("user", type_=String)

_a, _r, _e, _b, _s, _v, _p = (
    ASSESSMENTS,
    READMISSIONS,
    EVENTS,
    BUYERS,
    SUBSCRIPTIONS,
    VISITS,
    PROGRESS_REPORTS,
)

ROLE = Query("role", select(ROLES.c.role).where(ROLES.c.user_id == _USER))
FACTORY = Query(
    "factory",
    select(
        FACTORIES.c.id,
        FACTORIES.c.name,
        FACTORIES.c.country,
        FACTORIES.c.language,
        FACTORIES.c.cycle_end,
    ).where(FACTORIES.c.id == _FACTORY),
)
LIVE_ASSESSMENTS = Query(
    "assessment",
    select(
        _a.c.id,
        _a.c.assessed_on,
        _a.c.kind,
        _a.c.nc_issues,
        _a.c.submitted_by,
        _a.c.submitted_at,
        _a.c.source,
        _a.c.amended_at,
        _a.c.report_on,
    )
    .where(_a.c.factory_id == _FACTORY, _a.c.withdrawn_at.is_(None))
    .order_by(_a.c.assessed_on, _a.c.id),
)
READMISSION_ROWS = Query(
    "readmission",
    select(
        _r.c.id,
        _r.c.applied_on,
        _r.c.applied_by,
        _r.c.evidence,
        _r.c.inspectorate_reports,
        _r.c.unannounced_on,
        _r.c.decided_on,
        _r.c.decision,
        _r.c.decision_note,
    )
    .where(_r.c.factory_id == _FACTORY)
    .order_by(_r.c.id),
)
EVENT_ROWS = Query(
    "event",
    select(
        _e.c.id,
        _e.c.kind,
        _e.c.occurred_on,
        _e.c.key,
        _e.c.notice,
        _e.c.unsupported_at,
        _e.c.created_at,
        _e.c.held_because,
        _e.c.reviewed_at,
        _e.c.reviewed_by,
        _e.c.review_note,
    )
    .where(_e.c.factory_id == _FACTORY)
    .order_by(_e.c.id),
)
SUBSCRIBERS = Query(
    "subscriber",
    select(_b.c.id, _b.c.name)
    .join(_s, _s.c.buyer_id == _b.c.id)
    .where(_s.c.factory_id == _FACTORY)
    .order_by(_b.c.id),
)
REFERRALS = Query("referral", referral_log_of(_FACTORY))
VISIT_ROWS = Query(
    "visit",
    select(_v.c.visited_on, _v.c.recorded_by, _v.c.report, _v.c.report_added_at)
    .where(_v.c.factory_id == _FACTORY)
    .order_by(_v.c.visited_on, _v.c.id),
)
OPEN_CASES = Query("ztp_case", open_cases_of(_FACTORY))
REPORTS = Query(
    "progress_report",
    select(_p.c.id, _p.c.factory_id, _p.c.assessment_id, _p.c.reported_on, _p.c.fixed)
    .where(_p.c.factory_id == _FACTORY)
    .order_by(_p.c.reported_on, _p.c.id),
)

STATUS = Bundle(
    "status",
    (
        FACTORY,
        LIVE_ASSESSMENTS,
        READMISSION_ROWS,
        EVENT_ROWS,
        SUBSCRIBERS,
        REFERRALS,
        VISIT_ROWS,
        OPEN_CASES,
        REPORTS,
    ),
)


@dataclass(frozen=True, slots=True)
class FactoryRows:
    """Everything ``status`` shows about one factory, read in one transaction."""

    factory: Any
    assessments: list[Any]
    readmissions: list[Any]
    events: list[Any]
    subscribers: list[Any]
    referrals: list[Any]
    visits: list[Any]
    open_cases: list[Any]
    reports: list[Any]


async def factory_rows(reads: HotPath, factory_id: str) -> FactoryRows | None:
    """A factory's rows (None: no such factory)."""
    values = {"factory": factory_id}
    found = await reads.bundle(STATUS, values)
    if not found[0]:
        return None
    return FactoryRows(found[0][0], *found[1:])


async def granted_role(reads: HotPath, user_id: str) -> str | None:
    """The role granted to someone (the ``role`` table; None if none)."""
    (rows,) = await reads.run([(ROLE, {"user": user_id})])
    return rows[0].role if rows else None
