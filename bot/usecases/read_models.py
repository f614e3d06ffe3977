"""What the read use cases show: plain data for the CLI, Slack and JSON alike."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, tzinfo
from typing import Any

from bot.chart import Chart, of_assessments
from bot.policy import DESIGNATED_STATES, State
from bot.remediation import Remediation
from bot.vocabulary import NoticeMode
from bot.zero_tolerance import CaseLine


@dataclass(frozen=True)
class IssueLine:
    code: str
    name: str
    name_vi: str | None = None


@dataclass(frozen=True)
class AssessmentLine:
    id: int
    assessed_on: date
    kind: str
    nc_issues: tuple[IssueLine, ...]
    counted: bool
    fails: bool
    not_counted: str | None
    submitted_by: str
    submitted_at: datetime
    source: str
    amended: bool = False
    withdrawn_reason: str | None = None

    @property
    def nc_count(self) -> int:
        return len(self.nc_issues)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "assessed_on": self.assessed_on.isoformat(),
            "kind": self.kind,
            "nc_count": self.nc_count,
            "nc_issues": [i.code for i in self.nc_issues],
            "counted": self.counted,
            "fails": self.fails,
            "not_counted": self.not_counted,
            "submitted_by": self.submitted_by,
            "source": self.source,
        }


@dataclass(frozen=True)
class EventLine:
    kind: str
    occurred_on: date
    key: str
    notice: str
    supported: bool
    created_at: datetime
    #: its number (``/pnc review`` knows a held event by it)
    id: int = 0
    #: why it was held for review (a ``HeldBecause`` value; None if not held, or not recorded)
    held_because: str | None = None
    #: a held event reviewed: released or dismissed, by whom, when, why
    reviewed_at: datetime | None = None
    reviewed_by: str | None = None
    review_note: str | None = None


@dataclass(frozen=True)
class BuyerLine:
    id: str
    name: str


@dataclass(frozen=True)
class ApplicationLine:
    id: int
    applied_on: date
    applied_by: str
    evidence: tuple[str, ...]
    inspectorate_reports: tuple[str, ...]
    unannounced_on: date | None
    decided_on: date | None
    decision: str | None
    note: str | None


@dataclass(frozen=True)
class ReferralLine:
    """A referral to the Labour Inspectorate, from its outbox row: when it was written and
    sent, to whom, for which designation, and how its delivery stands."""

    notice_id: int
    #: the day of the designation it is of (None if the event is gone)
    designated_on: date | None
    #: the designation is still supported by the history
    supported: bool
    #: an ``OutboxStatus``: held (no address yet), pending, sending, sent, dead, cancelled
    status: str
    #: the addresses it went (or goes) to; none while held
    addresses: tuple[str, ...]
    language: str
    attempts: int
    written_at: datetime
    sent_at: datetime | None
    last_error: str | None

    @classmethod
    def of(cls, row: Any, tz: tzinfo) -> ReferralLine:
        """The line of a row of ``store.referrals.referral_log``, its times in ``tz``."""
        return cls(
            row.id,
            row.designated_on,
            row.designated_on is not None and row.unsupported_at is None,
            row.status,
            tuple(dict.fromkeys([*row.delivered_to, *row.addresses])),
            row.language,
            row.attempts,
            row.created_at.astimezone(tz),
            row.sent_at.astimezone(tz) if row.sent_at else None,
            row.last_error,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "notice": self.notice_id,
            "designated_on": _iso(self.designated_on),
            "designation_supported": self.supported,
            "status": self.status,
            "delivered": self.status == "sent",
            "addresses": list(self.addresses),
            "language": self.language,
            "attempts": self.attempts,
            "written_at": self.written_at.isoformat(),
            "sent_at": _iso(self.sent_at),
            "last_error": self.last_error,
        }


@dataclass(frozen=True)
class VisitLine:
    """A visit of the Labour Inspectorate, and the improvement report answering it."""

    visited_on: date
    recorded_by: str
    report: str | None
    report_added_at: datetime | None
    #: the factory's readmission waits for its report (a visit since the designation)
    asks_report: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "visited_on": self.visited_on.isoformat(),
            "recorded_by": self.recorded_by,
            "report": self.report,
            "report_added_at": _iso(self.report_added_at),
            "asks_report": self.asks_report,
        }


def _iso(value: date | None) -> str | None:
    return value.isoformat() if value else None


@dataclass(frozen=True)
class StatusView:
    factory_id: str
    name: str
    country: str
    country_name: str
    language: str
    cycle_end: date | None
    state: str
    label: str
    streak: int
    threshold: int
    consecutive: int
    public_reporting_since: date
    designated: bool
    #: chronological
    assessments: tuple[AssessmentLine, ...]
    #: the assessments that were the basis of the current designation
    basis: tuple[AssessmentLine, ...] = ()
    subscribers: tuple[BuyerLine, ...] = ()
    applications: tuple[ApplicationLine, ...] = ()
    events: tuple[EventLine, ...] = field(default=())
    #: withdrawn assessments (kept for the record; only ``history`` loads them)
    withdrawn: tuple[AssessmentLine, ...] = ()
    #: the referrals to the Labour Inspectorate and its visits, oldest first
    referrals: tuple[ReferralLine, ...] = ()
    visits: tuple[VisitLine, ...] = ()
    #: the day of the current designation (None if not designated)
    designated_on: date | None = None
    #: its zero-tolerance cases not closed, oldest first (never counted towards PNC)
    ztp_cases: tuple[CaseLine, ...] = ()
    #: the issues of the latest counted assessment, issue by issue, and Progress Report One
    remediation: Remediation = field(default_factory=Remediation)

    @property
    def covered(self) -> bool:
        return self.state != "not_covered"

    @property
    def chart(self) -> Chart:
        """Its latest assessments against the threshold (``bot.chart``: the sparkline)."""
        return of_assessments(self.assessments, self.threshold)

    @property
    def held_for_review(self) -> tuple[EventLine, ...]:
        """Its events held for staff review (``/pnc review``)."""
        return tuple(e for e in self.events if e.notice == NoticeMode.HELD)

    def latest(self, n: int) -> list[AssessmentLine]:
        """The last ``n`` assessments, newest first."""
        return list(reversed(self.assessments[-n:]))

    def to_json(self) -> dict[str, Any]:
        return {
            "factory_id": self.factory_id,
            "name": self.name,
            "country": self.country,
            "state": self.state,
            "label": self.label,
            "streak": self.streak,
            "threshold": self.threshold,
            "consecutive": self.consecutive,
            "designated": self.designated,
            "cycle_end": self.cycle_end.isoformat() if self.cycle_end else None,
            "assessments": [a.to_json() for a in self.assessments],
            "designation_basis": [a.id for a in self.basis],
            "subscribers": [{"buyer_id": b.id, "name": b.name} for b in self.subscribers],
            "referrals": [r.to_json() for r in self.referrals],
            "inspectorate_visits": [v.to_json() for v in self.visits],
            "ztp_cases": [c.to_json() for c in self.ztp_cases],
            "remediation": self.remediation.to_json(),
            "open_application": next(
                (
                    {
                        "id": app.id,
                        "applied_on": app.applied_on.isoformat(),
                        "evidence": list(app.evidence),
                        "unannounced_on": app.unannounced_on.isoformat()
                        if app.unannounced_on
                        else None,
                    }
                    for app in self.applications
                    if app.decided_on is None
                ),
                None,
            ),
            "held_for_review": [
                {
                    "id": e.id,
                    "kind": e.kind,
                    "occurred_on": e.occurred_on.isoformat(),
                    "held_because": e.held_because,
                    "supported": e.supported,
                }
                for e in self.held_for_review
            ],
        }


@dataclass(frozen=True)
class WatchedFactory:
    factory_id: str
    name: str
    country: str
    state: str
    label: str


@dataclass(frozen=True)
class WatchList:
    """Factories at risk or designated, most urgent first."""

    country: str | None
    factories: tuple[WatchedFactory, ...]
    total: int

    @property
    def designated(self) -> list[WatchedFactory]:
        return [f for f in self.factories if f.state in DESIGNATED_STATES]

    @property
    def at_risk(self) -> list[WatchedFactory]:
        return [f for f in self.factories if f.state == State.AT_RISK]


@dataclass(frozen=True)
class Submission:
    factory_id: str
    factory_name: str
    assessed_on: date
    nc_count: int
    submitted_at: datetime


@dataclass(frozen=True)
class OutboxLine:
    id: int
    kind: str
    channel: str
    recipient: str
    factory_id: str | None
    status: str
    attempts: int
    next_attempt_at: datetime
    last_error: str | None


@dataclass(frozen=True)
class PausedChannel:
    name: str
    until: datetime
    reason: str | None


@dataclass(frozen=True)
class OutboxView:
    """Notices waiting, retrying and dead, and channels paused."""

    counts: dict[str, int]
    pending: tuple[OutboxLine, ...]
    retrying: tuple[OutboxLine, ...]
    dead: tuple[OutboxLine, ...]
    paused: tuple[PausedChannel, ...]

    def to_json(self) -> dict[str, Any]:
        def line(o: OutboxLine) -> dict[str, Any]:
            return {
                "id": o.id,
                "kind": o.kind,
                "channel": o.channel,
                "recipient": o.recipient,
                "factory_id": o.factory_id,
                "status": o.status,
                "attempts": o.attempts,
                "next_attempt_at": o.next_attempt_at.isoformat(),
                "last_error": o.last_error,
            }

        return {
            "counts": self.counts,
            "pending": [line(o) for o in self.pending],
            "retrying": [line(o) for o in self.retrying],
            "dead": [line(o) for o in self.dead],
            "paused": [
                {"channel": p.name, "until": p.until.isoformat(), "reason": p.reason}
                for p in self.paused
            ],
        }
