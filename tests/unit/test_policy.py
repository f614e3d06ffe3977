"""The PNC framework (SPEC §2, reference/pnc-framework-faq.txt) through ``bot.policy``.

Histories are written compactly: ``history(("2018-01-10", 5), ("2019-01-10", 2))`` is two
assessments with ids 1 and 2 (in listed order, whatever their dates) finding 5 and 2 distinct
public-reporting issues non-compliant. Expected events are ``(kind, assessment id, k)`` where ``k``
is only given for at-risk warnings.
"""

from __future__ import annotations

import random
from datetime import date

import pytest

from bot.policy import (
    AssessmentRecord,
    Evaluation,
    Event,
    EventKind,
    NotCounted,
    ReadmissionRecord,
    Rules,
    State,
    diff_events,
    evaluate,
    label_for,
)

FACTORY = "VN-0042"
VN = Rules()  # the framework's defaults: Viet Nam, since 2017-07-01, >= 4 issues, 3 in a row

W = EventKind.AT_RISK_WARNING
STOP = EventKind.PROCESS_STOPPED
PNC = EventKind.PNC_DESIGNATED


def day(iso: str) -> date:
    return date.fromisoformat(iso)


def issues(count: int) -> frozenset[str]:
    """``count`` distinct public-reporting issue codes."""
    return frozenset(f"CO-{i:02d}" for i in range(1, count + 1))


def history(*spec: tuple[str, int], first_id: int = 1) -> list[AssessmentRecord]:
    """(ISO date, issue count) tuples → assessments with ids first_id, first_id + 1, …"""
    return [
        AssessmentRecord(first_id + n, day(on), issues(count)) for n, (on, count) in enumerate(spec)
    ]


def apply(
    app_id: int,
    applied_on: str,
    *,
    decided_on: str | None = None,
    approved: bool | None = None,
    unannounced_on: str | None = None,
) -> ReadmissionRecord:
    return ReadmissionRecord(
        app_id,
        day(applied_on),
        day(unannounced_on) if unannounced_on else None,
        day(decided_on) if decided_on else None,
        approved,
    )


def summary(ev: Evaluation) -> list[tuple[EventKind, int | None, int | None]]:
    """The assessment events as (kind, assessment id, k for warnings)."""
    return [
        (e.kind, e.assessment_id, e.k if e.kind is EventKind.AT_RISK_WARNING else None)
        for e in ev.events
        if e.assessment_id is not None
    ]


def kinds(ev: Evaluation) -> list[EventKind]:
    return [e.kind for e in ev.events]


def keys(ev: Evaluation) -> list[str]:
    return [e.key for e in ev.events]


def only(ev: Evaluation, kind: EventKind) -> Event:
    found = [e for e in ev.events if e.kind is kind]
    assert len(found) == 1, (kind, ev.events)
    return found[0]


# Three failing assessments designate a factory under the default rules.
DESIGNATED_2020 = (("2018-03-01", 5), ("2019-03-01", 4), ("2020-03-01", 7))


# ---------------------------------------------------------------------------------------------
# The progression described by the FAQ: warnings, designation, stopping
# ---------------------------------------------------------------------------------------------

PROGRESSION = [
    pytest.param(
        [],
        State.NOT_AT_RISK,
        "Not at risk",
        0,
        [],
        id="no_assessments_is_not_at_risk",
    ),
    pytest.param(
        [("2018-03-01", 2)],
        State.NOT_AT_RISK,
        "Not at risk",
        0,
        [],
        id="passing_assessment_without_streak_gives_no_event",
    ),
    pytest.param(
        [("2018-03-01", 0), ("2019-03-01", 3)],
        State.NOT_AT_RISK,
        "Not at risk",
        0,
        [],
        id="repeated_passing_assessments_give_no_event",
    ),
    pytest.param(
        [("2018-03-01", 5)],
        State.AT_RISK,
        "At risk (1 of 3)",
        1,
        [(W, 1, 1)],
        id="first_failing_assessment_warns_1_of_3",
    ),
    pytest.param(
        [("2018-03-01", 5), ("2019-03-01", 6)],
        State.AT_RISK,
        "At risk (2 of 3)",
        2,
        [(W, 1, 1), (W, 2, 2)],
        id="second_failing_assessment_warns_2_of_3",
    ),
    pytest.param(
        list(DESIGNATED_2020),
        State.PNC,
        "Persistently non-compliant",
        3,
        [(W, 1, 1), (W, 2, 2), (PNC, 3, None)],
        id="third_consecutive_failing_assessment_designates",
    ),
    pytest.param(
        [("2018-03-01", 5), ("2019-03-01", 3)],
        State.NOT_AT_RISK,
        "Not at risk",
        0,
        [(W, 1, 1), (STOP, 2, None)],
        id="three_issues_in_second_assessment_stops_process",
    ),
    pytest.param(
        [("2018-03-01", 5), ("2019-03-01", 4), ("2020-03-01", 3)],
        State.NOT_AT_RISK,
        "Not at risk",
        0,
        [(W, 1, 1), (W, 2, 2), (STOP, 3, None)],
        id="three_issues_in_third_assessment_stops_process",
    ),
    pytest.param(
        [("2018-03-01", 8), ("2019-03-01", 0)],
        State.NOT_AT_RISK,
        "Not at risk",
        0,
        [(W, 1, 1), (STOP, 2, None)],
        id="zero_issues_stops_process",
    ),
    pytest.param(
        [("2018-03-01", 5), ("2019-03-01", 5), ("2020-03-01", 1), ("2021-03-01", 4)],
        State.AT_RISK,
        "At risk (1 of 3)",
        1,
        [(W, 1, 1), (W, 2, 2), (STOP, 3, None), (W, 4, 1)],
        id="failing_after_stop_starts_again_at_1_of_3",
    ),
    pytest.param(
        [("2018-03-01", 5), ("2019-03-01", 2), ("2020-03-01", 3)],
        State.NOT_AT_RISK,
        "Not at risk",
        0,
        [(W, 1, 1), (STOP, 2, None)],
        id="only_the_first_pass_after_a_streak_stops_the_process",
    ),
    pytest.param(
        [
            ("2017-09-01", 6),
            ("2018-03-01", 6),
            ("2018-09-01", 2),
            ("2019-03-01", 4),
            ("2019-09-01", 9),
            ("2020-03-01", 4),
        ],
        State.PNC,
        "Persistently non-compliant",
        3,
        [(W, 1, 1), (W, 2, 2), (STOP, 3, None), (W, 4, 1), (W, 5, 2), (PNC, 6, None)],
        id="designation_needs_three_failures_in_a_row_not_three_in_total",
    ),
]


