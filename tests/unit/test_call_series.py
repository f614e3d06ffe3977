"""Quarterly buyer calls that recur: when each call of a series falls (month ends, daylight saving
time), the ``calls`` grammar and what the calendar and the replies say."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from bot.errors import MalformedCommand
from bot.render import render_slack
from bot.usecases.calls import (
    PLANNED,
    Calendar,
    CallLine,
    SeriesLine,
    SeriesRemoved,
    occurrence,
    occurrence_day,
)
from handlers.blocks import phrase
from handlers.commands import USAGE, parse

HCMC = ZoneInfo("Asia/Ho_Chi_Minh")
BERLIN = ZoneInfo("Europe/Berlin")


def days(first: str, count: int = 5) -> list[str]:
    return [occurrence_day(date.fromisoformat(first), n).isoformat() for n in range(count)]


def test_a_series_falls_every_three_months_on_the_same_day() -> None:
    assert days("2026-12-10") == [
        "2026-12-10",
        "2027-03-10",
        "2027-06-10",
        "2027-09-10",
        "2027-12-10",
    ]


def test_a_series_on_the_31st_falls_on_the_last_day_of_shorter_months_and_does_not_drift() -> None:
    """Counted from the first day, not from the previous call: after 30 April comes 31 July."""
    assert days("2026-01-31") == [
        "2026-01-31",
        "2026-04-30",
        "2026-07-31",
        "2026-10-31",
        "2027-01-31",
    ]


def test_a_series_on_the_30th_of_november_meets_february() -> None:
    assert days("2026-11-30", 6) == [
        "2026-11-30",
        "2027-02-28",
        "2027-05-30",
        "2027-08-30",
        "2027-11-30",
        "2028-02-29",  # a leap year
    ]


def test_a_series_on_the_29th_of_february_keeps_the_29th_when_months_have_it() -> None:
    assert days("2028-02-29") == [
        "2028-02-29",
        "2028-05-29",
        "2028-08-29",
        "2028-11-29",
        "2029-02-28",
    ]


def test_a_series_crosses_years_for_any_month() -> None:
    for month in range(1, 13):
        first = date(2026, month, 15)
        later = [occurrence_day(first, n) for n in range(9)]
        assert [(d.year * 12 + d.month) - (2026 * 12 + month) for d in later] == list(
            range(0, 27, 3)
        )
        assert {d.day for d in later} == {15}


def test_a_series_keeps_its_local_time_across_daylight_saving_time() -> None:
    """In a zone with summer time, the calls stay at 09:00 local; in UTC they move an hour."""
    first = datetime(2026, 1, 31, 9, 0, tzinfo=BERLIN)
    moments = [occurrence(first.astimezone(UTC), n, 3, BERLIN) for n in range(4)]
    assert [m.strftime("%Y-%m-%d %H:%M") for m in moments] == [
        "2026-01-31 09:00",
        "2026-04-30 09:00",
        "2026-07-31 09:00",
        "2026-10-31 09:00",
    ]
    assert [m.astimezone(UTC).hour for m in moments] == [8, 7, 7, 8]  # CET, CEST, CEST, CET


def test_a_series_in_a_zone_without_summer_time_stays_at_the_same_utc_hour() -> None:
    first = datetime(2026, 12, 10, 14, 30, tzinfo=HCMC)
    moments = [occurrence(first, n, 3, HCMC).astimezone(UTC) for n in range(4)]
    assert {(m.hour, m.minute) for m in moments} == {(7, 30)}


# --- the grammar ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("calls add 2026-12-10", {"date": "2026-12-10", "time": None, "quarterly": False}),
        ("calls add 2026-12-10 14:30", {"date": "2026-12-10", "time": "14:30", "quarterly": False}),
        ("calls add 2026-12-10 quarterly", {"date": "2026-12-10", "time": None, "quarterly": True}),
        (
            "calls add 2026-12-10 14:30 Quarterly",
            {"date": "2026-12-10", "time": "14:30", "quarterly": True},
        ),
        ("calls remove 2026-12-10", {"date": "2026-12-10", "series": False}),
        ("calls remove 2026-12-10 series", {"date": "2026-12-10", "series": True}),
    ],
)
def test_calls_grammar(text: str, expected: dict[str, object]) -> None:
    assert parse(text).args == expected


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("calls add 2026-12-10 monthly", "`monthly` is neither a time of day (HH:MM) nor"),
        ("calls add 2026-12-10 14:30 monthly", "Unexpected `monthly` at the end."),
        ("calls add quarterly", "`quarterly` is not a date"),
        ("calls remove 2026-12-10 all", "Unexpected `all` at the end."),
        ("calls remove series", "`series` is not a date"),
    ],
)
def test_calls_grammar_refusals_say_what_is_wrong_and_show_the_usage(
    text: str, problem: str
) -> None:
    with pytest.raises(MalformedCommand) as caught:
        parse(text)
    shown = caught.value.render()
    assert problem in shown, shown
    assert "/pnc calls" in shown


def test_the_usage_lines_name_the_series() -> None:
    assert USAGE["calls add"] == "/pnc calls add <YYYY-MM-DD> [HH:MM] [quarterly]"
    assert USAGE["calls remove"] == "/pnc calls remove <YYYY-MM-DD> [series]"


# --- what people read -------------------------------------------------------------------------


def local(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=HCMC)


def call(n: int, held: str, reminder: str, series: int | None = None) -> CallLine:
    return CallLine(n, local(held), local(reminder), series)


SERIES = SeriesLine(
    7,
    local("2027-01-31 14:30"),
    3,
    (
        call(2, "2027-01-31 14:30", "2027-01-28 14:30", 7),
        call(3, "2027-04-30 14:30", "2027-04-27 14:30", 7),
        call(4, "2027-07-31 14:30", "2027-07-28 14:30", 7),
        call(5, "2027-10-31 14:30", "2027-10-28 14:30", 7),
    ),
)


def test_the_calendar_lists_one_off_calls_and_each_series_next_four() -> None:
    calendar = Calendar((call(1, "2026-12-10 09:00", "2026-12-07 09:00"),), (SERIES,))
    text = render_slack("slack/calls.txt", c=calendar)
    assert (
        "*Upcoming buyer calls*\n• 2026-12-10 09:00 — agenda and buyer lists 2026-12-07 09:00"
        in (text)
    )
    assert (
        "*Quarterly buyer calls* — every 3 months on day 31 (the month's last day when it is "
        "shorter) at 14:30, from 2027-01-31. The next 4:"
    ) in text
    assert "• 2027-04-30 14:30 — agenda and buyer lists 2027-04-27 14:30" in text
    assert "`/pnc calls remove <YYYY-MM-DD> series` ends a series" in text
    assert PLANNED == 4


def test_an_empty_calendar_says_how_to_add_a_call_or_a_series() -> None:
    text = render_slack("slack/calls.txt", c=Calendar((), ()))
    assert "No buyer call is scheduled" in text
    assert "`/pnc calls add <YYYY-MM-DD> [HH:MM] quarterly`" in text


def test_the_replies_name_the_calls_of_a_series_added_or_removed() -> None:
    added = phrase("series_added", SERIES)
    assert added.startswith("Quarterly buyer calls added: every 3 months on day 31")
    assert "The next: 2027-01-31, 2027-04-30, 2027-07-31, 2027-10-31." in added
    assert "the first 2027-01-28 14:30" in added
    removed = phrase(
        "series_removed",
        SeriesRemoved(
            date(2027, 4, 30),
            (local("2027-04-30 14:30"), local("2027-07-31 14:30")),
            (local("2027-01-31 14:30"),),
        ),
    )
    assert removed == (
        "Ended the quarterly buyer calls from 2027-04-30 on: removed 2 calls (2027-04-30, "
        "2027-07-31); their reminders are cancelled. The earlier call stays: 2027-01-31 14:30."
    )
