"""Progress Report One and the remediation of publicly reported issues, as a pure function of
a factory's assessments and progress reports (never stored as truth).

After a counted assessment that found publicly reported non-compliance, the factory publishes
Progress Report One within 30 days of the assessment report; Better Work verifies the issues
the factory reports fixed. ``track`` follows the issues of the factory's **latest counted
assessment** (later counted assessments replace it; its Progress Report One is then moot):

- **open**: found, and neither reported fixed nor verified yet;
- **reported fixed**: the factory's progress report on this assessment says it is fixed;
- **verified**: a later visit no longer finds it — a verification visit (kind
  ``verification``, not counted) for an issue reported fixed, since Better Work verifies only
  those; a later full assessment that was not counted (one made while the factory was
  designated, or of a kind the country does not count) for any issue;
- **still open**: a later verification visit or full assessment still finds it.

Progress reports and visits apply in date order (a report before a visit on the same day); an
issue found again after it was verified is still open. The issues of the **previous** counted
assessment that the latest one no longer finds are shown beside it as verified by it.

Example: the assessment of 2026-01-10 (counted) finds CO-01, OS-01 and WT-01; Progress Report
One (2026-02-05) reports CO-01 and OS-01 fixed; a verification visit on 2026-03-01 finds
OS-01. Then CO-01 is verified, OS-01 still open, WT-01 open: "2 of 3 issues reported fixed, 1
verified". A counted assessment on 2027-01-12 finding OS-01 and FA-01 is tracked next: OS-01
and FA-01 are open, and CO-01 and WT-01, no longer found, are shown verified by it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Any, NamedTuple

from bot.policy import AssessmentKind, Verdict

#: Progress Report One is due this many days after the assessment report
PROGRESS_REPORT_DAYS = 30
#: the factory is reminded this many days before it is due, unless its country says otherwise
REMINDER_DAYS = 7
#: uncounted assessments that check every issue (a verification visit checks those reported)
FULL_KINDS = frozenset({AssessmentKind.REGULAR.value, AssessmentKind.UNANNOUNCED.value})


class IssueState(StrEnum):
    OPEN = "open"
    REPORTED_FIXED = "reported_fixed"
    VERIFIED = "verified"
    STILL_OPEN = "still_open"


class ReportState(StrEnum):
    """Where Progress Report One of the tracked assessment stands."""

    #: recorded (``/pnc progress``)
    RECEIVED = "received"
    #: not yet recorded, due today or later
    DUE = "due"
    #: not recorded, and its due day has passed
    OVERDUE = "overdue"


class Visit(NamedTuple):
    """An assessment as remediation reads it: the policy's verdict and the report's date."""

    id: int
    assessed_on: date
    nc_issues: frozenset[str]
    kind: str = AssessmentKind.REGULAR.value
    #: whether the policy counted it
    counted: bool = True
    #: the date of its assessment report (None: the assessment's own date)
    report_on: date | None = None

    @property
    def report_date(self) -> date:
        return self.report_on or self.assessed_on

    @property
    def due_on(self) -> date:
        """The day its Progress Report One is due."""
        return self.report_date + timedelta(days=PROGRESS_REPORT_DAYS)


class Report(NamedTuple):
    """A progress report: what the factory reported fixed of an assessment's issues."""

    assessment_id: int
    reported_on: date
    fixed: frozenset[str]
    id: int = 0


@dataclass(frozen=True)
class IssueProgress:
    code: str
    state: IssueState
    #: the assessment that found it
    assessment_id: int
    name: str = ""
    #: the day the factory reported it fixed (None: it did not)
    reported_on: date | None = None
    #: the day of the visit or assessment that last checked it, and that one's kind
    checked_on: date | None = None
    checked_kind: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "name": self.name,
            "state": self.state.value,
            "reported_on": _iso(self.reported_on),
            "checked_on": _iso(self.checked_on),
            "checked_kind": self.checked_kind,
        }


