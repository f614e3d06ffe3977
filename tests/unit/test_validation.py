"""What people type or import, checked by ``bot.validation`` (SPEC §4: ids, dates, emails, codes).

Every refusal is a ``PncError`` (usually ``InvalidInput``) saying what was wrong and what would be
right; nothing else may escape.
"""

from __future__ import annotations

import re
from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot import validation
from bot.countries import Catalogue, Issue
from bot.errors import InvalidDate, InvalidInput, PncError, UnknownIssueCodes

# no example database: these are pure unit tests and write nothing
PROPERTY = settings(database=None, deadline=None)

TODAY = date(2026, 11, 20)
CATALOGUE = Catalogue(
    [
        Issue("CO-01", "Minimum wage not paid", "Compensation"),
        Issue("CO-02", "Overtime wages not paid", "Compensation"),
        Issue("CO-03", "Social insurance not paid", "Compensation"),
        Issue("OS-01", "Emergency exits blocked", "Occupational Safety and Health"),
        Issue("WT-01", "Excessive overtime", "Working Time"),
    ]
)


def refusal(exc_info: pytest.ExceptionInfo[PncError]) -> str:
    return exc_info.value.render()


# --- identifier -------------------------------------------------------------------------------


def test_identifier_is_stripped_and_upper_cased() -> None:
    assert validation.identifier("  vn-1234 ") == "VN-1234"


@pytest.mark.parametrize("value", ["VN-1234", "a.b_c-d", "0", "F1.2_3-4"])
def test_identifier_accepts_letters_digits_dot_underscore_hyphen(value: str) -> None:
    assert validation.identifier(value) == value.upper()


@pytest.mark.parametrize(
    "value",
    ["", "   ", "VN 1234", "VN/1234", "-VN1", ".VN1", "_VN1", "VN#1", "VN@1", "VN,1", "VN;1"],
)
def test_identifier_refuses_other_characters_and_bad_first_character(value: str) -> None:
    with pytest.raises(InvalidInput):
        validation.identifier(value)


def test_identifier_accepts_64_characters_and_refuses_65() -> None:
    assert validation.identifier("a" * 64) == "A" * 64
    with pytest.raises(InvalidInput):
        validation.identifier("a" * 65)


def test_identifier_refusal_names_the_value_and_the_kind_and_shows_an_example() -> None:
    with pytest.raises(InvalidInput) as exc_info:
        validation.identifier("VN 12/34", "factory id")
    assert "VN 12/34" in str(exc_info.value)
    assert "factory id" in str(exc_info.value)
    assert "e.g. `VN-1234`" in (exc_info.value.hint or "")


def test_identifier_refusal_neutralises_control_characters_and_backticks() -> None:
    with pytest.raises(InvalidInput) as exc_info:
        validation.identifier("VN`1\r\nBcc: x\x00\x1b[31m")
    message = str(exc_info.value)
    quoted = message[1 : message.index("` is not")]
    assert "`" not in quoted
    assert not re.search(r"[\x00-\x1f\x7f]", message)
    assert "VN'1" in quoted


def test_identifier_refusal_truncates_a_very_long_value() -> None:
    with pytest.raises(InvalidInput) as exc_info:
        validation.identifier("x" * 500 + "!")
    assert len(str(exc_info.value)) < 120
    assert "…" in str(exc_info.value)


@PROPERTY
@given(
    st.one_of(
        st.text(),
        st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._-]{0,70}", fullmatch=True),
    )
)
def test_identifier_returns_a_valid_identifier_or_raises_invalid_input(value: str) -> None:
    try:
        result = validation.identifier(value)
    except InvalidInput:
        return
    assert validation.IDENTIFIER.fullmatch(result)


# --- text -------------------------------------------------------------------------------------


def test_text_collapses_whitespace() -> None:
    assert validation.text("  Song   Hong\tGarment  ", "name") == "Song Hong Garment"


def test_text_keeps_unicode_letters() -> None:
    assert validation.text("Công ty May Sông Hồng", "name") == "Công ty May Sông Hồng"


@pytest.mark.parametrize("value", ["", "   ", "\t"])
def test_text_refuses_empty_and_names_what_is_missing(value: str) -> None:
    with pytest.raises(InvalidInput) as exc_info:
        validation.text(value, "factory name")
    assert "factory name" in str(exc_info.value)


