"""Properties of ``bot.policy.evaluate`` checked against a small reference model.

The model is written from SPEC §2 alone and shares no code with the policy: over the counted
assessments (covered country, of a kind the country counts, on or after the public-reporting
date, in date order) it writes 'F' for a failing assessment (count >= threshold) and 'P'
otherwise. The factory is designated at the first place where 'F' * consecutive occurs;
otherwise the streak is the number of trailing 'F's.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from hypothesis import assume, event, given, settings
from hypothesis import strategies as st

from bot.policy import AssessmentRecord, ReadmissionRecord, Rules, evaluate

FACTORY = "VN-0042"
CODES = tuple(f"CO-{i:02d}" for i in range(1, 9))
#: every assessment kind, and those the framework counts unless a country says otherwise
KINDS = ("regular", "unannounced", "advisory", "verification")
PUBLICLY_REPORTED = frozenset({"regular", "unannounced"})
EARLIEST = date(2010, 1, 1)
LATEST = date(2026, 11, 1)

# no example database: these are pure unit tests and write nothing
PROPERTY = settings(database=None)


# ---------------------------------------------------------------------------------------------
# Reference model
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Expected:
    state: str
    streak: int
    warnings: int  # at-risk warnings before designation (or in total when not designated)
    stops: int  # passes right after a failure, before designation
    basis: tuple[int, ...]  # ids of the designating run
    letters: str


def model(rules: Rules, assessments: list[AssessmentRecord]) -> Expected:
    if not rules.pnc_enabled:
        return Expected("not_covered", 0, 0, 0, (), "")
    counted = sorted(
        (
            a
            for a in assessments
            if a.assessed_on >= rules.public_reporting_since and a.kind in rules.counted_kinds
        ),
        key=lambda a: a.assessed_on,
    )
    letters = "".join("F" if len(a.nc_issues) >= rules.threshold else "P" for a in counted)
    start = letters.find("F" * rules.consecutive)
    if start >= 0:
        end = start + rules.consecutive  # one past the designating assessment
        before = letters[: end - 1]
        basis = tuple(a.id for a in counted[start:end])
        return Expected(
            "pnc", rules.consecutive, before.count("F"), before.count("FP"), basis, letters
        )
    trailing = len(letters) - len(letters.rstrip("F"))
    return Expected(
        "at_risk" if trailing else "not_at_risk",
        trailing,
        letters.count("F"),
        letters.count("FP"),
        (),
        letters,
    )


# ---------------------------------------------------------------------------------------------
# Strategies
# ---------------------------------------------------------------------------------------------


@st.composite
def issue_sets(draw: st.DrawFn, min_count: int = 0, max_count: int = len(CODES)) -> frozenset:
    count = draw(st.integers(min_count, max_count))
    return frozenset(draw(st.permutations(CODES))[:count])


@st.composite
def histories(
    draw: st.DrawFn, max_size: int = 12, troubled: bool | None = None
) -> list[AssessmentRecord]:
    """Assessments with unique dates (one per factory and day) and unique ids in any order;
    a ``troubled`` factory's assessments (by default: one factory in two) mostly find 6 or more
    issues, so that designations are common."""
    if troubled is None:
        troubled = draw(st.booleans())
    dates = draw(st.lists(st.dates(EARLIEST, LATEST), unique=True, max_size=max_size))
    offset = draw(st.integers(0, 10_000))
    ids = draw(st.permutations(range(offset + 1, offset + len(dates) + 1)))
    # mostly assessments subject to public reporting, with advisory and verification visits
    kinds = st.sampled_from([*KINDS[:2], *KINDS[:2], *KINDS])
    issues = (
        issue_sets(min_count=6) | issue_sets(min_count=6) | issue_sets()
        if troubled
        else issue_sets()
    )
    return [
        AssessmentRecord(i, d, draw(issues), draw(kinds)) for i, d in zip(ids, dates, strict=True)
    ]


def rules_strategy(
    *,
    covered: bool = False,
    consecutive: st.SearchStrategy[int] | None = None,
    counted: st.SearchStrategy[frozenset[str]] | None = None,
) -> st.SearchStrategy[Rules]:
    """Any rules with threshold 1..6, consecutive 1..5 and counted kinds the framework's or any
    others (``covered``: framework applies)."""
    any_kinds = st.sets(st.sampled_from(KINDS), min_size=1).map(frozenset)
    return st.builds(
        Rules,
        pnc_enabled=st.just(True) if covered else st.sampled_from([True, True, True, True, False]),
        public_reporting_since=st.just(date(2017, 7, 1)) | st.dates(EARLIEST, LATEST),
        threshold=st.integers(1, 6),
        consecutive=st.integers(1, 5) if consecutive is None else consecutive,
        counted_kinds=(st.just(PUBLICLY_REPORTED) | any_kinds) if counted is None else counted,
    )


@st.composite
def readmission_lists(
    draw: st.DrawFn, assessments: list[AssessmentRecord], max_size: int = 4
) -> list[ReadmissionRecord]:
    """Applications, mostly dated shortly after some assessment so that some are accepted."""
    near = sorted(a.assessed_on for a in assessments)
    days = st.integers(0, 120).map(lambda n: timedelta(days=n))
    when = st.dates(EARLIEST, LATEST)
    if near:
        late = near[len(near) // 2 :]  # designations tend to come late in a history
        when = (
            st.builds(lambda d, n: d + n, st.sampled_from(late), days)
            | st.builds(lambda d, n: d + n, st.sampled_from(near), days)
            | when
        )
    count = draw(st.integers(0, max_size))
    offset = draw(st.integers(0, 1_000))
    records = []
    for i in draw(st.permutations(range(offset + 1, offset + count + 1))):
        applied = draw(when)
        unannounced = applied + draw(days) if draw(st.booleans()) else None
        decided = applied + draw(days) if draw(st.booleans()) else None
        approved = None if decided is None else draw(st.booleans())
        records.append(ReadmissionRecord(i, applied, unannounced, decided, approved))
    return records


@st.composite
def histories_with_readmissions(
    draw: st.DrawFn, max_size: int = 12
) -> tuple[list[AssessmentRecord], list[ReadmissionRecord]]:
    assessments = draw(histories(max_size=max_size))
    return assessments, draw(readmission_lists(assessments))


# ---------------------------------------------------------------------------------------------
# Properties
# ---------------------------------------------------------------------------------------------


@PROPERTY
@given(rules=rules_strategy(), assessments=histories())
def test_state_and_streak_match_reference_model(rules, assessments):
    expected = model(rules, assessments)
    event(f"state={expected.state}")
    ev = evaluate(rules, FACTORY, assessments)
    assert (ev.state, ev.streak) == (expected.state, expected.streak), expected.letters
    assert tuple(a.id for a in ev.basis) == expected.basis


@PROPERTY
@given(rules=rules_strategy(), history=histories_with_readmissions(), rnd=st.randoms())
def test_result_depends_on_history_not_arrival_order(rules, history, rnd):
    assessments, readmissions = history
    expected = evaluate(rules, FACTORY, assessments, readmissions)
    event(f"state={expected.state}")
    got = evaluate(
        rules,
        FACTORY,
        rnd.sample(assessments, len(assessments)),
        rnd.sample(readmissions, len(readmissions)),
    )
    assert got == expected


@PROPERTY
@given(rules=rules_strategy(), history=histories_with_readmissions(max_size=16))
def test_streak_never_exceeds_consecutive(rules, history):
    ev = evaluate(rules, FACTORY, *history)
    event(f"state={ev.state}")
    assert 0 <= ev.streak <= rules.consecutive
    if ev.state == "at_risk":
        assert 1 <= ev.streak < rules.consecutive
        assert ev.label == f"At risk ({ev.streak} of {rules.consecutive})"
    if ev.state in ("pnc", "readmission_review"):
        assert ev.streak == rules.consecutive
        assert len(ev.basis) == rules.consecutive


@PROPERTY
@given(
    # with consecutive 1 every failing assessment designates, so the premise never holds; the
    # regular assessments added below count
    rules=rules_strategy(
        covered=True,
        consecutive=st.integers(2, 5),
        counted=st.sets(st.sampled_from(KINDS)).map(lambda k: frozenset({"regular", *k})),
    ),
    assessments=histories(max_size=8, troubled=False),
    data=st.data(),
)
def test_pass_after_failing_latest_assessment_stops_process(rules, assessments, data):
    latest = max([rules.public_reporting_since, *(a.assessed_on for a in assessments)])
    next_id = max([0, *(a.id for a in assessments)]) + 1
    days_later = st.integers(1, 400).map(lambda n: timedelta(days=n))
    failing = AssessmentRecord(
        next_id,
        latest + data.draw(days_later, label="failing after"),
        data.draw(issue_sets(min_count=rules.threshold), label="failing issues"),
    )
    history = [*assessments, failing]
    before = evaluate(rules, FACTORY, history)
    assume(before.state == "at_risk")  # latest counted assessment fails, not designated
    passing = AssessmentRecord(
        next_id + 1,
        failing.assessed_on + data.draw(days_later, label="passing after"),
        data.draw(issue_sets(max_count=rules.threshold - 1), label="passing issues"),
    )
    after = evaluate(rules, FACTORY, [*history, passing])
    stopped = after.events[-1]
    assert stopped.kind == "process_stopped"
    assert stopped.assessment_id == passing.id
    assert stopped.key == f"{FACTORY}/process_stopped/a{passing.id}"
    assert after.events[:-1] == before.events  # earlier notices are still supported
    assert (after.state, after.streak) == ("not_at_risk", 0)


@PROPERTY
@given(rules=rules_strategy(covered=True), assessments=histories())
def test_warnings_and_stops_match_reference_model(rules, assessments):
    expected = model(rules, assessments)
    ev = evaluate(rules, FACTORY, assessments)
    kinds = [e.kind for e in ev.events]
    assert kinds.count("at_risk_warning") == expected.warnings, expected.letters
    assert kinds.count("process_stopped") == expected.stops, expected.letters
    assert kinds.count("pnc_designated") == (1 if expected.state == "pnc" else 0)
    warned_k = [e.k for e in ev.events if e.kind == "at_risk_warning"]
    assert all(1 <= k < rules.consecutive for k in warned_k)


@PROPERTY
@given(rules=rules_strategy(), history=histories_with_readmissions())
def test_event_keys_are_unique(rules, history):
    ev = evaluate(rules, FACTORY, *history)
    event(f"readmission events={any(e.application_id for e in ev.events)}")
    keys = [e.key for e in ev.events]
    assert len(keys) == len(set(keys))


@PROPERTY
@given(rules=rules_strategy(), history=histories_with_readmissions())
def test_an_assessment_of_a_kind_not_counted_changes_nothing_but_is_shown(rules, history):
    assessments, readmissions = history
    others = [a for a in assessments if a.kind not in rules.counted_kinds]
    event(f"kinds not counted in the history={bool(others)}")
    ev = evaluate(rules, FACTORY, assessments, readmissions)
    without = evaluate(
        rules, FACTORY, [a for a in assessments if a.kind in rules.counted_kinds], readmissions
    )
    assert (ev.state, ev.streak, ev.events, ev.basis) == (
        without.state,
        without.streak,
        without.events,
        without.basis,
    )
    assert len(ev.verdicts) == len(assessments)  # recorded and shown
    for verdict in ev.verdicts:
        if verdict.assessment.kind not in rules.counted_kinds:
            assert not verdict.counted
            assert verdict.not_counted == "kind_not_counted"
