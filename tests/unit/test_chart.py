"""The history chart (``bot/chart.py``): email bars whose cells always fill the track, the
threshold's mark where it belongs, a sparkline that never hides an issue, assessments that did
not count told apart, and the chart's data kept in a notice's payload unchanged. Pure."""

from __future__ import annotations

import itertools
import json
from datetime import date, timedelta

from hypothesis import given
from hypothesis import strategies as st

from bot import chart, policy
from bot.chart import COLUMNS, EMPTY, LEVELS, MARK, NOT_COUNTED, RULE, SHOWN, TRACK, Point
from bot.policy import AssessmentRecord, EventKind

WHYS = st.sampled_from([None, None, None, "advisory", "before_public_reporting", "designated"])


@st.composite
def points(draw: st.DrawFn, max_size: int = 12) -> list[Point]:
    counts = draw(st.lists(st.integers(0, 40), max_size=max_size))
    day = date(2018, 1, 1)
    found = []
    for count in counts:
        day += timedelta(days=draw(st.integers(1, 400)))
        found.append(Point(day, count, draw(WHYS)))
    return found


THRESHOLDS = st.integers(1, 20)


@given(points(), THRESHOLDS)
def test_every_bar_fills_the_track_with_cells_of_some_width(ps: list[Point], t: int) -> None:
    c = chart.chart(ps, t)
    for bar in c.bars:
        assert sum(s.width for s in bar.segments) == TRACK
        assert all(s.width > 0 for s in bar.segments)
        assert {s.what for s in bar.segments} <= {"bar", "mark", "track"}
        assert len(bar.text) == COLUMNS


@given(points(), THRESHOLDS)
def test_the_threshold_mark_sits_at_the_threshold_on_every_bar(ps: list[Point], t: int) -> None:
    c = chart.chart(ps, t)
    assert MARK <= c.mark_at < TRACK
    assert c.mark_at == round(t * TRACK / c.scale) or c.mark_at == MARK
    for bar in c.bars:
        marks = [i for i, s in enumerate(bar.segments) if s.what == "mark"]
        assert len(marks) == 1
        before = sum(s.width for s in bar.segments[: marks[0] + 1])
        assert before == c.mark_at and bar.segments[marks[0]].width == MARK


@given(points(), THRESHOLDS)
def test_a_count_at_the_threshold_reaches_the_mark_and_one_under_it_never_does(
    ps: list[Point], t: int
) -> None:
    c = chart.chart(ps, t)
    for bar in c.bars:
        drawn = len(bar.text.rstrip(EMPTY + RULE))
        if bar.count >= t:
            assert bar.width >= c.mark_at
            # the text bar covers the threshold's rule, or touches it
            assert RULE not in bar.text or bar.text.index(RULE) == drawn
        else:
            assert bar.width <= c.mark_at - MARK
            # the rule stands apart from the text bar
            assert bar.text.index(RULE) > drawn


@given(points(), THRESHOLDS)
def test_bars_grow_with_their_counts(ps: list[Point], t: int) -> None:
    c = chart.chart(ps, t)
    ordered = sorted(c.bars, key=lambda b: b.count)
    for low, high in itertools.pairwise(ordered):
        assert low.width <= high.width
        if low.counted and high.counted:
            assert LEVELS.index(low.spark) <= LEVELS.index(high.spark)


@given(points(), THRESHOLDS)
def test_the_sparkline_shows_any_issue_above_the_lowest_level(ps: list[Point], t: int) -> None:
    c = chart.chart(ps, t)
    assert len(c.sparkline) == len(c.bars)
    for bar in c.bars:
        if not bar.counted:
            assert bar.spark == NOT_COUNTED
        elif bar.count == 0:
            assert bar.spark == LEVELS[0] and bar.width == 0
        else:
            assert bar.spark in LEVELS[1:] and bar.width > 0


def test_a_single_issue_is_never_drawn_as_none() -> None:
    for t in range(1, 30):
        for most in (1, 5, 40):
            c = chart.chart([Point(date(2024, 1, 1), 1), Point(date(2025, 1, 1), most)], t)
            assert c.bars[0].spark != LEVELS[0]
            assert c.bars[0].width > 0 or c.mark_at - MARK < 3