@pytest.mark.parametrize(("spec", "state", "label", "streak", "events"), PROGRESSION)
def test_progression_gives_faq_state_label_and_events(spec, state, label, streak, events):
    ev = evaluate(VN, FACTORY, history(*spec))
    assert ev.state == state
    assert ev.label == label
    assert ev.streak == streak
    assert summary(ev) == events
    assert all(v.counted for v in ev.verdicts)


def test_designation_basis_is_exactly_the_three_failing_assessments():
    records = history(
        ("2017-09-01", 6),
        ("2018-03-01", 1),
        ("2018-09-01", 4),
        ("2019-03-01", 5),
        ("2019-09-01", 6),
    )
    ev = evaluate(VN, FACTORY, records)
    designation = only(ev, PNC)
    assert designation.basis == (3, 4, 5)
    assert designation.assessment_id == 5
    assert designation.on == day("2019-09-01")
    assert ev.basis == tuple(records[2:])
    assert [a.nc_issues for a in ev.basis] == [issues(4), issues(5), issues(6)]
    assert ev.designated


def test_basis_is_empty_unless_designated():
    ev = evaluate(VN, FACTORY, history(("2018-03-01", 5), ("2019-03-01", 5)))
    assert ev.basis == ()
    assert not ev.designated


def test_warning_event_carries_its_k_and_date():
    ev = evaluate(VN, FACTORY, history(("2018-03-01", 5), ("2019-03-01", 6)))
    first, second = ev.events
    assert (first.k, first.on, first.assessment_id) == (1, day("2018-03-01"), 1)
    assert (second.k, second.on, second.assessment_id) == (2, day("2019-03-01"), 2)


# ---------------------------------------------------------------------------------------------
# Threshold boundary and country rules
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rules", "count", "fails"),
    [
        pytest.param(VN, 4, True, id="exactly_4_issues_fail"),
        pytest.param(VN, 3, False, id="exactly_3_issues_pass"),
        pytest.param(VN, 0, False, id="no_issues_pass"),
        pytest.param(VN, 12, True, id="many_issues_fail"),
        pytest.param(Rules(threshold=2), 2, True, id="custom_threshold_2_fails_at_2"),
        pytest.param(Rules(threshold=2), 1, False, id="custom_threshold_2_passes_at_1"),
        pytest.param(Rules(threshold=6), 5, False, id="custom_threshold_6_passes_at_5"),
    ],
)
def test_threshold_boundary_decides_whether_an_assessment_fails(rules, count, fails):
    ev = evaluate(rules, FACTORY, history(("2018-03-01", count)))
    (verdict,) = ev.verdicts
    assert verdict.fails is fails
    assert verdict.counted
    assert verdict.nc_count == count
    assert ev.state == (State.AT_RISK if fails else State.NOT_AT_RISK)
    assert kinds(ev) == ([W] if fails else [])


def test_issue_count_is_of_distinct_issues():
    record = AssessmentRecord(1, day("2018-03-01"), frozenset(["CO-01", "CO-02", "CO-01", "CO-03"]))
    ev = evaluate(VN, FACTORY, [record])
    assert ev.verdicts[0].nc_count == 3
    assert ev.state == State.NOT_AT_RISK