@dataclass(frozen=True)
class Remediation:
    """The issues of the latest counted assessment (``tracked``), issue by issue, and its
    Progress Report One; those of the ``previous`` one it no longer finds (``resolved``)."""

    tracked: Visit | None = None
    issues: tuple[IssueProgress, ...] = ()
    report: Report | None = None
    previous: Visit | None = None
    resolved: tuple[IssueProgress, ...] = ()
    #: Progress Report One's state on the day ``track`` was asked (None: nothing to report)
    report_state: ReportState | None = None
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def due_on(self) -> date | None:
        """The day Progress Report One is (or was) due; None when there is nothing to fix."""
        return self.tracked.due_on if self.tracked and self.tracked.nc_issues else None

    def to_json(self) -> dict[str, Any]:
        t, p = self.tracked, self.previous
        return {
            "assessment": None if t is None else _visit_json(t),
            "progress_report": {
                "due_on": _iso(self.due_on),
                "state": self.report_state.value if self.report_state else None,
                "reported_on": _iso(self.report.reported_on) if self.report else None,
                "fixed": sorted(self.report.fixed) if self.report else [],
            },
            "issues": [i.to_json() for i in self.issues],
            "previous": None
            if p is None
            else {**_visit_json(p), "verified": [i.to_json() for i in self.resolved]},
            "counts": dict(self.counts),
        }


def _visit_json(v: Visit) -> dict[str, Any]:
    return {
        "id": v.id,
        "assessed_on": v.assessed_on.isoformat(),
        "report_on": v.report_date.isoformat(),
        "kind": v.kind,
    }


def _iso(day: date | None) -> str | None:
    return day.isoformat() if day else None


def visits(verdicts: Iterable[Verdict], report_dates: Mapping[int, date | None]) -> list[Visit]:
    """The policy's verdicts as remediation reads them, with their report dates by id."""
    return [
        Visit(
            v.assessment.id,
            v.assessment.assessed_on,
            frozenset(v.assessment.nc_issues),
            v.assessment.kind,
            v.counted,
            report_dates.get(v.assessment.id),
        )
        for v in verdicts
    ]


def tracked(history: Iterable[Visit]) -> Visit | None:
    """The latest counted assessment, whose issues are tracked (None: none counted)."""
    counted = [v for v in history if v.counted]
    return max(counted, key=lambda v: (v.assessed_on, v.id)) if counted else None


def answered(history: Iterable[Visit], on: date) -> Visit | None:
    """The assessment a progress report of ``on`` answers: the latest counted assessment with
    publicly reported non-compliance on or before that day (None if there is none)."""
    return tracked(v for v in history if v.nc_issues and v.assessed_on <= on)


def due_of(verdicts: Iterable[Verdict], assessment_id: int, report_on: date | None) -> date | None:
    """The day the Progress Report One of this assessment is due, if it is the one tracked
    (the latest counted) and found publicly reported non-compliance; else None."""
    last = tracked(visits(verdicts, {assessment_id: report_on}))
    return last.due_on if last and last.id == assessment_id and last.nc_issues else None


def track(
    history: Iterable[Visit],
    reports: Iterable[Report],
    *,
    today: date | None = None,
    names: Mapping[str, str] | None = None,
) -> Remediation:
    """The remediation of the latest counted assessment's issues (module docstring).
    ``today`` sets ``report_state``; ``names`` the issues' names (code → name)."""
    ordered = sorted(history, key=lambda v: (v.assessed_on, v.id))
    counted = [v for v in ordered if v.counted]
    if not counted:
        return Remediation()
    last = counted[-1]
    named = names or {}
    mine = sorted((r for r in reports if r.assessment_id == last.id), key=_report_order)
    states = {code: _Issue() for code in sorted(last.nc_issues)}
    timeline: list[tuple[date, int, int, Report | Visit]] = [
        (r.reported_on, 0, r.id, r) for r in mine
    ]
    timeline += [
        (v.assessed_on, 1, v.id, v)
        for v in ordered
        if v.assessed_on > last.assessed_on and not v.counted and _checks(v)
    ]
    for _, _, _, item in sorted(timeline, key=lambda t: t[:3]):
        for code, issue in states.items():
            if isinstance(item, Report):
                issue.reported(code, item)
            else:
                issue.checked(code, item)
    issues = tuple(
        IssueProgress(
            code, s.state, last.id, named.get(code, code), s.reported_on, s.checked_on, s.kind
        )
        for code, s in states.items()
    )
    previous = counted[-2] if len(counted) > 1 else None
    resolved: tuple[IssueProgress, ...] = ()
    if previous is not None:
        fixed_then = _reported(reports, previous.id)
        resolved = tuple(
            IssueProgress(
                code,
                IssueState.VERIFIED,
                previous.id,
                named.get(code, code),
                fixed_then.get(code),
                last.assessed_on,
                last.kind,
            )
            for code in sorted(previous.nc_issues - last.nc_issues)
        )
    report = mine[0] if mine else None
    return Remediation(
        last,
        issues,
        report,
        previous,
        resolved,
        _report_state(last, report, today),
        _counts(issues),
    )


