"""``/pnc review``: its grammar, and what the list and the replies say (user text escaped)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from bot.errors import MalformedCommand
from bot.render import render_slack, render_text
from bot.usecases.review import HeldLine, HeldView, NoticeLine, ReviewOutcome, ToldLine
from handlers import blocks
from handlers.commands import USAGE, parse

TZ = ZoneInfo("Asia/Ho_Chi_Minh")
HOSTILE = "<!channel> Saigon & Co <@U0EVIL>"


def line(**changes: object) -> HeldLine:
    values: dict[str, object] = {
        "id": 12,
        "key": "VN-1/pnc_designated/a3",
        "factory_id": "VN-1",
        "factory_name": HOSTILE,
        "kind": "pnc_designated",
        "occurred_on": date(2026, 3, 25),
        "k": None,
        "consecutive": 3,
        "held_at": datetime(2026, 11, 19, 20, 0, tzinfo=UTC),  # the 20th in Viet Nam
        "held_because": "history_changed",
        "told": (
            ToldLine("VN-1/at_risk_warning/a1/k1", "at_risk_warning", date(2026, 1, 10), 1, 3),
        ),
        "supported": True,
    }
    return HeldLine(**{**values, **changes})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "action", "args"),
    [
        ("review", "review", {}),
        ("review release 12", "review release", {"event": "12"}),
        ("REVIEW Release #12", "review release", {"event": "#12"}),
        (
            "review dismiss 12 told by phone",
            "review dismiss",
            {"event": "12", "reason": "told by phone"},
        ),
        (
            'review dismiss 7 "a duplicate"',
            "review dismiss",
            {"event": "7", "reason": "a duplicate"},
        ),
    ],
)
def test_the_review_subcommands_read_their_words(
    text: str, action: str, args: dict[str, str]
) -> None:
    command = parse(text)
    assert (command.action, command.args) == (action, args)


@pytest.mark.parametrize(
    ("text", "says", "usage"),
    [
        ("review release", "Give the number of the held event", "review release"),
        ("review release 1 2", "Unexpected `2` at the end", "review release"),
        ("review dismiss", "Give the number of the held event", "review dismiss"),
        ("review dismiss 12", "A dismissal needs a reason", "review dismiss"),
        ("review everything", "`review` lists the events held for review", "review release"),
    ],
)
def test_malformed_reviews_say_what_is_missing_and_show_the_usage(
    text: str, says: str, usage: str
) -> None:
    with pytest.raises(MalformedCommand) as refused:
        parse(text)
    assert says in refused.value.render()
    assert f"`{USAGE[usage]}`" in refused.value.render()


def test_the_list_says_why_each_event_is_held_and_what_people_were_told() -> None:
    view = HeldView(
        (
            line(),
            line(id=13, kind="at_risk_warning", k=2, held_because="rules_changed", told=()),
            line(id=14, held_because=None, told=(), supported=False),
        ),
        total=40,
    )
    out = render_slack("slack/review.txt", v=view, tz=TZ)
    assert out.startswith("*Events held for review*: 40 (the oldest 3 shown)")
    assert "<" not in out and "&lt;!channel&gt; Saigon &amp; Co &lt;@U0EVIL&gt;" in out
    first, second, third = out.split("*#")[1:]
    assert (
        first.startswith("12* `VN-1`")
        and "designation as persistently non-compliant, 2026-03-25" in first
    )
    assert "Held because the history changed under notices already sent, on 2026-11-20." in first
    assert "the at-risk warning (1 of 3), 2026-01-10." in first
    assert "`/pnc review release 12`" in first
    assert "at-risk warning (2 of 3)" in second and "rules changed" in second
    assert "Nothing people were told is contradicted" in second
    assert "Held (reason not recorded)" in third and "contradicted" not in third
    assert "_The history no longer supports it_" in third and "release 14" not in third
    text = render_text("cli/review.txt", v=view, done=None, tz=TZ)
    assert "held (reason not recorded)" in text and "pnc-bot review dismiss 14 REASON" in text
    assert render_slack("slack/review.txt", v=HeldView((), 0), tz=TZ).endswith(
        "Nothing is held for review."
    )


def test_the_replies_name_who_was_told_and_escape_the_reason() -> None:
    released = ReviewOutcome(
        line(),
        True,
        (
            NoticeLine("factory", HOSTILE, "email"),
            NoticeLine("buyer", "Acme <b>", "email"),
            NoticeLine("inspectorate", "Labour Inspectorate (Viet Nam)", "email"),
            NoticeLine("staff", "staff", "slack"),
        ),
        ("buyer B-X has no email address",),
        meeting=True,
        cycle_end=date(2027, 6, 30),
    )
    text = blocks.phrase("review_released", released)
    assert text.startswith("Released #12: the designation as persistently non-compliant")
    assert "4 notices written: the factory, Acme &lt;b&gt;, Labour Inspectorate (Viet Nam)" in text
    assert "Not written: buyer B-X has no email address." in text
    assert "end of the service cycle, 2027-06-30" in text and "<" not in text
    dismissed = ReviewOutcome(line(), False, reason="duplicate <@U0EVIL> & co")
    text = blocks.phrase("review_dismissed", dismissed)
    assert "duplicate &lt;@U0EVIL&gt; &amp; co" in text and "<" not in text
    cli = render_text("cli/review.txt", v=None, done=dismissed, tz=TZ)
    assert cli.startswith("dismissed #12") and "reason: duplicate <@U0EVIL> & co" in cli