@pytest.mark.parametrize(
    ("rules", "counts", "state", "label"),
    [
        pytest.param(Rules(consecutive=4), [4], State.AT_RISK, "At risk (1 of 4)", id="1_of_4"),
        pytest.param(
            Rules(consecutive=4), [4, 4, 4], State.AT_RISK, "At risk (3 of 4)", id="3_of_4"
        ),
        pytest.param(
            Rules(consecutive=4),
            [4, 4, 4, 4],
            State.PNC,
            "Persistently non-compliant",
            id="four_in_a_row_designate_when_consecutive_is_4",
        ),
        pytest.param(
            Rules(threshold=2, consecutive=2),
            [2],
            State.AT_RISK,
            "At risk (1 of 2)",
            id="threshold_2_consecutive_2_first_failure",
        ),
        pytest.param(
            Rules(threshold=2, consecutive=2),
            [3, 2],
            State.PNC,
            "Persistently non-compliant",
            id="threshold_2_consecutive_2_designates_on_second",
        ),
        pytest.param(
            Rules(threshold=6, consecutive=5),
            [6, 6, 5],
            State.NOT_AT_RISK,
            "Not at risk",
            id="threshold_6_five_issues_stop_process",
        ),
        pytest.param(
            Rules(consecutive=1),
            [4],
            State.PNC,
            "Persistently non-compliant",
            id="consecutive_1_designates_on_first_failure",
        ),
    ],
)
def test_custom_rules_give_k_of_n_labels(rules, counts, state, label):
    spec = [(f"{2018 + n}-03-01", c) for n, c in enumerate(counts)]
    ev = evaluate(rules, FACTORY, history(*spec))
    assert ev.state == state
    assert ev.label == label
    assert (ev.threshold, ev.consecutive) == (rules.threshold, rules.consecutive)


def test_consecutive_1_designates_without_warning():
    ev = evaluate(Rules(consecutive=1), FACTORY, history(("2018-03-01", 4)))
    assert summary(ev) == [(PNC, 1, None)]
    assert only(ev, PNC).basis == (1,)
    assert ev.streak == 1


@pytest.mark.parametrize(
    ("state", "streak", "consecutive", "label"),
    [
        pytest.param(State.NOT_COVERED, 0, 3, "Not covered by the PNC framework", id="not_covered"),
        pytest.param(State.NOT_AT_RISK, 0, 3, "Not at risk", id="not_at_risk"),
        pytest.param(State.AT_RISK, 1, 3, "At risk (1 of 3)", id="at_risk_1_of_3"),
        pytest.param(State.AT_RISK, 2, 3, "At risk (2 of 3)", id="at_risk_2_of_3"),
        pytest.param(State.AT_RISK, 4, 5, "At risk (4 of 5)", id="at_risk_4_of_5"),
        pytest.param(State.PNC, 3, 3, "Persistently non-compliant", id="pnc"),
        pytest.param(
            State.READMISSION_REVIEW, 3, 3, "Readmission under review", id="readmission_review"
        ),
    ],
)
def test_label_for_gives_the_exact_spec_labels(state, streak, consecutive, label):
    assert label_for(state, streak, consecutive) == label


@pytest.mark.parametrize(
    "kwargs",
    [
        pytest.param({"threshold": 0}, id="threshold_0"),
        pytest.param({"consecutive": 0}, id="consecutive_0"),
    ],
)
def test_rules_reject_meaningless_settings(kwargs):
    with pytest.raises(ValueError):
        Rules(**kwargs)


# ---------------------------------------------------------------------------------------------
# Public reporting start date
# ---------------------------------------------------------------------------------------------


def test_assessments_before_public_reporting_are_recorded_but_not_counted():
    ev = evaluate(VN, FACTORY, history(("2015-05-01", 9), ("2016-05-01", 8), ("2017-06-30", 7)))
    assert ev.state == State.NOT_AT_RISK
    assert ev.streak == 0
    assert ev.events == ()
    assert [v.assessment.id for v in ev.verdicts] == [1, 2, 3]
    for verdict in ev.verdicts:
        assert verdict.counted is False
        assert verdict.not_counted == NotCounted.BEFORE_PUBLIC_REPORTING
        assert verdict.fails is True  # still shown as failing, just not counted


def test_assessment_on_public_reporting_start_day_counts():
    ev = evaluate(VN, FACTORY, history(("2017-07-01", 4)))
    (verdict,) = ev.verdicts
    assert verdict.counted is True
    assert verdict.not_counted is None
    assert summary(ev) == [(W, 1, 1)]


@pytest.mark.parametrize(
    ("spec", "state", "streak", "events"),
    [
        pytest.param(
            [("2017-01-10", 5), ("2017-06-30", 5), ("2017-07-01", 5), ("2018-01-10", 5)],
            State.AT_RISK,
            2,
            [(W, 3, 1), (W, 4, 2)],
            id="failures_before_the_date_do_not_start_the_streak",
        ),
        pytest.param(
            [("2016-12-01", 6), ("2017-08-01", 6), ("2018-02-01", 6), ("2018-08-01", 6)],
            State.PNC,
            3,
            [(W, 2, 1), (W, 3, 2), (PNC, 4, None)],
            id="designation_counts_only_assessments_since_the_date",
        ),
        pytest.param(
            [("2017-03-01", 6), ("2017-06-01", 0), ("2017-08-01", 6)],
            State.AT_RISK,
            1,
            [(W, 3, 1)],
            id="pass_before_the_date_stops_nothing",
        ),
    ],
)
def test_streak_straddling_public_reporting_start_counts_only_later_assessments(
    spec, state, streak, events
):
    ev = evaluate(VN, FACTORY, history(*spec))
    assert ev.state == state
    assert ev.streak == streak
    assert summary(ev) == events
    if state == State.PNC:
        assert only(ev, PNC).basis == (2, 3, 4)