@pytest.mark.parametrize(
    "value", ["line one\nline two", "a\rb", "a\r\nb", "a\x00b", "bell\x07", "a\x7fb", "a\u2028b"]
)
def test_text_refuses_control_characters_and_line_breaks(value: str) -> None:
    with pytest.raises(InvalidInput) as exc_info:
        validation.text(value, "name")
    assert "control characters" in str(exc_info.value)


def test_text_accepts_up_to_the_length_limit_and_refuses_beyond() -> None:
    assert validation.text("x" * 200, "name") == "x" * 200
    with pytest.raises(InvalidInput) as exc_info:
        validation.text("x" * 201, "name")
    assert "201" in str(exc_info.value)
    assert "200" in (exc_info.value.hint or "")
    assert validation.text("abc", "note", max_length=3) == "abc"
    with pytest.raises(InvalidInput):
        validation.text("abcd", "note", max_length=3)


def test_text_length_is_measured_after_collapsing_whitespace() -> None:
    assert validation.text("a" + " " * 50 + "b", "name", max_length=3) == "a b"


# --- emails -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        "hr@f.example;boss@f.example",
        "hr@f.example,boss@f.example",
        "hr@f.example boss@f.example",
        " hr@f.example ;\n boss@f.example , ",
        "hr@f.example\tboss@f.example",
    ],
)
def test_emails_are_split_on_semicolons_commas_and_whitespace(value: str) -> None:
    assert validation.emails(value) == ("hr@f.example", "boss@f.example")


def test_emails_lower_case_the_domain_only() -> None:
    assert validation.emails("Jane.Doe@Factory.EXAMPLE") == ("Jane.Doe@factory.example",)


def test_emails_remove_duplicates_keeping_the_first_order() -> None:
    assert validation.emails("b@x.example; a@x.example; b@X.example, a@x.example") == (
        "b@x.example",
        "a@x.example",
    )


def test_emails_accept_angle_brackets() -> None:
    assert validation.emails("<a@b.example>") == ("a@b.example",)


def test_emails_accept_an_iterable() -> None:
    assert validation.emails(["a@b.example", " c@D.example "]) == ("a@b.example", "c@d.example")


@pytest.mark.parametrize(
    "value",
    [
        "a@b.example\r\nBcc: x@y.example",
        "a@b.example\nBcc: x@y.example",
        "a@b.example\rBcc:x@y.example",
        ["a@b.example\r\nBcc: x@y.example"],
        ["a@b.example\nx@y.example"],
    ],
)
def test_emails_refuse_header_injection(value: str | list[str]) -> None:
    with pytest.raises(InvalidInput):
        validation.emails(value)


@pytest.mark.parametrize(
    "value", ["plainaddress", "a@b", "@b.example", "a@", "a@-b.example", "a b@c.example@"]
)
def test_emails_refuse_malformed_addresses_and_name_them(value: str) -> None:
    with pytest.raises(InvalidInput) as exc_info:
        validation.emails(value)
    assert "not a valid email address" in str(exc_info.value)


def test_emails_refuse_an_address_longer_than_254_characters() -> None:
    long = "a" * 60 + "@" + ".".join(["b" * 60] * 4) + ".example"
    with pytest.raises(InvalidInput):
        validation.emails(long)


@pytest.mark.parametrize("value", ["", "  ", ";", " , ; ", []])
def test_emails_refuse_an_empty_list(value: str | list[str]) -> None:
    with pytest.raises(InvalidInput) as exc_info:
        validation.emails(value, "factory emails")
    assert "No factory emails given" in str(exc_info.value)
    assert "e.g." in (exc_info.value.hint or "")


_EMAIL_PIECES = st.sampled_from(
    ["a@b.example", "X.Y@Z.EXAMPLE", "<c@d.example>", ";", ",", " ", "\r\n", "\n", "\t", "Bcc:"]
)


@PROPERTY
@given(st.one_of(st.text(), st.lists(_EMAIL_PIECES).map("".join)))
def test_emails_output_never_contains_line_breaks_or_whitespace(value: str) -> None:
    try:
        result = validation.emails(value)
    except InvalidInput:
        return
    assert result
    for address in result:
        assert not any(ch.isspace() for ch in address)
        assert "\r" not in address
        assert "\n" not in address


# --- dates ------------------------------------------------------------------------------------