def _report_order(r: Report) -> tuple[date, int]:
    return (r.reported_on, r.id)


def _reported(reports: Iterable[Report], assessment_id: int) -> dict[str, date]:
    """When each issue of an assessment was first reported fixed."""
    first: dict[str, date] = {}
    for r in sorted((r for r in reports if r.assessment_id == assessment_id), key=_report_order):
        for code in r.fixed:
            first.setdefault(code, r.reported_on)
    return first


def _checks(v: Visit) -> bool:
    """Whether an uncounted assessment checks issues (an advisory visit does not)."""
    return v.kind == AssessmentKind.VERIFICATION or v.kind in FULL_KINDS


@dataclass
class _Issue:
    """One issue's state as the progress reports and the visits after its assessment go by."""

    state: IssueState = IssueState.OPEN
    reported_on: date | None = None
    checked_on: date | None = None
    kind: str | None = None

    def reported(self, code: str, report: Report) -> None:
        if code not in report.fixed:
            return
        self.reported_on = self.reported_on or report.reported_on
        if self.state in (IssueState.OPEN, IssueState.STILL_OPEN):
            self.state = IssueState.REPORTED_FIXED

    def checked(self, code: str, visit: Visit) -> None:
        if code in visit.nc_issues:
            self.state = IssueState.STILL_OPEN
        elif visit.kind in FULL_KINDS or self.state is IssueState.REPORTED_FIXED:
            self.state = IssueState.VERIFIED
        else:  # a verification visit checks only the issues reported fixed
            return
        self.checked_on, self.kind = visit.assessed_on, visit.kind


def _report_state(last: Visit, report: Report | None, today: date | None) -> ReportState | None:
    if not last.nc_issues:
        return None
    if report is not None:
        return ReportState.RECEIVED
    if today is None:
        return None
    return ReportState.DUE if today <= last.due_on else ReportState.OVERDUE


def _counts(issues: Iterable[IssueProgress]) -> dict[str, int]:
    listed = list(issues)
    counts = {state.value: 0 for state in IssueState}
    for i in listed:
        counts[i.state.value] += 1
    return {
        "issues": len(listed),
        "reported": sum(1 for i in listed if i.reported_on is not None),
        **counts,
    }


# --- Progress Report One's reminders ---------------------------------------------------------


class Schedule(NamedTuple):
    """When the factory is reminded of its Progress Report One, and staff told it is late."""

    assessment_id: int
    due_on: date
    #: the factory's reminder, ``days`` before the due day
    remind_on: date
    #: the staff alert, the day after the due day
    overdue_on: date


def schedule(r: Remediation, days: int = REMINDER_DAYS) -> Schedule | None:
    """The reminders of the tracked assessment's Progress Report One; None when it has no
    issue or the report was recorded."""
    if r.tracked is None or r.report is not None or r.due_on is None:
        return None
    due = r.due_on
    return Schedule(r.tracked.id, due, due - timedelta(days=days), due + timedelta(days=1))


def wanted(
    plan: Schedule,
    moment: Callable[[date], datetime],
    now: datetime,
    today: date,
    *,
    live: bool,
) -> tuple[datetime | None, datetime | None]:
    """The moments (``moment`` makes a day one) of the reminder and of the overdue alert to
    schedule now, or None for each not wanted: only what is still to come — but when a person
    changed the history (``live``), a reminder whose day has passed goes out at once while the
    report is not yet overdue (an assessment recorded late). A historic import or a change of
    rules schedules only what is still to come, so long-past reports remind nobody."""
    remind, overdue = moment(plan.remind_on), moment(plan.overdue_on)
    remind_ok = remind > now or (live and today <= plan.due_on)
    return (remind if remind_ok else None, overdue if overdue > now else None)