def test_public_reporting_start_is_a_country_setting():
    rules = Rules(public_reporting_since=date(2020, 1, 1))
    ev = evaluate(rules, FACTORY, history(("2019-12-31", 5), ("2020-01-01", 5)))
    assert [v.counted for v in ev.verdicts] == [False, True]
    assert ev.label == "At risk (1 of 3)"


# ---------------------------------------------------------------------------------------------
# Countries where the framework does not apply
# ---------------------------------------------------------------------------------------------


def test_country_not_covered_gives_no_state_and_no_events():
    rules = Rules(pnc_enabled=False)
    ev = evaluate(
        rules,
        "KH-0007",
        history(*DESIGNATED_2020),
        [apply(9, "2020-04-01", decided_on="2020-05-01", approved=True)],
    )
    assert ev.state == State.NOT_COVERED
    assert ev.label == "Not covered by the PNC framework"
    assert ev.streak == 0
    assert ev.events == ()
    assert ev.basis == ()
    assert ev.open_application is None
    assert ev.ignored_applications == (9,)
    assert [v.counted for v in ev.verdicts] == [False, False, False]
    assert {v.not_counted for v in ev.verdicts} == {NotCounted.NOT_COVERED}
    assert [v.fails for v in ev.verdicts] == [True, True, True]


def test_country_not_covered_without_history():
    ev = evaluate(Rules(pnc_enabled=False), "KH-0007", [])
    assert (ev.state, ev.label, ev.events) == (
        State.NOT_COVERED,
        "Not covered by the PNC framework",
        (),
    )


# ---------------------------------------------------------------------------------------------
# Order of arrival, late and back-dated assessments
# ---------------------------------------------------------------------------------------------

MIXED = history(
    ("2016-01-01", 7),
    ("2017-09-01", 5),
    ("2018-03-01", 1),
    ("2018-09-01", 4),
    ("2019-03-01", 4),
    ("2019-09-01", 6),
    ("2020-03-01", 0),
    ("2021-03-01", 5),
)
MIXED_READMISSIONS = [
    apply(1, "2019-10-01", decided_on="2019-12-01", approved=False),
    apply(2, "2020-06-01", unannounced_on="2020-07-01", decided_on="2020-08-01", approved=True),
]


@pytest.mark.parametrize(
    "arrange",
    [
        pytest.param(lambda xs: list(reversed(xs)), id="reversed"),
        pytest.param(lambda xs: random.Random(1).sample(xs, len(xs)), id="shuffled_seed_1"),
        pytest.param(lambda xs: random.Random(7).sample(xs, len(xs)), id="shuffled_seed_7"),
        pytest.param(lambda xs: sorted(xs, key=lambda a: -a.id), id="by_descending_id"),
        pytest.param(lambda xs: iter(xs[4:] + xs[:4]), id="rotated_iterator"),
    ],
)
def test_result_does_not_depend_on_arrival_order(arrange):
    expected = evaluate(VN, FACTORY, MIXED, MIXED_READMISSIONS)
    assert evaluate(VN, FACTORY, arrange(MIXED), arrange(MIXED_READMISSIONS)) == expected


def test_ids_do_not_decide_order_dates_do():
    # the assessment with the highest id is the oldest
    records = history(("2019-03-01", 5), ("2020-03-01", 2), first_id=1) + history(
        ("2018-03-01", 6), first_id=3
    )
    ev = evaluate(VN, FACTORY, records)
    assert summary(ev) == [(W, 3, 1), (W, 1, 2), (STOP, 2, None)]
    assert [v.assessment.id for v in ev.verdicts] == [3, 1, 2]


LATE = [
    pytest.param(
        [("2018-03-01", 5), ("2019-03-01", 5)],
        ("2018-09-01", 2),
        State.AT_RISK,
        1,
        [(W, 1, 1), (W, 2, 2)],
        [(W, 1, 1), (STOP, 3, None), (W, 2, 1)],
        id="late_pass_between_two_failures_breaks_streak",
    ),
    pytest.param(
        list(DESIGNATED_2020),
        ("2019-09-01", 3),
        State.AT_RISK,
        1,
        [(W, 1, 1), (W, 2, 2), (PNC, 3, None)],
        [(W, 1, 1), (W, 2, 2), (STOP, 4, None), (W, 3, 1)],
        id="late_pass_before_third_failure_undoes_designation",
    ),
    pytest.param(
        [("2018-03-01", 5), ("2019-03-01", 5)],
        ("2018-09-01", 4),
        State.PNC,
        3,
        [(W, 1, 1), (W, 2, 2)],
        [(W, 1, 1), (W, 3, 2), (PNC, 2, None)],
        id="late_failure_between_two_failures_designates",
    ),
    pytest.param(
        [("2018-03-01", 5), ("2019-03-01", 1), ("2020-03-01", 5)],
        ("2019-09-01", 6),
        State.AT_RISK,
        2,
        [(W, 1, 1), (STOP, 2, None), (W, 3, 1)],
        [(W, 1, 1), (STOP, 2, None), (W, 4, 1), (W, 3, 2)],
        id="late_failure_before_latest_raises_its_k",
    ),
    pytest.param(
        [("2018-03-01", 5), ("2019-03-01", 5)],
        ("2017-09-01", 0),
        State.AT_RISK,
        2,
        [(W, 1, 1), (W, 2, 2)],
        [(W, 1, 1), (W, 2, 2)],
        id="late_pass_before_the_streak_changes_nothing",
    ),
    pytest.param(
        [("2018-03-01", 5), ("2019-03-01", 5)],
        ("2017-01-01", 9),
        State.AT_RISK,
        2,
        [(W, 1, 1), (W, 2, 2)],
        [(W, 1, 1), (W, 2, 2)],
        id="late_failure_before_public_reporting_changes_nothing",
    ),
]