def test_an_assessment_that_did_not_count_is_a_dot_and_never_fails() -> None:
    c = chart.chart([Point(date(2024, 1, 1), 9, "advisory"), Point(date(2025, 1, 1), 9)], 4)
    advisory, regular = c.bars
    assert advisory.spark == NOT_COUNTED and c.sparkline == NOT_COUNTED + LEVELS[-1]
    assert not advisory.fails and not advisory.counted and advisory.state == "not_counted"
    assert regular.fails and regular.state == "fails"
    assert c.any_not_counted


@given(points(max_size=30), THRESHOLDS, st.integers(0, 5), st.integers(0, 10))
def test_only_the_latest_are_shown_and_the_rest_counted_as_left_out(
    ps: list[Point], t: int, before: int, shown: int
) -> None:
    c = chart.chart(ps, t, left_out=before, shown=shown)
    assert [b.assessed_on for b in c.bars] == [p.assessed_on for p in ps[len(ps) - len(c.bars) :]]
    assert len(c.bars) == min(len(ps), shown)
    assert c.left_out == before + len(ps) - len(c.bars)
    assert bool(c) == bool(c.bars)


@given(points(max_size=20), THRESHOLDS, st.integers(0, 5))
def test_the_data_kept_in_a_payload_gives_back_the_same_chart(
    ps: list[Point], t: int, before: int
) -> None:
    kept = json.loads(json.dumps(chart.frozen(ps, t, before)))
    assert len(kept["points"]) == min(len(ps), SHOWN)
    assert chart.thawed(kept) == chart.chart(ps, t, left_out=before)


def test_a_threshold_under_one_is_refused() -> None:
    try:
        chart.chart([], 0)
    except ValueError:
        pass
    else:  # pragma: no cover
        raise AssertionError("a threshold of 0 was accepted")


def _history(counts: list[tuple[int, str]]) -> list[AssessmentRecord]:
    codes = [f"X-{i:02}" for i in range(40)]
    return [
        AssessmentRecord(i + 1, date(2018 + i, 3, 1), frozenset(codes[:n]), kind)
        for i, (n, kind) in enumerate(counts)
    ]


def test_an_event_is_charted_up_to_its_own_assessment() -> None:
    history = _history([(5, "regular"), (2, "advisory"), (6, "regular"), (1, "regular")])
    evaluation = policy.evaluate(policy.Rules(), "VN-1", history)
    warnings = [e for e in evaluation.events if e.kind is EventKind.AT_RISK_WARNING]
    second = warnings[-1]
    kept = chart.frozen_until(evaluation.verdicts, 4, second.assessment_id, second.on)
    assert kept == {
        "threshold": 4,
        "points": [["2018-03-01", 5], ["2019-03-01", 2, "advisory"], ["2020-03-01", 6]],
        "left_out": 0,
    }


def test_a_decision_is_charted_with_the_assessments_up_to_its_day() -> None:
    history = _history([(5, "regular")] * 11)
    evaluation = policy.evaluate(policy.Rules(), "VN-1", history)
    kept = chart.frozen_until(evaluation.verdicts, 4, None, date(2026, 6, 1))
    assert len(kept["points"]) == SHOWN and kept["left_out"] == 9 - SHOWN
    assert kept["points"][-1][0] == "2026-03-01"
    # the assessments after the designation were shown to the reviewer, not counted
    assert kept["points"][-1][2] == "designated"


def test_the_status_chart_reads_each_assessment_kind_and_reason() -> None:
    class Line:
        def __init__(self, on: date, n: int, kind: str, why: str | None) -> None:
            self.assessed_on, self.nc_count, self.kind, self.not_counted = on, n, kind, why

    lines = [
        Line(date(2024, 1, 1), 3, "advisory", "kind_not_counted"),
        Line(date(2025, 1, 1), 5, "regular", None),
        Line(date(2026, 1, 1), 0, "regular", "designated"),
    ]
    c = chart.of_assessments(lines, 4)
    assert [b.why for b in c.bars] == ["advisory", None, "designated"]
    assert c.sparkline[0] == NOT_COUNTED and c.sparkline[2] == NOT_COUNTED
