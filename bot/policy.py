"""The PNC framework as a pure function (SPEC §2).

``evaluate`` takes a country's rules and one factory's whole history — its assessments and its
readmission applications, in any order — and says what that history means: the state and its
label, the current streak, whether each assessment counted, the events the history gives rise to
(each with a stable key, so it is notified once however often the history is re-evaluated) and
the basis of the current designation.

Nothing here does I/O, and nothing about status is stored as truth: the store keeps the history,
and asks this module what it means every time the history changes.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from typing import NamedTuple


class State(StrEnum):
    NOT_COVERED = "not_covered"
    NOT_AT_RISK = "not_at_risk"
    AT_RISK = "at_risk"
    PNC = "pnc"
    READMISSION_REVIEW = "readmission_review"


class EventKind(StrEnum):
    AT_RISK_WARNING = "at_risk_warning"
    PROCESS_STOPPED = "process_stopped"
    PNC_DESIGNATED = "pnc_designated"
    READMISSION_APPLIED = "readmission_applied"
    UNANNOUNCED_SCHEDULED = "unannounced_scheduled"
    READMISSION_APPROVED = "readmission_approved"
    READMISSION_REJECTED = "readmission_rejected"


class AssessmentKind(StrEnum):
    """What an assessment was (``assessment.kind``). Only the kinds a country counts
    (``Rules.counted_kinds``: by default the regular and unannounced assessments, those subject
    to public reporting) move the streak; the others are recorded and shown."""

    REGULAR = "regular"
    UNANNOUNCED = "unannounced"
    #: an advisory visit
    ADVISORY = "advisory"
    #: a visit verifying a progress report
    VERIFICATION = "verification"


#: the assessments subject to public reporting (FAQ), counted unless a country says otherwise
COUNTED_KINDS = frozenset({AssessmentKind.REGULAR.value, AssessmentKind.UNANNOUNCED.value})


class NotCounted(StrEnum):
    """Why an assessment did not move the streak."""

    NOT_COVERED = "not_covered"
    BEFORE_PUBLIC_REPORTING = "before_public_reporting"
    DESIGNATED = "designated"
    #: of a kind the country does not count (an advisory or verification visit)
    KIND = "kind_not_counted"


DESIGNATED_STATES = frozenset({State.PNC, State.READMISSION_REVIEW})


@dataclass(frozen=True)
class Rules:
    """One country's settings of the framework (defaults are the framework's own)."""

    pnc_enabled: bool = True
    public_reporting_since: date = date(2017, 7, 1)
    threshold: int = 4
    consecutive: int = 3
    #: the assessment kinds that count (``AssessmentKind`` values)
    counted_kinds: frozenset[str] = COUNTED_KINDS

    def __post_init__(self) -> None:
        if self.threshold < 1:
            raise ValueError("threshold must be at least 1")
        if self.consecutive < 1:
            raise ValueError("consecutive must be at least 1")
        object.__setattr__(self, "counted_kinds", frozenset(self.counted_kinds))
        unknown = sorted(self.counted_kinds - set(AssessmentKind))
        if unknown:
            raise ValueError(f"unknown assessment kinds: {', '.join(unknown)}")
        if not self.counted_kinds:
            raise ValueError("at least one assessment kind must count")


class AssessmentRecord(NamedTuple):
    # NamedTuples, not dataclasses, for the records an import creates by the hundred thousand
    id: int
    assessed_on: date
    nc_issues: frozenset[str] = frozenset()
    kind: str = "regular"

    @property
    def nc_count(self) -> int:
        return len(self.nc_issues)


@dataclass(frozen=True)
class ReadmissionRecord:
    """A readmission application; ``approved`` is None while the decision is open."""

    id: int
    applied_on: date
    unannounced_on: date | None = None
    decided_on: date | None = None
    approved: bool | None = None


class Verdict(NamedTuple):
    """What one assessment meant: ``fails`` compares its count with the threshold, ``counted``
    says whether it moved the streak (and ``not_counted`` why not)."""

    assessment: AssessmentRecord
    counted: bool
    fails: bool
    not_counted: NotCounted | None = None

    @property
    def nc_count(self) -> int:
        return self.assessment.nc_count


class Event(NamedTuple):
    """Something the history gives rise to, which people are told about once.

    ``key`` is stable: the same history always yields the same keys, and a key names the facts
    the notice stated (for a warning, its "k of n"), so a changed history that no longer supports
    a notified event shows up as a key that is no longer derived.
    """

    kind: EventKind
    key: str
    on: date
    assessment_id: int | None = None
    application_id: int | None = None
    k: int | None = None
    basis: tuple[int, ...] = ()


@dataclass(frozen=True)
class Evaluation:
    state: State
    streak: int
    threshold: int
    consecutive: int
    verdicts: tuple[Verdict, ...]
    events: tuple[Event, ...]
    #: the assessments that were the basis of the current designation (empty unless designated)
    basis: tuple[AssessmentRecord, ...] = ()
    #: the open readmission application, when under review
    open_application: ReadmissionRecord | None = None
    #: applications made while the factory was not designated (kept, but they changed nothing)
    ignored_applications: tuple[int, ...] = field(default=())

    @property
    def label(self) -> str:
        return label_for(self.state, self.streak, self.consecutive)

    @property
    def designated(self) -> bool:
        return self.state in DESIGNATED_STATES


def label_for(state: State, streak: int, consecutive: int) -> str:
    """The exact label SPEC §2 gives each state."""
    match state:
        case State.NOT_COVERED:
            return "Not covered by the PNC framework"
        case State.NOT_AT_RISK:
            return "Not at risk"
        case State.AT_RISK:
            return f"At risk ({streak} of {consecutive})"
        case State.PNC:
            return "Persistently non-compliant"
        case State.READMISSION_REVIEW:
            return "Readmission under review"
    raise ValueError(state)  # pragma: no cover


def event_key(
    factory_id: str,
    kind: EventKind,
    *,
    assessment_id: int | None = None,
    application_id: int | None = None,
    k: int | None = None,
) -> str:
    parts = [factory_id, kind.value]
    if assessment_id is not None:
        parts.append(f"a{assessment_id}")
    if application_id is not None:
        parts.append(f"r{application_id}")
    if k is not None:
        parts.append(f"k{k}")
    return "/".join(parts)


# what a timeline entry is
_ASSESSMENT, _APPLICATION, _DECISION = 0, 1, 2


def evaluate(
    rules: Rules,
    factory_id: str,
    assessments: Iterable[AssessmentRecord],
    readmissions: Iterable[ReadmissionRecord] = (),
    *,
    verdicts: bool = True,
) -> Evaluation:
    """What a factory's history means under ``rules``.

    Assessments are taken in date order (ties by id), whatever order they arrive in; one of a
    kind the rules do not count is kept among the verdicts (``NotCounted.KIND``) and is
    otherwise as if it were not there: it moves no streak and gives rise to no event. With
    ``verdicts=False`` the per-assessment verdicts are left out (bulk re-evaluation needs only
    the state, the streak and the events).
    """
    history = sorted(assessments, key=lambda a: (a.assessed_on, a.id))
    applications = list(readmissions)

    if not rules.pnc_enabled:
        uncounted = tuple(
            Verdict(
                a,
                False,
                a.nc_count >= rules.threshold,
                NotCounted.NOT_COVERED if a.kind in rules.counted_kinds else NotCounted.KIND,
            )
            for a in history
        )
        return Evaluation(
            State.NOT_COVERED,
            0,
            rules.threshold,
            rules.consecutive,
            uncounted if verdicts else (),
            (),
            ignored_applications=tuple(
                r.id for r in sorted(applications, key=lambda r: (r.applied_on, r.id))
            ),
        )

    # (day, group, id, step): on one day the assessments come first, then each application's
    # milestones in the order the applications were made, its decision after its application
    timeline: list[tuple[date, int, int, int, AssessmentRecord | ReadmissionRecord]] = [
        (a.assessed_on, 0, a.id, _ASSESSMENT, a) for a in history
    ]
    if applications:
        for r in applications:
            timeline.append((r.applied_on, 1, r.id, _APPLICATION, r))
            if r.decided_on is not None:
                timeline.append((max(r.decided_on, r.applied_on), 1, r.id, _DECISION, r))
        timeline.sort(key=lambda item: item[:4])

    state = State.NOT_AT_RISK
    run: list[AssessmentRecord] = []  # the current streak of failing assessments
    basis: tuple[AssessmentRecord, ...] = ()
    found: list[Verdict] = []
    events: list[Event] = []
    accepted: set[int] = set()  # applications made while designated
    ignored: list[int] = []
    open_application: ReadmissionRecord | None = None

    def emit(
        kind: EventKind,
        on: date,
        *,
        assessment_id: int | None = None,
        application_id: int | None = None,
        k: int | None = None,
        basis: tuple[int, ...] = (),
    ) -> None:
        # a warning's key names its "k of n": the notice stated it, so a history that changes
        # it must show up as a different event
        key_k = k if kind is EventKind.AT_RISK_WARNING else None
        key = event_key(
            factory_id, kind, assessment_id=assessment_id, application_id=application_id, k=key_k
        )
        events.append(Event(kind, key, on, assessment_id, application_id, k, basis))

    for on, _, _, what, item in timeline:
        if what == _ASSESSMENT:
            assert isinstance(item, AssessmentRecord)
            fails = item.nc_count >= rules.threshold
            if item.kind not in rules.counted_kinds:
                # never counted, whenever it took place: the reason that is its own
                why: NotCounted | None = NotCounted.KIND
            elif on < rules.public_reporting_since:
                why = NotCounted.BEFORE_PUBLIC_REPORTING
            elif state in DESIGNATED_STATES:
                # shown to the reviewer (e.g. an unannounced verification visit), streak unmoved
                why = NotCounted.DESIGNATED
            else:
                why = None
            if verdicts:
                found.append(Verdict(item, why is None, fails, why))
            if why is not None:
                continue
            if fails:
                run.append(item)
                if len(run) >= rules.consecutive:
                    state = State.PNC
                    basis = tuple(run[-rules.consecutive :])
                    emit(
                        EventKind.PNC_DESIGNATED,
                        on,
                        assessment_id=item.id,
                        basis=tuple(a.id for a in basis),
                    )
                else:
                    state = State.AT_RISK
                    emit(EventKind.AT_RISK_WARNING, on, assessment_id=item.id, k=len(run))
            else:
                if run:
                    emit(EventKind.PROCESS_STOPPED, on, assessment_id=item.id, k=len(run))
                run = []
                state = State.NOT_AT_RISK
            continue

        assert isinstance(item, ReadmissionRecord)
        if what == _APPLICATION:
            if state != State.PNC:
                ignored.append(item.id)
                continue
            accepted.add(item.id)
            state = State.READMISSION_REVIEW
            open_application = item
            emit(EventKind.READMISSION_APPLIED, on, application_id=item.id)
            if item.unannounced_on is not None:
                emit(EventKind.UNANNOUNCED_SCHEDULED, item.unannounced_on, application_id=item.id)
        elif item.id in accepted:  # a decision on an application that was accepted
            open_application = None
            if item.approved:
                state = State.NOT_AT_RISK
                run = []
                basis = ()
                emit(EventKind.READMISSION_APPROVED, on, application_id=item.id)
            else:
                state = State.PNC
                emit(EventKind.READMISSION_REJECTED, on, application_id=item.id)

    streak = rules.consecutive if state in DESIGNATED_STATES else len(run)
    return Evaluation(
        state,
        streak,
        rules.threshold,
        rules.consecutive,
        tuple(found),
        tuple(events),
        basis=basis,
        open_application=open_application,
        ignored_applications=tuple(ignored),
    )


@dataclass(frozen=True)
class EventChanges:
    """How the derived events differ from the ones already recorded."""

    new: tuple[Event, ...]
    #: keys recorded before that the history no longer supports
    unsupported: tuple[str, ...]
    #: keys recorded before, marked unsupported, that the history supports again
    restored: tuple[str, ...]


def diff_events(derived: Sequence[Event], recorded: dict[str, bool]) -> EventChanges:
    """Compare derived events with recorded ones (``recorded`` maps key → still supported)."""
    derived_keys = {e.key for e in derived}
    new = tuple(e for e in derived if e.key not in recorded)
    unsupported = tuple(k for k, ok in recorded.items() if ok and k not in derived_keys)
    restored = tuple(k for k, ok in recorded.items() if not ok and k in derived_keys)
    return EventChanges(new, unsupported, restored)
