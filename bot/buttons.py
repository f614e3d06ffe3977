"""Buttons on the staff alerts that ask for an action, and what a press carries.

A button's ``value`` is a ``Press``: which button and the thing it acts on (an application, a
stakeholder meeting, a notice, a channel, a held event, a zero-tolerance case, a factory),
written ``approve:12``. It comes back from Slack in every press and is read again with
``Press.parse``, which refuses anything the bot never wrote. Which alert gets which buttons is
``for_alert``, a pure function of the notice; the words are ``templates/slack/buttons.txt``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from bot.errors import InvalidInput
from bot.render import slack_environment
from bot.validation import IDENTIFIER
from bot.vocabulary import ApplicationSubject, Channel, FollowUpSubject, NoticeKind, parse_subject


class Button(StrEnum):
    APPROVE = "approve"
    REJECT = "reject"
    MEETING_HELD = "meeting_held"
    #: one dead notice sent again
    RETRY = "retry"
    #: every dead notice sent again (``outbox retry dead``)
    RETRY_ALL = "retry_all"
    #: a paused channel tried again now
    RESUME = "resume"
    RELEASE = "release"
    DISMISS = "dismiss"
    ZTP_UPDATE = "ztp_update"
    #: a factory's status, for the person who pressed it only (App Home)
    STATUS = "status"


#: the buttons that open a form before anything is done (the form's submission does it)
FORMS = frozenset(
    {Button.APPROVE, Button.REJECT, Button.MEETING_HELD, Button.DISMISS, Button.ZTP_UPDATE}
)
#: the buttons that act on a numbered row (application, follow-up, notice, event, case)
_NUMBERED = frozenset(Button) - {Button.RETRY_ALL, Button.RESUME, Button.STATUS}
#: what ``RETRY_ALL`` acts on
DEAD = "dead"
#: every action id of ours starts with it (``pnc:approve:12``)
ACTION_PREFIX = "pnc:"
#: the longest value the bot writes (Slack allows 2000 characters)
VALUE_LIMIT = 100
_NUMBER = re.compile(r"^[1-9][0-9]{0,9}$")
#: at most this many held events get their own Release / Dismiss buttons in one alert
HELD_BUTTONS = 10


@dataclass(frozen=True)
class Press:
    """A button and what it acts on: a row's number, ``dead``, a channel or a factory id."""

    button: Button
    subject: str

    def __post_init__(self) -> None:
        if not _subject_fits(self.button, self.subject):
            raise ValueError(f"{self.subject!r} is not what {self.button} acts on")

    def __str__(self) -> str:
        return f"{self.button}:{self.subject}"

    @property
    def action_id(self) -> str:
        return f"{ACTION_PREFIX}{self}"

    @property
    def number(self) -> int:
        """The row it acts on (an application, follow-up, notice, event or case id)."""
        return int(self.subject)

    @classmethod
    def parse(cls, value: object) -> Press:
        """The press a button's value names; ``InvalidInput`` for anything the bot never
        writes (a forged or damaged value)."""
        if isinstance(value, str) and len(value) <= VALUE_LIMIT:
            word, _, subject = value.partition(":")
            try:
                return cls(Button(word), subject)
            except ValueError:
                pass
        raise InvalidInput(
            "That button is not one pnc-bot made; nothing was done.",
            "Use the buttons on the bot's own messages, or type the `/pnc` command.",
        )


def _subject_fits(button: Button, subject: str) -> bool:
    if button in _NUMBERED:
        return bool(_NUMBER.fullmatch(subject)) and int(subject) < 2**31
    if button is Button.RETRY_ALL:
        return subject == DEAD
    if button is Button.RESUME:
        return subject in {c.value for c in Channel}
    return bool(IDENTIFIER.fullmatch(subject))


# --- which alert gets which buttons ---------------------------------------------------------


