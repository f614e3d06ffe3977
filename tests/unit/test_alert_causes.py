"""What counts as one cause of dead notices (``bot.notices.cause_of``), and how the summary
alert of a cause reads (``templates/slack/alerts/delivery_failed.txt``)."""

from __future__ import annotations

import pytest

from bot.notices import cause_of
from bot.render import render_slack


def test_addresses_and_numbers_are_set_aside() -> None:
    one = "f1@x.example: 550 5.1.1 <f1@x.example>: Recipient address rejected: id 4F2A9Q1"
    two = "f2@y.example: 550 5.1.1 <f2@y.example>: Recipient address rejected: id 77Z0K3B"
    assert cause_of("email", one) == cause_of("email", two)


def test_every_recipient_refused_alike_is_one_cause() -> None:
    many = "a@x.example: 550 5.7.1 relay denied; b@x.example: 550 5.7.1 relay denied"
    assert cause_of("email", many) == cause_of("email", "c@z.example: 550 5.7.1 relay denied")


def test_gave_up_after_any_number_of_attempts_is_one_cause() -> None:
    assert cause_of("email", "gave up after 10 attempts: 451 4.3.0 try later") == cause_of(
        "email", "gave up after 3 attempts: 451 4.3.0 try later"
    )


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("550 5.1.1 no such user", "552 5.2.2 mailbox full"),  # another reply code
        ("550 5.1.1 no such user", "550 5.7.1 relay denied"),  # another status code
        ("550 5.1.1 no such user", "550 5.1.1 mailbox disabled"),  # other words
    ],
)
def test_other_codes_or_words_are_another_cause(a: str, b: str) -> None:
    assert cause_of("email", a) != cause_of("email", b)


def test_the_channel_is_part_of_the_cause() -> None:
    assert cause_of("email", "cannot render the notice") != cause_of(
        "slack", "cannot render the notice"
    )


def summary(**extra: object) -> str:
    context: dict[str, object] = {
        "event": "delivery_failed",
        "urgent": True,
        "notice": "at_risk_warning",
        "recipient": "Factory 0",
        "factory": {"id": "VN-0", "name": "Factory 0"},
        "error": "f0@x.example: 550 5.1.1 <f0@x.example>: User unknown",
        "attempts": 1,
        "channel": "email",
        "count": 7,
        "kinds": {"at_risk_warning": 5, "pnc_designated": 2},
        "factories": [
            {"id": f"VN-{n}", "name": "<!channel> Co" if n == 2 else f"Factory {n}"}
            for n in range(5)
        ],
        "more_factories": True,
        "notices": [1, 3, 5, 7, 9],
    }
    return render_slack("slack/alerts/delivery_failed.txt", **(context | extra))


def test_a_summary_gives_the_count_the_first_factories_the_cause_and_the_command() -> None:
    out = summary()
    assert out.startswith(":rotating_light: *Urgent* — *7 notices not delivered*")
    assert "all for one cause: at risk warning (5), pnc designated (2); about" in out
    assert "`VN-0`" in out and "`VN-4`" in out and "and other factories" in out
    assert "User unknown" in out and "by email" in out
    assert "`/pnc outbox retry dead`" in out and "`pnc-bot outbox retry dead`" in out
    assert "same error" in out  # what one cause is, said where staff read it
    assert "<!channel>" not in out and "&lt;!channel&gt;" in out
    assert "None" not in out


def test_one_dead_notice_is_told_as_before_and_names_its_retry() -> None:
    out = summary(count=1, kinds={"at_risk_warning": 1}, factories=[], notices=[12])
    assert "*Notice not delivered*: at risk warning to Factory 0" in out
    assert "`/pnc outbox retry 12`" in out
