"""What counts as an assessment (FAQ: "assessments subject to public reporting"): advisory and
progress-report verification visits are recorded and shown but never counted, unless a country
says otherwise (``counted_kinds``); the rules' fingerprint, the grammar, the form and the words
people read."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest

from bot.countries import load_config
from bot.errors import ConfigError, InvalidInput
from bot.policy import (
    COUNTED_KINDS,
    AssessmentKind,
    AssessmentRecord,
    EventKind,
    NotCounted,
    ReadmissionRecord,
    Rules,
    State,
    evaluate,
)
from bot.render import render_slack, render_text
from bot.settings import Settings
from bot.usecases.read_models import AssessmentLine, IssueLine, StatusView
from bot.usecases.rules import fingerprint
from bot.validation import ASSESSMENT_KINDS, assessment_kind
from handlers.blocks import assess_modal
from handlers.commands import USAGE, parse

FACTORY = "VN-0042"
VN = Rules()
W, STOP, PNC = EventKind.AT_RISK_WARNING, EventKind.PROCESS_STOPPED, EventKind.PNC_DESIGNATED


def issues(count: int) -> frozenset[str]:
    return frozenset(f"CO-{i:02d}" for i in range(1, count + 1))


def history(*spec: tuple[str, int, str]) -> list[AssessmentRecord]:
    """(ISO date, issue count, kind) → assessments with ids 1, 2, … in listed order."""
    return [
        AssessmentRecord(n + 1, date.fromisoformat(on), issues(count), kind)
        for n, (on, count, kind) in enumerate(spec)
    ]


def summary(rules: Rules, assessments: list[AssessmentRecord]) -> list[tuple[EventKind, int]]:
    return [(e.kind, e.assessment_id or 0) for e in evaluate(rules, FACTORY, assessments).events]


# --- the policy: FAQ cases ---------------------------------------------------------------------


def test_the_kinds_are_the_two_assessments_and_the_two_visits() -> None:
    assert ASSESSMENT_KINDS == ("regular", "unannounced", "advisory", "verification")
    assert VN.counted_kinds == COUNTED_KINDS == {"regular", "unannounced"}


@pytest.mark.parametrize("kind", ["advisory", "verification"])
def test_a_visit_finding_many_issues_starts_no_streak_and_gives_no_event(kind: str) -> None:
    ev = evaluate(VN, FACTORY, history(("2026-03-01", 9, kind)))
    assert (ev.state, ev.streak, ev.events) == (State.NOT_AT_RISK, 0, ())
    (verdict,) = ev.verdicts
    assert (verdict.counted, verdict.fails, verdict.not_counted) == (False, True, NotCounted.KIND)


@pytest.mark.parametrize("kind", ["advisory", "verification"])
def test_a_visit_finding_few_issues_does_not_stop_the_process(kind: str) -> None:
    """An advisory visit entered between two failing assessments neither stops the process nor
    breaks the streak: the next failing assessment warns 2 of 3."""
    assessments = history(
        ("2025-03-01", 5, "regular"), ("2025-09-01", 0, kind), ("2026-03-01", 6, "regular")
    )
    assert summary(VN, assessments) == [(W, 1), (W, 3)]
    assert evaluate(VN, FACTORY, assessments).label == "At risk (2 of 3)"


def test_a_visit_failing_after_two_failing_assessments_does_not_designate() -> None:
    assessments = history(
        ("2024-03-01", 5, "regular"),
        ("2025-03-01", 5, "unannounced"),
        ("2026-03-01", 9, "advisory"),
    )
    ev = evaluate(VN, FACTORY, assessments)
    assert (ev.state, ev.streak) == (State.AT_RISK, 2)
    assert PNC not in [e.kind for e in ev.events]


def test_an_unannounced_assessment_counts_by_default() -> None:
    assessments = history(
        ("2024-03-01", 5, "regular"), ("2025-03-01", 5, "regular"), ("2026-03-01", 4, "unannounced")
    )
    assert evaluate(VN, FACTORY, assessments).state == State.PNC


def test_a_country_may_count_verification_visits() -> None:
    rules = replace(VN, counted_kinds=frozenset({"regular", "unannounced", "verification"}))
    assessments = history(("2025-03-01", 5, "regular"), ("2026-03-01", 1, "verification"))
    assert summary(rules, assessments) == [(W, 1), (STOP, 2)]
    assert summary(VN, assessments) == [(W, 1)]


def test_a_country_may_count_regular_assessments_only() -> None:
    rules = replace(VN, counted_kinds=frozenset({"regular"}))
    ev = evaluate(rules, FACTORY, history(("2026-03-01", 5, "unannounced")))
    assert (ev.state, ev.verdicts[0].not_counted) == (State.NOT_AT_RISK, NotCounted.KIND)


def test_the_kind_is_the_reason_given_before_the_date_or_the_designation() -> None:
    """An advisory visit would not count whenever it took place: that is its reason, also before
    public reporting began, while designated, or in a country not covered."""
    assessments = history(
        ("2016-01-01", 5, "advisory"),
        ("2016-02-01", 5, "regular"),
        ("2024-03-01", 5, "regular"),
        ("2025-03-01", 5, "regular"),
        ("2025-09-01", 5, "regular"),
        ("2026-01-01", 2, "advisory"),
        ("2026-02-01", 2, "regular"),
    )
    reasons = [v.not_counted for v in evaluate(VN, FACTORY, assessments).verdicts]
    assert reasons == [
        NotCounted.KIND,
        NotCounted.BEFORE_PUBLIC_REPORTING,
        None,
        None,
        None,
        NotCounted.KIND,
        NotCounted.DESIGNATED,
    ]
    uncovered = evaluate(replace(VN, pnc_enabled=False), FACTORY, assessments[:2])
    assert [v.not_counted for v in uncovered.verdicts] == [NotCounted.KIND, NotCounted.NOT_COVERED]


def test_a_verification_visit_while_under_review_changes_nothing() -> None:
    assessments = history(
        ("2024-03-01", 5, "regular"),
        ("2025-03-01", 5, "regular"),
        ("2025-09-01", 5, "regular"),
        ("2026-02-01", 0, "verification"),
    )
    applied = ReadmissionRecord(1, date(2026, 1, 10))
    ev = evaluate(VN, FACTORY, assessments, [applied])
    assert ev.state == State.READMISSION_REVIEW
    assert ev.verdicts[-1].not_counted == NotCounted.KIND


@pytest.mark.parametrize("kinds", [frozenset({"surprise"}), frozenset({"regular", "Advisory"})])
def test_rules_refuse_unknown_kinds(kinds: frozenset[str]) -> None:
    with pytest.raises(ValueError, match="unknown assessment kinds"):
        Rules(counted_kinds=kinds)


def test_rules_refuse_counting_nothing() -> None:
    with pytest.raises(ValueError, match="at least one"):
        Rules(counted_kinds=frozenset())


# --- the configuration and the fingerprint ------------------------------------------------------


def config(tmp_path: Path, text: str) -> Any:
    path = tmp_path / "pnc.toml"
    path.write_text(text, encoding="utf-8")
    return load_config(Settings(config_path=path))


def test_counted_kinds_default_to_the_assessments_subject_to_public_reporting() -> None:
    countries = load_config(Settings()).countries
    assert {c.rules.counted_kinds for c in countries.values()} == {COUNTED_KINDS}


def test_a_country_sets_its_counted_kinds_in_the_config_file(tmp_path: Path) -> None:
    countries = config(
        tmp_path, '[countries.VN]\ncounted_kinds = ["regular", "Unannounced", "verification"]\n'
    ).countries
    assert countries["VN"].rules.counted_kinds == {"regular", "unannounced", "verification"}
    assert countries["KH"].rules.counted_kinds == COUNTED_KINDS


def test_unknown_kinds_are_refused_at_start_up_naming_them(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        config(tmp_path, '[countries.VN]\ncounted_kinds = ["regular", "surprise", "spot"]\n')
    text = caught.value.render()
    assert "Country VN" in text and "'spot', 'surprise'" in text
    assert "regular, unannounced, advisory, verification" in text


def test_counting_no_kind_is_refused_at_start_up(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="counted_kinds is empty"):
        config(tmp_path, "[countries.VN]\ncounted_kinds = []\n")


def test_a_fingerprint_at_the_default_kinds_is_the_one_recorded_before_kinds_existed() -> None:
    """Upgrading re-evaluates no factory of a country left at the default."""
    before = hashlib.sha256(b"True|2017-07-01|4|3").hexdigest()
    assert fingerprint(VN) == before
    assert fingerprint(replace(VN, counted_kinds=frozenset({"unannounced", "regular"}))) == before


def test_a_fingerprint_changes_with_the_counted_kinds_whatever_their_order() -> None:
    with_visits = replace(VN, counted_kinds=frozenset({"regular", "unannounced", "verification"}))
    regular_only = replace(VN, counted_kinds=frozenset({"regular"}))
    prints = {fingerprint(VN), fingerprint(with_visits), fingerprint(regular_only)}
    assert len(prints) == 3
    same = replace(VN, counted_kinds=frozenset(["verification", "unannounced", "regular"]))
    assert fingerprint(same) == fingerprint(with_visits)


# --- what people type ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"), [("advisory", "advisory"), (" Verification ", "verification")]
)
def test_the_visits_are_assessment_kinds(value: str, expected: str) -> None:
    assert assessment_kind(value) == expected


def test_a_wrong_kind_is_refused_naming_the_four() -> None:
    with pytest.raises(InvalidInput) as caught:
        assessment_kind("spot")
    hint = caught.value.hint or ""
    assert all(f"`{k}`" in hint for k in ASSESSMENT_KINDS), hint


@pytest.mark.parametrize("kind", ["advisory", "Verification", "unannounced", "regular"])
def test_assess_reads_a_kind_as_the_last_word(kind: str) -> None:
    args = parse(f"assess VN-1001 2026-03-01 CO-01,CO-02 {kind}").args
    assert (args["codes"], args["kind"]) == ("CO-01,CO-02", kind.lower())
    assert "advisory|verification" in USAGE["assess"]


def test_amend_takes_a_kind_in_place_of_the_codes() -> None:
    args = parse("amend VN-1001 2026-03-01 advisory entered as a regular assessment").args
    assert (args["codes"], args["kind"]) == (None, "advisory")
    assert args["reason"] == "entered as a regular assessment"
    codes = parse("amend VN-1001 2026-03-01 CO-01 advisory visit, wrongly coded").args
    assert (codes["codes"], codes["kind"]) == ("CO-01", None)
    assert codes["reason"] == "advisory visit, wrongly coded"


def test_the_form_offers_every_kind_saying_which_do_not_count() -> None:
    countries = load_config(Settings()).countries
    view = assess_modal(countries["VN"], date(2026, 11, 20), None)
    (kind_block,) = [b for b in view["blocks"] if b["block_id"] == "kind"]
    options = {o["value"]: o["text"]["text"] for o in kind_block["element"]["options"]}
    assert options == {
        "regular": "Regular assessment",
        "unannounced": "Unannounced assessment",
        "advisory": "Advisory visit (not counted)",
        "verification": "Progress-report verification visit (not counted)",
    }
    assert kind_block["element"]["initial_option"]["value"] == "regular"
    counting = replace(
        countries["VN"],
        rules=replace(VN, counted_kinds=frozenset({"regular", "unannounced", "verification"})),
    )
    view = assess_modal(counting, date(2026, 11, 20), None)
    (kind_block,) = [b for b in view["blocks"] if b["block_id"] == "kind"]
    labels = [o["text"]["text"] for o in kind_block["element"]["options"]]
    assert "Progress-report verification visit" in labels


# --- what people read ---------------------------------------------------------------------------


def line(n: int, on: str, kind: str, counted: bool, why: str | None) -> AssessmentLine:
    return AssessmentLine(
        id=n,
        assessed_on=date.fromisoformat(on),
        kind=kind,
        nc_issues=(IssueLine("CO-01", "Minimum wage"),),
        counted=counted,
        fails=False,
        not_counted=why,
        submitted_by="U0ASSESSOR",
        submitted_at=datetime(2026, 3, 1),
        source="slack",
    )


VIEW = StatusView(
    factory_id="VN-1",
    name="Saigon Stitch",
    country="VN",
    country_name="Viet Nam",
    language="vi",
    cycle_end=None,
    state="not_at_risk",
    label="Not at risk",
    streak=0,
    threshold=4,
    consecutive=3,
    public_reporting_since=date(2017, 7, 1),
    designated=False,
    assessments=(
        line(1, "2026-01-10", "advisory", False, "kind_not_counted"),
        line(2, "2026-02-10", "verification", False, "kind_not_counted"),
        line(3, "2026-03-10", "unannounced", True, None),
    ),
)


def test_slack_history_and_status_say_why_a_visit_is_not_counted() -> None:
    for text in (
        render_slack("slack/history.txt", v=VIEW),
        render_slack("slack/status.txt", v=VIEW, shown=VIEW.latest(5)),
    ):
        assert "2026-01-10: 1 issue, not counted (advisory visit)" in text, text
        assert "2026-02-10: 1 issue, not counted (verification visit)" in text, text
        assert "2026-03-10 (unannounced): 1 issue, passes" in text, text


def test_the_console_status_says_why_a_visit_is_not_counted() -> None:
    text = render_text("cli/status.txt", v=VIEW, shown=VIEW.latest(5))
    assert "2026-01-10  1 issue  not counted (advisory visit)" in text, text
    assert "2026-02-10  1 issue  not counted (verification visit)" in text, text


def test_status_json_keeps_counted_false_and_gives_the_reason() -> None:
    rows = VIEW.to_json()["assessments"]
    assert [(a["kind"], a["counted"], a["not_counted"]) for a in rows] == [
        ("advisory", False, "kind_not_counted"),
        ("verification", False, "kind_not_counted"),
        ("unannounced", True, None),
    ]


def test_every_kind_is_a_policy_kind() -> None:
    assert {k.value for k in AssessmentKind} == set(ASSESSMENT_KINDS)