@pytest.mark.parametrize(("spec", "late", "state", "streak", "before", "after"), LATE)
def test_late_assessment_is_placed_by_date_and_changes_outcome(
    spec, late, state, streak, before, after
):
    records = history(*spec)
    late_record = history(late, first_id=len(records) + 1)
    assert summary(evaluate(VN, FACTORY, records)) == before
    ev = evaluate(VN, FACTORY, records + late_record)
    assert ev.state == state
    assert ev.streak == streak
    assert summary(ev) == after


def test_late_pass_changes_the_key_of_the_warning_whose_k_changed():
    records = history(("2018-03-01", 5), ("2019-03-01", 5))
    before = evaluate(VN, FACTORY, records)
    after = evaluate(VN, FACTORY, [*records, *history(("2018-09-01", 2), first_id=3)])
    assert keys(before) == [
        "VN-0042/at_risk_warning/a1/k1",
        "VN-0042/at_risk_warning/a2/k2",
    ]
    assert keys(after) == [
        "VN-0042/at_risk_warning/a1/k1",
        "VN-0042/process_stopped/a3",
        "VN-0042/at_risk_warning/a2/k1",
    ]
    changes = diff_events(after.events, dict.fromkeys(keys(before), True))
    assert changes.unsupported == ("VN-0042/at_risk_warning/a2/k2",)
    assert [e.key for e in changes.new] == [
        "VN-0042/process_stopped/a3",
        "VN-0042/at_risk_warning/a2/k1",
    ]
    assert changes.restored == ()


def test_late_pass_leaves_designation_unsupported():
    records = history(*DESIGNATED_2020)
    before = evaluate(VN, FACTORY, records)
    after = evaluate(VN, FACTORY, [*records, *history(("2019-09-01", 0), first_id=4)])
    changes = diff_events(after.events, dict.fromkeys(keys(before), True))
    assert changes.unsupported == ("VN-0042/pnc_designated/a3",)
    assert after.basis == ()


# ---------------------------------------------------------------------------------------------
# While designated
# ---------------------------------------------------------------------------------------------


def test_assessments_while_designated_are_recorded_but_not_counted():
    records = history(*DESIGNATED_2020, ("2020-09-01", 0), ("2021-03-01", 8), ("2021-09-01", 2))
    ev = evaluate(VN, FACTORY, records)
    assert ev.state == State.PNC
    assert ev.streak == 3
    assert summary(ev) == [(W, 1, 1), (W, 2, 2), (PNC, 3, None)]
    assert ev.basis == tuple(records[:3])
    later = ev.verdicts[3:]
    assert [v.assessment.id for v in later] == [4, 5, 6]
    assert [v.counted for v in later] == [False, False, False]
    assert {v.not_counted for v in later} == {NotCounted.DESIGNATED}
    assert [v.fails for v in later] == [False, True, False]


def test_pass_the_day_after_designation_stops_nothing():
    ev = evaluate(VN, FACTORY, history(*DESIGNATED_2020, ("2020-03-02", 0)))
    assert ev.verdicts[-1].not_counted == NotCounted.DESIGNATED
    assert STOP not in kinds(ev)


# ---------------------------------------------------------------------------------------------
# Readmission
# ---------------------------------------------------------------------------------------------


def test_application_while_designated_opens_review():
    application = apply(7, "2020-05-01")
    ev = evaluate(VN, FACTORY, history(*DESIGNATED_2020), [application])
    assert ev.state == State.READMISSION_REVIEW
    assert ev.label == "Readmission under review"
    assert ev.streak == 3
    assert ev.designated
    assert ev.open_application == application
    assert ev.ignored_applications == ()
    applied = only(ev, EventKind.READMISSION_APPLIED)
    assert (applied.application_id, applied.on, applied.assessment_id) == (
        7,
        day("2020-05-01"),
        None,
    )
    assert EventKind.UNANNOUNCED_SCHEDULED not in kinds(ev)
    assert len(ev.basis) == 3  # the reviewer still sees what the designation was based on


def test_application_with_unannounced_visit_schedules_it():
    application = apply(7, "2020-05-01", unannounced_on="2020-06-15")
    ev = evaluate(VN, FACTORY, history(*DESIGNATED_2020), [application])
    assert kinds(ev)[-2:] == [EventKind.READMISSION_APPLIED, EventKind.UNANNOUNCED_SCHEDULED]
    scheduled = only(ev, EventKind.UNANNOUNCED_SCHEDULED)
    assert (scheduled.application_id, scheduled.on) == (7, day("2020-06-15"))
    assert ev.state == State.READMISSION_REVIEW


