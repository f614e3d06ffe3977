"""The Zero Tolerance Protocol, pure (#13): its configuration per country, the findings of a
history (every live assessment of any kind with a zero-tolerance code, each with a stable key),
what becomes of a finding without a case, the deadlines, and a case moving forward only."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot import zero_tolerance as zt
from bot.countries import load_config
from bot.errors import ConfigError
from bot.policy import AssessmentRecord
from bot.settings import Settings
from bot.vocabulary import NoticeMode, ZtpStatus
from bot.zero_tolerance import ZeroTolerance

NOW = datetime(2026, 11, 20, 3, 0, tzinfo=UTC)
CODES = ["CL-01", "CL-02", "FL-01", "OS-01", "CO-01", "WT-01"]


def config(tmp_path: Path, toml: str) -> ZeroTolerance:
    path = tmp_path / "pnc.toml"
    path.write_text(toml, encoding="utf-8")
    return load_config(Settings(config_path=path)).countries["VN"].ztp


# --- configuration ------------------------------------------------------------------------------


def test_the_builtin_catalogue_marks_child_and_forced_labour() -> None:
    ztp = load_config(Settings()).countries["VN"].ztp
    assert ztp.codes == {"CL-01", "CL-02", "CL-03", "FL-01", "FL-02", "FL-03", "FL-04"}
    assert (ztp.investigation_hours, ztp.action_plan_hours) == (48, 72)
    assert ztp.emails == () and ztp.language == "vi"  # Viet Nam's Inspectorate reads Vietnamese
    assert load_config(Settings()).countries["KH"].ztp.language == "en"


def test_a_country_names_its_codes_addresses_language_and_deadlines(tmp_path: Path) -> None:
    ztp = config(
        tmp_path,
        '[countries.VN]\nzero_tolerance = ["cl-01", "OS-01"]\n'
        'ztp_emails = ["ztp@molisa.example", "duty@molisa.example"]\n'
        'ztp_language = "en"\nztp_investigation_hours = 24\nztp_action_plan_hours = 36\n',
    )
    assert ztp.codes == {"CL-01", "OS-01"}
    assert ztp.emails == ("ztp@molisa.example", "duty@molisa.example")
    assert (ztp.language, ztp.investigation_hours, ztp.action_plan_hours) == ("en", 24, 36)


def test_an_unknown_code_is_refused_with_the_codes_it_may_mean(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as refused:
        config(tmp_path, '[countries.VN]\nzero_tolerance = ["CL-1"]\n')
    assert "zero_tolerance" in refused.value.message and "CL-1" in refused.value.message
    assert "Did you mean" in str(refused.value.hint) and "CL-01" in str(refused.value.hint)


def test_bad_addresses_are_refused_naming_the_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as refused:
        config(tmp_path, '[countries.VN]\nztp_emails = ["not an address"]\n')
    assert "ztp_emails" in refused.value.message


def test_the_action_plan_falls_after_the_investigation(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as refused:
        config(tmp_path, "[countries.VN]\nztp_investigation_hours = 72\n")
    assert "ztp_action_plan_hours (72) is not after ztp_investigation_hours (72)" in str(
        refused.value
    )
    with pytest.raises(ConfigError):
        config(tmp_path, "[countries.VN]\nztp_investigation_hours = 0\n")


def test_a_configured_catalogue_marks_its_own_codes(tmp_path: Path) -> None:
    ztp = config(
        tmp_path,
        "[[countries.VN.issues]]\n"
        'code = "X-01"\nname = "Children at work"\ncluster = "Child Labour"\n'
        "zero_tolerance = true\n"
        "[[countries.VN.issues]]\n"
        'code = "X-02"\nname = "Overtime"\ncluster = "Working Time"\n',
    )
    assert ztp.codes == {"X-01"}


def test_a_catalogue_file_keeps_the_builtin_marks_of_the_codes_it_shares(tmp_path: Path) -> None:
    (tmp_path / "vn.csv").write_text(
        "code,name,name_vi,cluster\n"
        "CL-01,Child labour,,Child Labour\nWT-01,Overtime,,Working Time\n",
        encoding="utf-8",
    )
    assert config(tmp_path, '[countries.VN]\nissues_file = "vn.csv"\n').codes == {"CL-01"}


def test_a_catalogue_file_marks_nothing_unless_the_codes_are_named(tmp_path: Path) -> None:
    (tmp_path / "vn.csv").write_text(
        "code,name,name_vi,cluster\nX-01,Children at work,,Child Labour\n", encoding="utf-8"
    )
    assert config(tmp_path, '[countries.VN]\nissues_file = "vn.csv"\n').codes == frozenset()
    named = config(tmp_path, '[countries.VN]\nissues_file = "vn.csv"\nzero_tolerance = ["X-01"]\n')
    assert named.codes == {"X-01"}


# --- findings ------------------------------------------------------------------------------------

assessment = st.builds(
    AssessmentRecord,
    id=st.integers(1, 10_000),
    assessed_on=st.dates(date(2015, 1, 1), date(2026, 11, 20)),
    nc_issues=st.frozensets(st.sampled_from(CODES), max_size=4),
    kind=st.sampled_from(["regular", "advisory", "verification", "unannounced"]),
)
histories = st.lists(assessment, max_size=12, unique_by=lambda a: a.id)
zt_codes = st.frozensets(st.sampled_from(CODES), max_size=4)


@given(history=histories, codes=zt_codes)
def test_each_zero_tolerance_code_of_each_assessment_is_one_finding(
    history: list[AssessmentRecord], codes: frozenset[str]
) -> None:
    found = zt.findings("VN-1", history, codes)
    expected = {(a.id, c) for a in history for c in a.nc_issues if c in codes}
    assert {(f.assessment_id, f.code) for f in found} == expected
    assert len({f.key for f in found}) == len(found) == len(expected)
    assert all(f.key == f"ztp:{f.assessment_id}:{f.code}" for f in found)


@given(history=histories, more=histories, codes=zt_codes)
def test_keys_are_stable_as_the_history_grows(
    history: list[AssessmentRecord], more: list[AssessmentRecord], codes: frozenset[str]
) -> None:
    """Re-evaluating a longer history finds the same keys again: nothing opens twice."""
    before = {f.key for f in zt.findings("VN-1", history, codes)}
    ids = {a.id for a in history}
    grown = history + [a for a in more if a.id not in ids]
    assert before <= {f.key for f in zt.findings("VN-1", grown, codes)}


def test_an_advisory_visit_before_public_reporting_is_a_finding_too() -> None:
    old = AssessmentRecord(7, date(2016, 1, 5), frozenset({"CL-01"}), "advisory")
    (finding,) = zt.findings("VN-1", [old], frozenset({"CL-01"}))
    assert (finding.key, finding.kind) == ("ztp:7:CL-01", "advisory")


def test_what_becomes_of_a_finding_without_a_case() -> None:
    ztp = ZeroTolerance()
    fresh, stale = NOW - timedelta(hours=71), NOW - timedelta(hours=73)
    assert zt.handling(ztp, NoticeMode.DUE, fresh, NOW) is zt.Handling.ESCALATE
    assert zt.handling(ztp, NoticeMode.HELD, fresh, NOW) is zt.Handling.ESCALATE
    assert zt.handling(ztp, NoticeMode.DUE, stale, NOW) is zt.Handling.LEAVE
    assert zt.handling(ztp, NoticeMode.SUPPRESSED, fresh, NOW) is zt.Handling.RECORD_ONLY


def test_deadlines_follow_the_opening() -> None:
    d = zt.deadlines(NOW, ZeroTolerance(investigation_hours=24, action_plan_hours=30))
    assert (d.investigation, d.action_plan) == (
        NOW + timedelta(hours=24),
        NOW + timedelta(hours=30),
    )


# --- progress -------------------------------------------------------------------------------------

status = st.sampled_from(list(ZtpStatus))


@given(current=status, wanted=st.sampled_from(list(zt.WORDS.values())))
def test_a_case_moves_forward_only_and_stays_closed(current: ZtpStatus, wanted: ZtpStatus) -> None:
    move = zt.move(current, wanted)
    if current is ZtpStatus.CLOSED:
        assert move is zt.Move.CLOSED
    elif current is wanted:
        assert move is zt.Move.SAME
    else:
        forward = zt.ORDER.index(wanted) > zt.ORDER.index(current)
        assert move is (zt.Move.FORWARD if forward else zt.Move.BACKWARDS)


def test_a_deadline_is_missed_until_its_step_or_a_later_one_is_recorded() -> None:
    assert zt.overdue("open", "investigation") and zt.overdue("open", "action_plan")
    assert not zt.overdue("investigating", "investigation")
    assert zt.overdue("investigating", "action_plan")
    assert not zt.overdue("action_plan", "action_plan") and not zt.overdue("closed", "action_plan")
    assert zt.WORDS["action-plan"] is ZtpStatus.ACTION_PLAN and zt.word_of("action_plan") == (
        "action-plan"
    )
