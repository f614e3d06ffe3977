"""The demo's story starts at 10:00 in Viet Nam whatever the hour it is run at: its reminders
fall due at the start of a working day, and it waits for them by whole days."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.demo import STARTS_AT, TIMEZONE, DemoClock


@pytest.mark.parametrize(
    "now",
    [
        datetime(2026, 12, 2, 18, 36, tzinfo=UTC),  # 01:36 the next day in Viet Nam
        datetime(2026, 12, 2, 9, 0, tzinfo=UTC),  # 16:00 there
        datetime(2026, 12, 2, 2, 59, tzinfo=UTC),  # 09:59 there
    ],
)
def test_the_story_starts_at_ten_in_viet_nam_on_its_day(now: datetime) -> None:
    clock = DemoClock(now)
    started = (now + clock.offset).astimezone(TIMEZONE)
    assert started.date() == now.astimezone(TIMEZONE).date()
    assert started.time() == STARTS_AT


def test_it_then_runs_at_the_real_pace_and_skips_whole_days() -> None:
    clock = DemoClock()
    before = clock()
    clock.skip(7)
    assert timedelta(days=7) <= clock() - before < timedelta(days=7, seconds=5)