def test_assessments_during_review_are_recorded_but_not_counted():
    records = history(*DESIGNATED_2020, ("2020-06-15", 0), ("2020-06-20", 9))
    ev = evaluate(VN, FACTORY, records, [apply(7, "2020-05-01", unannounced_on="2020-06-15")])
    assert ev.state == State.READMISSION_REVIEW
    assert ev.streak == 3
    assert [v.not_counted for v in ev.verdicts[3:]] == [NotCounted.DESIGNATED] * 2
    assert [e.assessment_id for e in ev.events if e.assessment_id] == [1, 2, 3]


def test_approval_readmits_with_a_fresh_streak():
    ev = evaluate(
        VN,
        FACTORY,
        history(*DESIGNATED_2020),
        [apply(7, "2020-05-01", decided_on="2020-07-01", approved=True)],
    )
    assert ev.state == State.NOT_AT_RISK
    assert ev.label == "Not at risk"
    assert ev.streak == 0
    assert ev.basis == ()
    assert ev.open_application is None
    assert not ev.designated
    approved = only(ev, EventKind.READMISSION_APPROVED)
    assert (approved.application_id, approved.on) == (7, day("2020-07-01"))
    assert kinds(ev)[-2:] == [EventKind.READMISSION_APPLIED, EventKind.READMISSION_APPROVED]


@pytest.mark.parametrize(
    ("after", "state", "label", "events_after"),
    [
        pytest.param(
            [("2021-01-10", 5)],
            State.AT_RISK,
            "At risk (1 of 3)",
            [(W, 4, 1)],
            id="first_failure_after_readmission_is_1_of_3",
        ),
        pytest.param(
            [("2021-01-10", 2)],
            State.NOT_AT_RISK,
            "Not at risk",
            [],
            id="pass_after_readmission_stops_nothing",
        ),
        pytest.param(
            [("2021-01-10", 5), ("2021-07-10", 6)],
            State.AT_RISK,
            "At risk (2 of 3)",
            [(W, 4, 1), (W, 5, 2)],
            id="second_failure_after_readmission_is_2_of_3",
        ),
        pytest.param(
            [("2021-01-10", 5), ("2021-07-10", 6), ("2022-01-10", 4)],
            State.PNC,
            "Persistently non-compliant",
            [(W, 4, 1), (W, 5, 2), (PNC, 6, None)],
            id="three_failures_after_readmission_designate_again",
        ),
    ],
)
def test_new_streak_starts_from_the_next_assessment_after_readmission(
    after, state, label, events_after
):
    approved = apply(7, "2020-05-01", decided_on="2020-07-01", approved=True)
    ev = evaluate(VN, FACTORY, history(*DESIGNATED_2020, *after), [approved])
    assert ev.state == state
    assert ev.label == label
    assert summary(ev) == [(W, 1, 1), (W, 2, 2), (PNC, 3, None), *events_after]
    assert all(v.counted for v in ev.verdicts)


def test_second_designation_has_its_own_key_and_basis():
    records = history(*DESIGNATED_2020, ("2021-01-10", 5), ("2021-07-10", 6), ("2022-01-10", 4))
    approved = apply(7, "2020-05-01", decided_on="2020-07-01", approved=True)
    ev = evaluate(VN, FACTORY, records, [approved])
    first, second = (e for e in ev.events if e.kind is PNC)
    assert first.key != second.key
    assert (first.basis, second.basis) == ((1, 2, 3), (4, 5, 6))
    assert ev.basis == tuple(records[3:])


def test_rejection_returns_to_pnc():
    ev = evaluate(
        VN,
        FACTORY,
        history(*DESIGNATED_2020, ("2020-06-01", 6)),
        [apply(7, "2020-05-01", decided_on="2020-07-01", approved=False)],
    )
    assert ev.state == State.PNC
    assert ev.label == "Persistently non-compliant"
    assert ev.streak == 3
    assert ev.open_application is None
    assert ev.basis == tuple(history(*DESIGNATED_2020))
    rejected = only(ev, EventKind.READMISSION_REJECTED)
    assert (rejected.application_id, rejected.on) == (7, day("2020-07-01"))
    assert EventKind.READMISSION_APPROVED not in kinds(ev)


def test_assessments_after_rejection_still_do_not_count():
    ev = evaluate(
        VN,
        FACTORY,
        history(*DESIGNATED_2020, ("2021-01-10", 0)),
        [apply(7, "2020-05-01", decided_on="2020-07-01", approved=False)],
    )
    assert ev.verdicts[-1].not_counted == NotCounted.DESIGNATED
    assert ev.state == State.PNC


def test_new_application_after_rejection_opens_a_new_review():
    ev = evaluate(
        VN,
        FACTORY,
        history(*DESIGNATED_2020),
        [
            apply(7, "2020-05-01", decided_on="2020-07-01", approved=False),
            apply(8, "2020-10-01"),
        ],
    )
    assert ev.state == State.READMISSION_REVIEW
    assert ev.open_application is not None and ev.open_application.id == 8
    assert [(e.kind, e.application_id) for e in ev.events if e.application_id] == [
        (EventKind.READMISSION_APPLIED, 7),
        (EventKind.READMISSION_REJECTED, 7),
        (EventKind.READMISSION_APPLIED, 8),
    ]


