"""What a button carries (``bot.buttons.Press``): written and read back the same, anything else
refused; and which alert gets which buttons."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from bot.buttons import DEAD, Button, Press, for_alert, with_buttons, without_buttons
from bot.errors import InvalidInput
from bot.render import message

numbers = st.integers(min_value=1, max_value=2**31 - 1).map(str)
factories = st.from_regex(r"[A-Z0-9][A-Z0-9._-]{0,63}", fullmatch=True)


@st.composite
def presses(draw: st.DrawFn) -> Press:
    button = draw(st.sampled_from(list(Button)))
    if button is Button.RETRY_ALL:
        return Press(button, DEAD)
    if button is Button.RESUME:
        return Press(button, draw(st.sampled_from(["email", "slack"])))
    if button is Button.STATUS:
        return Press(button, draw(factories))
    return Press(button, draw(numbers))


@given(presses())
def test_a_press_reads_back_as_written(press: Press) -> None:
    assert Press.parse(str(press)) == press
    assert press.action_id == f"pnc:{press}"


@given(st.one_of(st.text(max_size=120), st.integers(), st.none(), st.binary()))
def test_anything_the_bot_did_not_write_is_refused(value: object) -> None:
    try:
        press = Press.parse(value)
    except InvalidInput as exc:
        assert "not one pnc-bot made" in str(exc)
    else:  # a value that happens to be well formed is read as the bot would write it
        assert str(press) == value


def test_forged_values_are_refused() -> None:
    for value in (
        "approve:0",
        "approve:-1",
        "approve:2147483648",
        "approve:12 ",
        "approve:1e3",
        "retry_all:everything",
        "resume:fax",
        "status:vn-1001",
        "status:VN 1001",
        "drop:1",
        "approve",
        "x" * 500,
    ):
        try:
            Press.parse(value)
        except InvalidInput:
            continue
        raise AssertionError(f"{value!r} was read")


def test_which_alert_gets_which_buttons() -> None:
    def values(kind: str, key: str, payload: dict[str, object]) -> list[list[str]]:
        return [[str(p) for p in row] for row in for_alert(kind, key, payload)]

    assert values(
        "readmission_applied", "VN-1/readmission_applied/r7/slack/staff", {"application_id": 7}
    ) == [["approve:7", "reject:7"]]
    assert values("readmission_review_reminder", "readmission:7/review/3", {}) == [
        ["approve:7", "reject:7"]
    ]
    assert values("stakeholder_meeting_reminder", "follow_up:4/meeting/9", {}) == [
        ["meeting_held:4"]
    ]
    assert values("delivery_failed", "k", {"count": 1, "notices": [12]}) == [
        ["retry:12", "retry_all:dead"]
    ]
    assert values("delivery_failed", "k", {"count": 5, "notices": [12, 13]}) == [["retry_all:dead"]]
    assert values("channel_paused", "k", {"channel": "email"}) == [["resume:email"]]
    assert values("history_changed", "k", {"numbers": [3, 4]}) == [
        ["release:3", "dismiss:3"],
        ["release:4", "dismiss:4"],
    ]
    assert values("ztp_opened", "k", {"case": {"id": 2}}) == [["ztp_update:2"]]
    assert values("at_risk_warning", "k", {}) == []
    assert values("stakeholder_meeting_reminder", "follow_up:x/meeting", {}) == []


def test_buttons_go_below_the_text_and_a_press_takes_them_away() -> None:
    shown = with_buttons(message("Hello"), [[Press(Button.RETRY, "3")]])
    assert [b["type"] for b in shown["blocks"]] == ["section", "actions"]
    (button,) = shown["blocks"][1]["elements"]
    assert button["value"] == "retry:3" and button["text"]["text"] == "Retry"
    assert without_buttons(shown["blocks"]) == message("Hello")["blocks"]


def test_app_home_gives_each_factory_row_a_status_button() -> None:
    from handlers.blocks import home_view

    text = "*Designated* (1)\n• `VN-1001` Saigon Stitch — PNC\n\n*At risk* (0)\nNone."
    view = home_view(text, ["VN-1001"])
    kinds = [(b["text"]["text"], "accessory" in b) for b in view["blocks"]]
    assert kinds == [
        ("*Designated* (1)", False),
        ("• `VN-1001` Saigon Stitch — PNC", True),
        ("*At risk* (0)\nNone.", False),
    ]
    assert view["blocks"][1]["accessory"]["value"] == "status:VN-1001"
    assert home_view(text)["blocks"] == home_view(text, [])["blocks"]


def test_a_form_reads_back_what_was_entered_and_refuses_a_forged_one() -> None:
    import json
    from datetime import date

    from handlers import modals

    press = Press(Button.MEETING_HELD, "4")
    form = modals.modal(press, "C1", "1.2", date(2026, 11, 20))
    assert modals.metadata(form) == (press, "C1", "1.2")
    state = {"values": {"day": {"day": {"selected_date": "2026-11-15"}}}}
    assert modals.values({"state": state}) == {"day": "2026-11-15"}
    for meta in ("", "[]", json.dumps({"press": "status:VN-1"}), json.dumps({"press": "x:1"})):
        try:
            modals.metadata({"private_metadata": meta})
        except InvalidInput:
            continue
        raise AssertionError(meta)
    try:
        modals.values({"state": {"values": {"note": {"note": {"value": 3}}}}})
    except InvalidInput:
        pass
    else:
        raise AssertionError("a number read as a note")
