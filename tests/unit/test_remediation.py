"""Progress Report One and issue-by-issue remediation (``bot.remediation``), pure.

The property tests check ``track`` against a reference model written from issue #13 alone, as a
transition table over what happens to one issue after the assessment that found it, and share
no code with it.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.policy import AssessmentRecord, Rules, evaluate
from bot.remediation import (
    IssueState,
    Remediation,
    Report,
    ReportState,
    Visit,
    answered,
    due_of,
    schedule,
    track,
    tracked,
    wanted,
)

PROPERTY = settings(database=None)
CODES = ("CO-01", "OS-01", "WT-01", "FA-01", "CL-01")
DAY = date(2026, 1, 10)


def visit(
    id: int, day: date, codes: str = "", kind: str = "regular", counted: bool = True
) -> Visit:
    return Visit(id, day, frozenset(c for c in codes.split(",") if c), kind, counted)


def at_nine(day: date) -> datetime:
    return datetime.combine(day, time(9), tzinfo=UTC)


# --- examples ----------------------------------------------------------------------------------


def test_the_example_of_the_module() -> None:
    history = [
        visit(1, DAY, "CO-01,OS-01,WT-01"),
        visit(2, date(2026, 3, 1), "OS-01", "verification", counted=False),
    ]
    reports = [Report(1, date(2026, 2, 5), frozenset({"CO-01", "OS-01"}), 1)]
    r = track(history, reports, today=date(2026, 3, 2))
    states = {i.code: i.state for i in r.issues}
    assert states == {
        "CO-01": IssueState.VERIFIED,
        "OS-01": IssueState.STILL_OPEN,
        "WT-01": IssueState.OPEN,
    }
    assert r.counts["issues"] == 3 and r.counts["reported"] == 2 and r.counts["verified"] == 1
    assert r.report_state is ReportState.RECEIVED and r.due_on == date(2026, 2, 9)
    later = track([*history, visit(3, date(2027, 1, 12), "OS-01,FA-01")], reports)
    assert [(i.code, i.state) for i in later.issues] == [
        ("FA-01", IssueState.OPEN),
        ("OS-01", IssueState.OPEN),
    ]
    assert later.previous is not None and later.previous.id == 1
    assert [(i.code, i.state, i.reported_on) for i in later.resolved] == [
        ("CO-01", IssueState.VERIFIED, date(2026, 2, 5)),
        ("WT-01", IssueState.VERIFIED, None),
    ]
    assert later.report is None and later.tracked is not None and later.tracked.id == 3


def test_progress_report_one_is_due_thirty_days_after_the_report_date() -> None:
    plain = visit(1, DAY, "CO-01")
    assert plain.due_on == date(2026, 2, 9)
    dated = plain._replace(report_on=date(2026, 1, 20))
    assert dated.report_date == date(2026, 1, 20) and dated.due_on == date(2026, 2, 19)
    assert track([dated], [], today=date(2026, 2, 19)).report_state is ReportState.DUE
    assert track([dated], [], today=date(2026, 2, 20)).report_state is ReportState.OVERDUE
    assert track([dated], []).report_state is None


def test_nothing_is_due_without_publicly_reported_non_compliance() -> None:
    r = track([visit(1, DAY, "CO-01"), visit(2, DAY + timedelta(days=90))], [], today=DAY)
    assert r.due_on is None and r.report_state is None and r.issues == ()
    assert schedule(r) is None
    assert [i.code for i in r.resolved] == ["CO-01"]
    assert track([], []) == Remediation()
    assert track([visit(1, DAY, "CO-01", "advisory", counted=False)], []) == Remediation()


def test_an_advisory_visit_checks_nothing_and_a_verification_only_what_was_reported() -> None:
    history = [
        visit(1, DAY, "CO-01,OS-01"),
        visit(2, date(2026, 2, 1), "", "advisory", counted=False),
        visit(3, date(2026, 3, 1), "", "verification", counted=False),
    ]
    r = track(history, [Report(1, date(2026, 2, 2), frozenset({"CO-01"}))])
    assert {i.code: i.state for i in r.issues} == {
        "CO-01": IssueState.VERIFIED,
        "OS-01": IssueState.OPEN,
    }
    verified = r.issues[0]
    assert verified.checked_on == date(2026, 3, 1) and verified.checked_kind == "verification"
    # an uncounted full assessment (made while designated, say) checks every issue
    full = track([*history, visit(4, date(2026, 4, 1), "OS-01", counted=False)], [])
    assert {i.code: i.state for i in full.issues} == {
        "CO-01": IssueState.VERIFIED,
        "OS-01": IssueState.STILL_OPEN,
    }


def test_a_report_and_a_visit_on_the_same_day_read_report_first() -> None:
    history = [visit(1, DAY, "CO-01"), visit(2, date(2026, 2, 1), "", "verification", False)]
    r = track(history, [Report(1, date(2026, 2, 1), frozenset({"CO-01"}))])
    assert r.issues[0].state is IssueState.VERIFIED


def test_a_report_answers_the_latest_counted_assessment_with_issues_on_or_before_it() -> None:
    history = [
        visit(1, DAY, "CO-01"),
        visit(2, date(2026, 2, 1), "OS-01", "advisory", counted=False),
        visit(3, date(2026, 6, 1)),
        visit(4, date(2026, 9, 1), "WT-01"),
    ]
    assert answered(history, DAY - timedelta(days=1)) is None
    assert answered(history, date(2026, 8, 31)) == history[0]
    assert answered(history, date(2026, 9, 1)) == history[3]
    assert tracked(history) == history[3]


def test_an_assessment_recorded_says_when_its_report_is_due_if_it_is_tracked() -> None:
    rules = Rules()
    regular = AssessmentRecord(1, DAY, frozenset({"CO-01"}))
    advisory = AssessmentRecord(2, DAY + timedelta(days=3), frozenset({"CO-01"}), "advisory")
    empty = AssessmentRecord(3, DAY + timedelta(days=5))
    verdicts = evaluate(rules, "VN-1", [regular, advisory]).verdicts
    assert due_of(verdicts, 1, None) == date(2026, 2, 9)
    assert due_of(verdicts, 1, date(2026, 1, 20)) == date(2026, 2, 19)
    assert due_of(verdicts, 2, None) is None  # not counted
    later = evaluate(rules, "VN-1", [regular, empty]).verdicts
    assert due_of(later, 1, None) is None  # no longer tracked
    assert due_of(later, 3, None) is None  # nothing to report on


def test_the_reminder_and_the_overdue_alert() -> None:
    r = track([visit(7, DAY, "CO-01")], [], today=DAY)
    plan = schedule(r, days=7)
    assert plan is not None
    assert (plan.assessment_id, plan.due_on) == (7, date(2026, 2, 9))
    assert plan.remind_on == date(2026, 2, 2) and plan.overdue_on == date(2026, 2, 10)
    assert schedule(track([visit(7, DAY, "CO-01")], [Report(7, DAY, frozenset())])) is None
    # to come: both wanted, whoever changed the history
    now = at_nine(DAY)
    assert wanted(plan, at_nine, now, DAY, live=False) == (
        at_nine(date(2026, 2, 2)),
        at_nine(date(2026, 2, 10)),
    )
    # recorded late by a person: the reminder at once while not yet overdue
    late = at_nine(date(2026, 2, 5))
    assert wanted(plan, at_nine, late, late.date(), live=True) == (
        at_nine(date(2026, 2, 2)),
        at_nine(date(2026, 2, 10)),
    )
    assert wanted(plan, at_nine, late, late.date(), live=False) == (
        None,
        at_nine(date(2026, 2, 10)),
    )
    past = at_nine(date(2026, 5, 1))
    assert wanted(plan, at_nine, past, past.date(), live=True) == (None, None)


# --- properties --------------------------------------------------------------------------------

# what happens to one issue, and the state it leads to from each state (#13 §3)
REPORTED, FOUND, CLEAR_FULL, CLEAR_VERIFICATION = "reported", "found", "full", "verification"
OPEN, FIXED, VERIFIED, STILL = "open", "reported_fixed", "verified", "still_open"
TABLE = {
    (OPEN, REPORTED): FIXED,
    (STILL, REPORTED): FIXED,
    (FIXED, REPORTED): FIXED,
    (VERIFIED, REPORTED): VERIFIED,
    (OPEN, FOUND): STILL,
    (FIXED, FOUND): STILL,
    (VERIFIED, FOUND): STILL,
    (STILL, FOUND): STILL,
    (OPEN, CLEAR_FULL): VERIFIED,
    (FIXED, CLEAR_FULL): VERIFIED,
    (VERIFIED, CLEAR_FULL): VERIFIED,
    (STILL, CLEAR_FULL): VERIFIED,
    (OPEN, CLEAR_VERIFICATION): OPEN,
    (FIXED, CLEAR_VERIFICATION): VERIFIED,
    (VERIFIED, CLEAR_VERIFICATION): VERIFIED,
    (STILL, CLEAR_VERIFICATION): STILL,
}

FOLLOWING = st.lists(
    st.tuples(
        st.integers(1, 200),
        st.sampled_from(("report", "regular", "unannounced", "verification", "advisory")),
        st.frozensets(st.sampled_from(CODES)),
    ),
    max_size=8,
)


def build(
    found: frozenset[str], following: list[tuple[int, str, frozenset[str]]]
) -> tuple[list[Visit], list[Report], list[tuple[date, int, str, frozenset[str]]]]:
    """The tracked assessment (id 1, counted) and what follows it, none of it counted."""
    history, reports, steps = [Visit(1, DAY, found)], [], []
    used: set[date] = set()
    for n, (offset, what, codes) in enumerate(following, start=2):
        day = DAY + timedelta(days=offset)
        if what == "report":
            reports.append(Report(1, day, codes, n))
            steps.append((day, 0, what, codes))
        elif day not in used:
            used.add(day)
            history.append(Visit(n, day, codes, what, counted=False))
            steps.append((day, 1, what, codes))
    return history, reports, sorted(steps, key=lambda s: (s[0], s[1]))


def model_state(code: str, steps: list[tuple[date, int, str, frozenset[str]]]) -> str:
    state = OPEN
    for _, _, what, codes in steps:
        if what == "advisory":
            continue
        if what == "report":
            if code in codes:
                state = TABLE[(state, REPORTED)]
        elif code in codes:
            state = TABLE[(state, FOUND)]
        else:
            state = TABLE[(state, CLEAR_VERIFICATION if what == "verification" else CLEAR_FULL)]
    return state


@PROPERTY
@given(st.frozensets(st.sampled_from(CODES), min_size=1), FOLLOWING)
def test_each_issue_follows_the_reference_model(
    found: frozenset[str], following: list[tuple[int, str, frozenset[str]]]
) -> None:
    history, reports, steps = build(found, following)
    r = track(history, reports, today=DAY)
    assert [i.code for i in r.issues] == sorted(found)
    for issue in r.issues:
        assert issue.state.value == model_state(issue.code, steps), issue.code
        first = min((d for d, _, w, c in steps if w == "report" and issue.code in c), default=None)
        assert issue.reported_on == first
    counts = r.counts
    assert counts["issues"] == len(found)
    assert sum(counts[s.value] for s in IssueState) == len(found)
    assert counts["reported"] == sum(1 for i in r.issues if i.reported_on is not None)
    assert (r.report is None) == (not reports)
    assert (schedule(r) is None) == bool(reports)


@PROPERTY
@given(
    st.lists(
        st.tuples(st.integers(0, 2000), st.frozensets(st.sampled_from(CODES)), st.booleans()),
        min_size=1,
        max_size=8,
        unique_by=lambda t: t[0],
    )
)
def test_the_latest_counted_assessment_is_tracked_and_the_previous_one_resolved(
    rows: list[tuple[int, frozenset[str], bool]],
) -> None:
    history = [
        Visit(n, DAY + timedelta(days=d), codes, "regular", counted)
        for n, (d, codes, counted) in enumerate(rows, start=1)
    ]
    counted = sorted((v for v in history if v.counted), key=lambda v: v.assessed_on)
    r = track(history, [])
    if not counted:
        assert r == Remediation()
        return
    assert r.tracked == counted[-1]
    assert r.due_on == (counted[-1].due_on if counted[-1].nc_issues else None)
    if len(counted) > 1:
        gone = counted[-2].nc_issues - counted[-1].nc_issues
        assert {i.code for i in r.resolved} == gone
        assert all(i.state is IssueState.VERIFIED for i in r.resolved)
    else:
        assert r.previous is None and r.resolved == ()


@PROPERTY
@given(
    st.integers(1, 29),
    st.integers(-60, 60),
    st.booleans(),
)
def test_only_a_person_brings_a_past_reminder_and_nothing_comes_after_it_is_overdue(
    days: int, offset: int, live: bool
) -> None:
    r = track([visit(1, DAY, "CO-01")], [])
    plan = schedule(r, days)
    assert plan is not None and plan.remind_on < plan.due_on < plan.overdue_on
    today = plan.due_on + timedelta(days=offset)
    now = at_nine(today) + timedelta(hours=1)
    remind, overdue = wanted(plan, at_nine, now, today, live=live)
    assert (overdue is not None) == (today < plan.overdue_on)
    if remind is not None:
        assert remind == at_nine(plan.remind_on)
        assert remind > now or (live and today <= plan.due_on)
    if not live:
        assert all(m is None or m > now for m in (remind, overdue))