IGNORED = [
    pytest.param([], id="no_assessments"),
    pytest.param([("2018-03-01", 2)], id="not_at_risk"),
    pytest.param([("2018-03-01", 5), ("2019-03-01", 5)], id="at_risk_2_of_3"),
    pytest.param([("2016-03-01", 9), ("2016-09-01", 9), ("2017-03-01", 9)], id="before_reporting"),
]


@pytest.mark.parametrize("spec", IGNORED)
@pytest.mark.parametrize("decided", [False, True], ids=["open", "decided"])
def test_application_while_not_designated_is_ignored(spec, decided):
    records = history(*spec)
    application = apply(
        7,
        "2019-06-01",
        unannounced_on="2019-07-01",
        decided_on="2019-08-01" if decided else None,
        approved=True if decided else None,
    )
    without = evaluate(VN, FACTORY, records)
    ev = evaluate(VN, FACTORY, records, [application])
    assert ev.ignored_applications == (7,)
    assert ev.open_application is None
    assert (ev.state, ev.streak, ev.verdicts, ev.events, ev.basis) == (
        without.state,
        without.streak,
        without.verdicts,
        without.events,
        without.basis,
    )


def test_application_dated_before_designation_stays_ignored_after_it():
    ev = evaluate(
        VN,
        FACTORY,
        history(*DESIGNATED_2020),
        [apply(7, "2020-01-01", decided_on="2020-05-01", approved=True)],
    )
    assert ev.state == State.PNC
    assert ev.ignored_applications == (7,)
    assert EventKind.READMISSION_APPROVED not in kinds(ev)


def test_second_application_during_open_review_is_ignored():
    ev = evaluate(
        VN,
        FACTORY,
        history(*DESIGNATED_2020),
        [apply(7, "2020-05-01"), apply(8, "2020-06-01", decided_on="2020-07-01", approved=True)],
    )
    assert ev.state == State.READMISSION_REVIEW
    assert ev.open_application is not None and ev.open_application.id == 7
    assert ev.ignored_applications == (8,)
    assert EventKind.READMISSION_APPROVED not in kinds(ev)


def test_late_pass_that_undoes_designation_makes_application_ignored():
    readmissions = [apply(7, "2020-05-01", decided_on="2020-07-01", approved=True)]
    records = history(*DESIGNATED_2020, ("2019-09-01", 1))
    ev = evaluate(VN, FACTORY, records, readmissions)
    assert ev.ignored_applications == (7,)
    assert ev.state == State.AT_RISK
    assert not {EventKind.READMISSION_APPLIED, EventKind.READMISSION_APPROVED} & set(kinds(ev))


def test_assessment_on_the_day_of_an_application_is_processed_before_it():
    # the third failing assessment and the application share a day: designation comes first,
    # so the application is accepted
    records = history(("2018-03-01", 5), ("2019-03-01", 5), ("2020-03-01", 5))
    ev = evaluate(VN, FACTORY, records, [apply(7, "2020-03-01")])
    assert ev.state == State.READMISSION_REVIEW
    assert ev.ignored_applications == ()
    assert kinds(ev)[-2:] == [PNC, EventKind.READMISSION_APPLIED]


def test_assessment_on_application_day_while_designated_is_not_counted():
    records = history(*DESIGNATED_2020, ("2020-05-01", 0))
    ev = evaluate(VN, FACTORY, records, [apply(7, "2020-05-01")])
    assert ev.verdicts[-1].not_counted == NotCounted.DESIGNATED
    assert ev.state == State.READMISSION_REVIEW


def test_assessment_on_the_day_of_approval_belongs_to_the_review():
    # the verification visit on the decision day does not start the new streak; the next does
    records = history(*DESIGNATED_2020, ("2020-07-01", 5), ("2020-12-01", 5))
    approved = apply(7, "2020-05-01", decided_on="2020-07-01", approved=True)
    ev = evaluate(VN, FACTORY, records, [approved])
    assert ev.verdicts[3].not_counted == NotCounted.DESIGNATED
    assert ev.verdicts[4].counted
    assert ev.label == "At risk (1 of 3)"


def test_application_decided_on_the_day_it_was_made():
    ev = evaluate(
        VN,
        FACTORY,
        history(*DESIGNATED_2020),
        [apply(7, "2020-05-01", decided_on="2020-05-01", approved=True)],
    )
    assert kinds(ev)[-2:] == [EventKind.READMISSION_APPLIED, EventKind.READMISSION_APPROVED]
    assert ev.state == State.NOT_AT_RISK


def test_readmission_result_does_not_depend_on_application_order():
    records = history(*DESIGNATED_2020)
    apps = [
        apply(7, "2020-05-01", decided_on="2020-07-01", approved=False),
        apply(8, "2020-10-01", unannounced_on="2020-11-01", decided_on="2020-12-01", approved=True),
        apply(9, "2019-01-01"),
    ]
    assert evaluate(VN, FACTORY, records, apps) == evaluate(VN, FACTORY, records, apps[::-1])