def for_alert(kind: str, key: str, payload: Mapping[str, Any]) -> list[list[Press]]:
    """The buttons of a staff alert, in rows (one ``actions`` block each); none for an alert
    that asks for nothing."""
    match kind:
        case NoticeKind.READMISSION_APPLIED | NoticeKind.READMISSION_REVIEW_REMINDER:
            application = _number(payload.get("application_id")) or _subject_id(
                key, ApplicationSubject
            )
            if application:
                return [[Press(Button.APPROVE, application), Press(Button.REJECT, application)]]
        case NoticeKind.STAKEHOLDER_MEETING_REMINDER:
            if follow_up := _subject_id(key, FollowUpSubject):
                return [[Press(Button.MEETING_HELD, follow_up)]]
        case NoticeKind.DELIVERY_FAILED:
            row = [Press(Button.RETRY_ALL, DEAD)]
            notices = payload.get("notices") or []
            if int(payload.get("count") or 1) == 1 and notices and _number(notices[0]):
                row.insert(0, Press(Button.RETRY, _number(notices[0])))
            return [row]
        case NoticeKind.CHANNEL_PAUSED:
            if payload.get("channel") in {c.value for c in Channel}:
                return [[Press(Button.RESUME, str(payload["channel"]))]]
        case NoticeKind.HISTORY_CHANGED:
            events = [n for n in map(_number, payload.get("numbers") or []) if n]
            return [
                [Press(Button.RELEASE, n), Press(Button.DISMISS, n)] for n in events[:HELD_BUTTONS]
            ]
        case NoticeKind.ZTP_OPENED | NoticeKind.ZTP_DEADLINE:
            case = payload.get("case")
            if isinstance(case, Mapping) and (number := _number(case.get("id"))):
                return [[Press(Button.ZTP_UPDATE, number)]]
    return []


def _number(value: object) -> str:
    """A row's number as a press carries it ("" if ``value`` is none)."""
    text = str(value) if isinstance(value, int) and not isinstance(value, bool) else ""
    return text if _NUMBER.fullmatch(text) and int(text) < 2**31 else ""


def _subject_id(key: str, kind: type[ApplicationSubject] | type[FollowUpSubject]) -> str:
    """The id of the reminder subject a reminder's alert key starts with (``readmission:12/…``)."""
    try:
        subject = parse_subject(key.split("/", 1)[0])
    except ValueError:
        return ""
    if isinstance(subject, ApplicationSubject) and kind is ApplicationSubject:
        return _number(subject.application_id)
    if isinstance(subject, FollowUpSubject) and kind is FollowUpSubject:
        return _number(subject.follow_up_id)
    return ""


# --- Block Kit ------------------------------------------------------------------------------

BLOCK_PREFIX = "pnc_buttons"
_STYLES = {Button.APPROVE: "primary", Button.REJECT: "danger", Button.DISMISS: "danger"}


def label(press: Press) -> str:
    """What a button says (``templates/slack/buttons.txt``)."""
    module = slack_environment().get_template("slack/buttons.txt").module
    return str(module.label(press.button.value, press.subject)).strip()  # type: ignore[attr-defined]


def actions(rows: Iterable[Sequence[Press]]) -> list[dict[str, Any]]:
    """One ``actions`` block per row of buttons."""
    blocks = []
    for i, row in enumerate(rows):
        elements = []
        for press in row:
            element: dict[str, Any] = {
                "type": "button",
                "action_id": press.action_id,
                "text": {"type": "plain_text", "text": label(press)[:75], "emoji": True},
                "value": str(press),
            }
            if press.button in _STYLES:
                element["style"] = _STYLES[press.button]
            elements.append(element)
        if elements:
            blocks.append(
                {"type": "actions", "block_id": f"{BLOCK_PREFIX}_{i}", "elements": elements}
            )
    return blocks


def with_buttons(message: dict[str, Any], rows: Sequence[Sequence[Press]]) -> dict[str, Any]:
    """A message with its buttons below its text (within Slack's 50 blocks)."""
    if not rows:
        return message
    buttons = actions(rows)
    kept = message["blocks"][: 50 - len(buttons)]
    return {**message, "blocks": [*kept, *buttons]}


def without_buttons(blocks: Iterable[Any]) -> list[dict[str, Any]]:
    """A message's blocks without its rows of buttons (what a press leaves of it)."""
    return [b for b in blocks if isinstance(b, dict) and b.get("type") != "actions"]