def test_iso_date_parses_strict_iso() -> None:
    assert validation.iso_date(" 2025-01-05 ") == date(2025, 1, 5)


@pytest.mark.parametrize(
    "value",
    [
        "2025-1-5",
        "20250105",
        "2025-02-30",
        "2025-13-01",
        "05/01/2025",
        "2025-01-05T00:00",
        "",
        "tomorrow",
        "２０２５-01-05",
    ],
)
def test_iso_date_refuses_anything_but_yyyy_mm_dd(value: str) -> None:
    with pytest.raises(InvalidDate) as exc_info:
        validation.iso_date(value, "assessment date")
    assert "assessment date" in str(exc_info.value)
    assert "YYYY-MM-DD" in (exc_info.value.hint or "")


def test_iso_date_refusal_quotes_the_value() -> None:
    with pytest.raises(InvalidDate) as exc_info:
        validation.iso_date("2025-02-30")
    assert "`2025-02-30`" in str(exc_info.value)


def test_assessment_date_accepts_today_and_the_past() -> None:
    assert validation.assessment_date("2026-11-20", TODAY) == TODAY
    assert validation.assessment_date("2000-01-01", TODAY) == date(2000, 1, 1)
    assert validation.assessment_date(date(2024, 3, 1), TODAY) == date(2024, 3, 1)


def test_assessment_date_refuses_the_future_relative_to_the_given_today() -> None:
    with pytest.raises(InvalidDate) as exc_info:
        validation.assessment_date("2026-11-21", TODAY)
    assert "future" in str(exc_info.value)
    assert "2026-11-20" in (exc_info.value.hint or "")
    assert validation.assessment_date("2026-11-21", date(2026, 11, 21)) == date(2026, 11, 21)


def test_assessment_date_refuses_dates_before_2000() -> None:
    with pytest.raises(InvalidDate) as exc_info:
        validation.assessment_date("1999-12-31", TODAY)
    assert "before 2000" in str(exc_info.value)
    with pytest.raises(InvalidDate):
        validation.assessment_date(date(1999, 12, 31), TODAY)


def test_assessment_date_refuses_malformed_text() -> None:
    with pytest.raises(InvalidDate):
        validation.assessment_date("2026-2-1", TODAY)


def test_past_date_names_what_took_place() -> None:
    assert validation.past_date("2026-11-20", TODAY, "meeting date") == TODAY
    with pytest.raises(InvalidDate) as exc_info:
        validation.past_date("2026-12-01", TODAY, "meeting date")
    assert exc_info.value.render() == (
        "The meeting date 2026-12-01 is in the future. "
        "Give the day the meeting took place (today is 2026-11-20)."
    )
    with pytest.raises(InvalidDate) as exc_info:
        validation.past_date("1999-12-31", TODAY, "meeting date")
    assert "assessment" not in exc_info.value.render()
    with pytest.raises(InvalidDate) as exc_info:
        validation.past_date("2026-2-1", TODAY, "meeting date")
    assert "meeting date" in str(exc_info.value)


def test_optional_date_passes_none_and_dates_through_and_reads_empty_as_none() -> None:
    assert validation.optional_date(None) is None
    assert validation.optional_date(date(2027, 6, 30)) == date(2027, 6, 30)
    assert validation.optional_date("") is None
    assert validation.optional_date("   ") is None
    assert validation.optional_date("2027-06-30") == date(2027, 6, 30)


def test_optional_date_refuses_malformed_text() -> None:
    with pytest.raises(InvalidDate) as exc_info:
        validation.optional_date("30/06/2027", "cycle end")
    assert "cycle end" in str(exc_info.value)


# --- issue codes ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        "CO-01,OS-01",
        "CO-01;OS-01",
        "CO-01 OS-01",
        "co-01, os-01",
        " CO-01 ;  os-01 ",
        "CO-01\tOS-01",
        "CO-01\nOS-01",
        "CO-01;;OS-01;",
    ],
)
def test_issue_codes_accept_any_separator_and_case(value: str) -> None:
    assert validation.issue_codes(value, CATALOGUE, "VN") == {"CO-01", "OS-01"}


def test_issue_codes_accept_an_iterable() -> None:
    assert validation.issue_codes([" co-01", "WT-01 "], CATALOGUE, "VN") == {"CO-01", "WT-01"}


def test_issue_codes_collapse_duplicates() -> None:
    assert validation.issue_codes("CO-01, co-01;CO-01", CATALOGUE, "VN") == {"CO-01"}