# ---------------------------------------------------------------------------------------------
# Event keys
# ---------------------------------------------------------------------------------------------


def test_event_keys_are_stable_across_evaluations():
    first = evaluate(VN, FACTORY, MIXED, MIXED_READMISSIONS)
    again = evaluate(VN, FACTORY, list(MIXED), list(MIXED_READMISSIONS))
    assert keys(first) == keys(again)
    assert first.events == again.events


def test_event_keys_are_unique_within_an_evaluation():
    records = history(
        *DESIGNATED_2020,
        ("2020-09-01", 0),
        ("2021-01-10", 5),
        ("2021-07-10", 6),
        ("2022-01-10", 1),
        ("2022-07-10", 4),
        ("2023-01-10", 4),
        ("2023-07-10", 4),
    )
    readmissions = [
        apply(7, "2020-05-01", unannounced_on="2020-09-01", decided_on="2020-10-01", approved=True),
        apply(8, "2024-01-01", decided_on="2024-02-01", approved=False),
        apply(9, "2024-03-01", unannounced_on="2024-04-01"),
    ]
    ev = evaluate(VN, FACTORY, records, readmissions)
    assert ev.state == State.READMISSION_REVIEW
    assert len(ev.events) == 16
    assert len(set(keys(ev))) == len(ev.events)


def test_event_keys_name_factory_kind_and_subject():
    ev = evaluate(
        VN,
        FACTORY,
        history(*DESIGNATED_2020),
        [
            apply(
                7,
                "2020-05-01",
                unannounced_on="2020-06-01",
                decided_on="2020-07-01",
                approved=False,
            ),
            apply(8, "2020-08-01", decided_on="2020-09-01", approved=True),
        ],
    )
    assert keys(ev) == [
        "VN-0042/at_risk_warning/a1/k1",
        "VN-0042/at_risk_warning/a2/k2",
        "VN-0042/pnc_designated/a3",
        "VN-0042/readmission_applied/r7",
        "VN-0042/unannounced_scheduled/r7",
        "VN-0042/readmission_rejected/r7",
        "VN-0042/readmission_applied/r8",
        "VN-0042/readmission_approved/r8",
    ]


def test_event_keys_differ_between_factories():
    records = history(*DESIGNATED_2020)
    one = set(keys(evaluate(VN, "VN-0001", records)))
    two = set(keys(evaluate(VN, "VN-0002", records)))
    assert one.isdisjoint(two)


# ---------------------------------------------------------------------------------------------
# diff_events
# ---------------------------------------------------------------------------------------------

DERIVED = evaluate(VN, FACTORY, history(*DESIGNATED_2020)).events
K1, K2, KD = (e.key for e in DERIVED)
GONE = "VN-0042/at_risk_warning/a9/k2"


@pytest.mark.parametrize(
    ("recorded", "new", "unsupported", "restored"),
    [
        pytest.param({}, [K1, K2, KD], [], [], id="nothing_recorded_all_new"),
        pytest.param({K1: True}, [K2, KD], [], [], id="recorded_keys_are_not_new"),
        pytest.param({K1: True, K2: True, KD: True}, [], [], [], id="all_recorded_no_change"),
        pytest.param(
            {K1: True, K2: True, GONE: True},
            [KD],
            [GONE],
            [],
            id="recorded_supported_key_no_longer_derived_is_unsupported",
        ),
        pytest.param(
            {K1: True, K2: True, KD: True, GONE: False},
            [],
            [],
            [],
            id="key_already_marked_unsupported_is_not_reported_again",
        ),
        pytest.param(
            {K1: True, K2: False, KD: True},
            [],
            [],
            [K2],
            id="unsupported_key_derived_again_is_restored_not_new",
        ),
    ],
)
def test_diff_events_new_unsupported_restored(recorded, new, unsupported, restored):
    changes = diff_events(DERIVED, recorded)
    assert [e.key for e in changes.new] == new
    assert list(changes.unsupported) == unsupported
    assert list(changes.restored) == restored


def test_diff_events_new_keeps_the_derived_events():
    changes = diff_events(DERIVED, {})
    assert changes.new == DERIVED


# ---------------------------------------------------------------------------------------------
# Ordering of readmission records (regressions)
# ---------------------------------------------------------------------------------------------


def test_ignored_applications_follow_the_history_not_arrival_order_when_not_covered():
    rules = Rules(pnc_enabled=False)
    apps = [apply(1, "2020-01-01"), apply(2, "2021-01-01")]
    assert evaluate(rules, FACTORY, [], apps) == evaluate(rules, FACTORY, [], apps[::-1])


def test_reapplication_on_the_day_of_a_rejection_opens_a_new_review():
    # application 7 is rejected on 2020-07-01 and the factory applies again that same day; the
    # new application can only have been made after the rejection, so it must be accepted
    ev = evaluate(
        VN,
        FACTORY,
        history(*DESIGNATED_2020),
        [
            apply(7, "2020-05-01", decided_on="2020-07-01", approved=False),
            apply(8, "2020-07-01"),
        ],
    )
    assert ev.ignored_applications == ()
    assert ev.state == State.READMISSION_REVIEW
    assert ev.open_application is not None and ev.open_application.id == 8
