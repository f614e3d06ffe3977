"""``/pnc outbox retry``'s grammar: one notice by its number, or every dead notice, narrowed by
a notice kind and/or a factory — in either order, each at most once; anything else is refused
with the usage (an unknown kind with the kinds it may have meant)."""

from __future__ import annotations

import pytest

from bot.errors import MalformedCommand
from handlers.commands import USAGE, parse


def refusal(text: str) -> str:
    with pytest.raises(MalformedCommand) as caught:
        parse(text)
    shown = caught.value.render()
    assert "\n" not in shown
    return shown


@pytest.mark.parametrize("number", ["42", "#42", "x"])  # the use case checks the number
def test_one_notice_by_its_number(number: str) -> None:
    command = parse(f"outbox retry {number}")
    assert command.action == "outbox retry"
    assert command.args == {"notice": number, "kind": None, "factory": None}


@pytest.mark.parametrize(
    ("text", "kind", "factory"),
    [
        ("outbox retry dead", None, None),
        ("outbox retry DEAD", None, None),
        ("outbox retry dead at_risk_warning", "at_risk_warning", None),
        ("outbox retry dead AT_RISK_WARNING", "at_risk_warning", None),
        ("outbox retry dead VN-1001", None, "VN-1001"),
        ("outbox retry dead at_risk_warning VN-1001", "at_risk_warning", "VN-1001"),
        ("outbox retry dead VN-1001 delivery_failed", "delivery_failed", "VN-1001"),
        ("outbox retry dead ACME", None, "ACME"),  # a factory id without digits
    ],
)
def test_every_dead_notice_narrowed_by_kind_or_factory(
    text: str, kind: str | None, factory: str | None
) -> None:
    command = parse(text)
    assert command.action == "outbox retry"
    assert command.args == {"notice": None, "kind": kind, "factory": factory}


def test_the_usage_shows_both_forms() -> None:
    usage = USAGE["outbox retry"]
    assert "<notice number>" in usage and "dead" in usage
    assert "[kind]" in usage and "[factory]" in usage


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("outbox retry dead at_risk_warnin", "Did you mean `at_risk_warning`?"),
        ("outbox retry dead delivery-failed", "Did you mean `delivery_failed`?"),
        ("outbox retry dead at_risk_warning pnc_designated", "at most one notice kind"),
        ("outbox retry dead VN-1 VN-2", "at most one factory"),
        ("outbox retry dead VN-1 at_risk_warning x", "Unexpected `x`"),
        ("outbox retry", "Give the notice's number"),
        ("outbox retry 1 2", "Unexpected `2`"),
        ("outbox retry 1 at_risk_warning", "Unexpected `at_risk_warning`"),
    ],
)
def test_bad_input_is_refused_with_the_usage(text: str, said: str) -> None:
    shown = refusal(text)
    assert said in shown
    assert "outbox retry <notice number>" in shown and "dead" in shown


def test_a_refusal_never_echoes_markup_or_control_characters() -> None:
    shown = refusal("outbox retry dead <!channel>_x\x85 VN-1 VN-2")
    assert "\x85" not in shown