@pytest.mark.parametrize("value", ["none", "NONE", "None", "-", "", "   ", " none "])
def test_issue_codes_none_dash_or_empty_mean_no_issues(value: str) -> None:
    assert validation.issue_codes(value, CATALOGUE, "VN") == frozenset()


def test_issue_codes_none_in_an_iterable_means_no_issues() -> None:
    assert validation.issue_codes(["none"], CATALOGUE, "VN") == frozenset()
    assert validation.issue_codes([], CATALOGUE, "VN") == frozenset()


def test_issue_codes_unknown_code_suggests_the_close_one() -> None:
    with pytest.raises(UnknownIssueCodes) as exc_info:
        validation.issue_codes("C0-02, OS-01", CATALOGUE, "VN")
    unknown = exc_info.value.unknown
    assert list(unknown) == ["C0-02"]
    assert unknown["C0-02"][0] == "CO-02"
    assert exc_info.value.country == "VN"


def test_issue_codes_report_every_unknown_code_with_its_own_suggestions() -> None:
    with pytest.raises(UnknownIssueCodes) as exc_info:
        validation.issue_codes("CO-01 WT-10 ZZZZZZZZ", CATALOGUE, "VN")
    unknown = exc_info.value.unknown
    assert set(unknown) == {"WT-10", "ZZZZZZZZ"}
    assert "WT-01" in unknown["WT-10"]
    assert unknown["ZZZZZZZZ"] == ()


def test_issue_codes_refusal_names_the_codes_and_tells_how_to_list_them() -> None:
    with pytest.raises(UnknownIssueCodes) as exc_info:
        validation.issue_codes("C0-02", CATALOGUE, "VN")
    rendered = refusal(exc_info)
    assert "`C0-02`" in rendered
    assert "did you mean `CO-02`" in rendered
    assert "`/pnc issues VN`" in rendered and "`pnc-bot issues VN`" in rendered
    assert "`none`" in rendered


def test_issue_codes_unknown_codes_are_an_invalid_input() -> None:
    with pytest.raises(InvalidInput):
        validation.issue_codes("XX-99", CATALOGUE, "VN")


_CODE_PIECES = st.sampled_from(
    ["CO-01", "co-02", "C0-02", "OS-01", "none", "-", ";", ",", " ", "\t", "\n", "`", "XX-1"]
)


@PROPERTY
@given(st.one_of(st.text(), st.lists(_CODE_PIECES).map("".join)))
def test_issue_codes_raise_only_pnc_errors_for_any_text(value: str) -> None:
    try:
        result = validation.issue_codes(value, CATALOGUE, "VN")
    except UnknownIssueCodes as exc:
        assert exc.unknown
        assert all(code not in CATALOGUE for code in exc.unknown)
        return
    except PncError:
        return
    assert result <= CATALOGUE.codes


# --- language and assessment kind -------------------------------------------------------------


@pytest.mark.parametrize(("value", "expected"), [("vi", "vi"), (" EN ", "en"), ("Vi", "vi")])
def test_language_accepts_vi_and_en_in_any_case(value: str, expected: str) -> None:
    assert validation.language(value) == expected


@pytest.mark.parametrize("value", [None, "", "  "])
def test_language_empty_means_the_country_default(value: str | None) -> None:
    assert validation.language(value) is None


@pytest.mark.parametrize("value", ["fr", "vietnamese", "e n"])
def test_language_refuses_others_and_says_which_are_supported(value: str) -> None:
    with pytest.raises(InvalidInput) as exc_info:
        validation.language(value)
    assert f"`{value}`" in str(exc_info.value)
    assert "`vi`" in (exc_info.value.hint or "")
    assert "`en`" in (exc_info.value.hint or "")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, "regular"),
        ("", "regular"),
        ("regular", "regular"),
        (" Unannounced ", "unannounced"),
    ],
)
def test_assessment_kind_defaults_to_regular_and_accepts_unannounced(
    value: str | None, expected: str
) -> None:
    assert validation.assessment_kind(value) == expected


def test_assessment_kind_refuses_others() -> None:
    with pytest.raises(InvalidInput) as exc_info:
        validation.assessment_kind("surprise")
    assert "`surprise`" in str(exc_info.value)
    assert "`unannounced`" in (exc_info.value.hint or "")
