"""The forms a button opens before it acts (``bot.buttons.FORMS``): a note or a reason, the day
a meeting was held, a zero-tolerance case's next step. Every form has the callback id
``PRESS_CALLBACK``; its ``private_metadata`` carries the press and the message it was pressed
on (channel and ``ts``), so the submission acts on that thing and updates that message."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

from bot.buttons import Button, Press
from bot.errors import InvalidInput, PncError

PRESS_CALLBACK = "pnc_press"
NOTE, REASON, DAY, STEP = "note", "reason", "day", "step"
#: the steps of a zero-tolerance case a form offers (``/pnc ztp update``'s words)
STEPS = {"investigating": "Investigating", "action-plan": "Action plan agreed", "closed": "Closed"}
_TITLES = {
    Button.APPROVE: ("Approve readmission", "Approve"),
    Button.REJECT: ("Reject readmission", "Reject"),
    Button.MEETING_HELD: ("Stakeholder meeting", "Mark held"),
    Button.DISMISS: ("Dismiss held event", "Dismiss"),
    Button.ZTP_UPDATE: ("Zero-tolerance case", "Update"),
}


def modal(press: Press, channel: str | None, ts: str | None, today: date) -> dict[str, Any]:
    """The form a button opens."""
    title, submit = _TITLES[press.button]
    meta = json.dumps({"press": str(press), "channel": channel, "ts": ts})
    return {
        "type": "modal",
        "callback_id": PRESS_CALLBACK,
        "private_metadata": meta,
        "title": _plain(title),
        "submit": _plain(submit),
        "close": _plain("Cancel"),
        "blocks": _fields(press, today),
    }


def _fields(press: Press, today: date) -> list[dict[str, Any]]:
    match press.button:
        case Button.APPROVE:
            return [_text(NOTE, "Note (optional)", "Kept with the decision.", optional=True)]
        case Button.REJECT:
            return [_text(REASON, "Reason", "The factory is told why.")]
        case Button.MEETING_HELD:
            picker = {"type": "datepicker", "action_id": DAY, "initial_date": today.isoformat()}
            return [
                {"type": "input", "block_id": DAY, "label": _plain("Held on"), "element": picker}
            ]
        case Button.DISMISS:
            return [_text(REASON, "Reason", "Kept with the event, for the record.")]
        case Button.ZTP_UPDATE:
            options = [{"text": _plain(label), "value": word} for word, label in STEPS.items()]
            select = {"type": "static_select", "action_id": STEP, "options": options}
            return [
                {"type": "input", "block_id": STEP, "label": _plain("Step"), "element": select},
                _text(NOTE, "Note", "What the authorities did."),
            ]
    raise ValueError(f"{press.button} opens no form")  # pragma: no cover


def field_of(press: Press) -> str:
    """The field a refusal is shown under."""
    match press.button:
        case Button.REJECT | Button.DISMISS:
            return REASON
        case Button.MEETING_HELD:
            return DAY
        case Button.ZTP_UPDATE:
            return STEP
    return NOTE


def form_errors(press: Press, exc: PncError) -> dict[str, Any]:
    return {"response_action": "errors", "errors": {field_of(press): exc.render()[:300]}}


def metadata(view: Any) -> tuple[Press, str | None, str | None]:
    """The press, channel and message ``ts`` a form was opened for; ``InvalidInput`` if its
    metadata is not what the bot wrote."""
    try:
        meta = json.loads(view.get("private_metadata") or "")
        channel, ts = meta.get("channel"), meta.get("ts")
        if isinstance(channel, str | None) and isinstance(ts, str | None):
            press = Press.parse(meta.get("press"))
            if press.button in _TITLES:
                return press, channel, ts
    except (ValueError, AttributeError, TypeError, PncError):
        pass
    raise InvalidInput(
        "This form is not one pnc-bot opened; nothing was done.",
        "Press the button on the bot's message again.",
    )


def values(view: dict[str, Any]) -> dict[str, str]:
    """What the person entered: ``note``, ``reason``, ``day``, ``step`` (those the form has;
    an empty field is ""); ``InvalidInput`` for a shape Slack never sends."""
    state = view.get("state") or {}
    found: dict[str, str] = {}
    try:
        for block_id, elements in (state.get("values") or {}).items():
            element = elements.get(block_id) or {}
            if block_id in (NOTE, REASON):
                found[block_id] = element.get("value") or ""
            elif block_id == DAY:
                found[block_id] = element.get("selected_date") or ""
            elif block_id == STEP:
                found[block_id] = (element.get("selected_option") or {}).get("value") or ""
    except AttributeError:
        found = {"": ""}
    if all(isinstance(v, str) for v in found.values()) and "" not in found:
        return found
    raise InvalidInput(
        "The form came back in a shape pnc-bot does not understand; nothing was done.",
        "Press the button on the bot's message again.",
    )


def _text(block_id: str, label: str, hint: str, *, optional: bool = False) -> dict[str, Any]:
    return {
        "type": "input",
        "block_id": block_id,
        "optional": optional,
        "label": _plain(label),
        "hint": _plain(hint),
        "element": {"type": "plain_text_input", "action_id": block_id, "multiline": True},
    }


def _plain(text: str) -> dict[str, Any]:
    return {"type": "plain_text", "text": text, "emoji": True}
