"""Block Kit layouts. The words come from ``templates/slack``; this module only shapes them into
blocks, messages and views (with a plain-text fallback for notifications and old clients)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

from bot import buttons
from bot.countries import Country
from bot.errors import InvalidInput, PncError
from bot.render import escape_mrkdwn, mention, message, render_slack, sections, slack_environment
from bot.validation import ASSESSMENT_KINDS

ASSESS_CALLBACK = "pnc_assess"
FORM_ERROR_LIMIT = 300  # characters of a refusal shown under a form field


def template(name: str, **context: Any) -> dict[str, Any]:
    return message(render_slack(f"slack/{name}.txt", **context))


def phrase(macro: str, *args: Any) -> str:
    """One of the short texts in ``templates/slack/replies.txt``, as mrkdwn."""
    module = slack_environment().get_template("slack/replies.txt").module
    return str(getattr(module, macro)(*args)).strip()


def reply(macro: str, *args: Any) -> dict[str, Any]:
    """One of the short confirmations in ``templates/slack/replies.txt``, as a message."""
    return message(phrase(macro, *args))


def refusal_text(exc: PncError) -> str:
    """A refusal in mrkdwn: the message escaped, the people it names as mentions."""
    text: str = escape_mrkdwn(exc.render() if not exc.mentions else _without_mentions(exc))
    if exc.mentions:
        text += " " + ", ".join(mention(m) for m in exc.mentions)
    return text


def refusal(exc: PncError) -> dict[str, Any]:
    return message(":no_entry_sign: " + refusal_text(exc))


def _without_mentions(exc: PncError) -> str:
    return f"{exc.message} {exc.hint}" if exc.hint else exc.message


# --- the assessment form ---------------------------------------------------------------------

FACTORY, DAY, ISSUES, KIND, REPORT = "factory", "day", "issues", "kind", "report"


def assess_modal(country: Country, today: date, factory_id: str | None) -> dict[str, Any]:
    """The assessment form: factory, date, the country's public-reporting issues, kind."""
    groups = []
    for cluster, issues in country.catalogue.clusters().items():
        groups.append(
            {
                "label": _plain(cluster[:75]),
                "options": [
                    {"text": _plain(f"{i.code} {i.name}"[:75]), "value": i.code} for i in issues
                ],
            }
        )
    kinds = [_option(_kind_label(kind, country), kind) for kind in ASSESSMENT_KINDS]
    factory_input: dict[str, Any] = {"type": "plain_text_input", "action_id": FACTORY}
    if factory_id:
        factory_input["initial_value"] = factory_id
    return {
        "type": "modal",
        "callback_id": ASSESS_CALLBACK,
        "title": _plain("Record an assessment"),
        "submit": _plain("Record"),
        "close": _plain("Cancel"),
        "blocks": [
            {
                "type": "input",
                "block_id": FACTORY,
                "label": _plain("Factory id"),
                "hint": _plain("For example VN-1001."),
                "element": factory_input,
            },
            {
                "type": "input",
                "block_id": DAY,
                "label": _plain("Assessment date"),
                "element": {
                    "type": "datepicker",
                    "action_id": DAY,
                    "initial_date": today.isoformat(),
                },
            },
            {
                "type": "input",
                "block_id": ISSUES,
                "optional": True,
                "label": _plain(f"Non-compliant public-reporting issues ({country.name})"),
                "hint": _plain("Leave empty when none was found."),
                "element": {
                    "type": "multi_static_select",
                    "action_id": ISSUES,
                    "placeholder": _plain("Choose issues"),
                    "option_groups": groups,
                },
            },
            {
                "type": "input",
                "block_id": KIND,
                "label": _plain("Kind"),
                "element": {
                    "type": "static_select",
                    "action_id": KIND,
                    "initial_option": kinds[0],
                    "options": kinds,
                },
            },
            {
                "type": "input",
                "block_id": REPORT,
                "optional": True,
                "label": _plain("Assessment report date"),
                "hint": _plain(
                    "If not the assessment date: Progress Report One is due 30 days after it."
                ),
                "element": {"type": "datepicker", "action_id": REPORT},
            },
        ],
    }


#: what the form calls each assessment kind (``validation.ASSESSMENT_KINDS``)
KIND_LABELS = {
    "regular": "Regular assessment",
    "unannounced": "Unannounced assessment",
    "advisory": "Advisory visit",
    "verification": "Progress-report verification visit",
}


def _kind_label(kind: str, country: Country) -> str:
    label = KIND_LABELS.get(kind, kind.capitalize())
    return label if kind in country.rules.counted_kinds else f"{label} (not counted)"


def assess_values(view: dict[str, Any]) -> dict[str, Any]:
    """What the person entered in the form; an ``InvalidInput`` if it came back in a shape
    Slack never sends (empty fields are empty, not wrong)."""
    state = _fields(view.get("state"), "state")
    values = _fields(state.get("values"), "values")

    def element(block: str) -> dict[str, Any]:
        return _fields(_fields(values.get(block), block).get(block), block)

    kind = _fields(element(KIND).get("selected_option"), KIND).get("value")
    options = element(ISSUES).get("selected_options")
    if options is None:
        options = []
    elif not isinstance(options, list):
        raise _misshapen(ISSUES)
    return {
        "factory": _text(element(FACTORY).get("value"), FACTORY),
        "date": _text(element(DAY).get("selected_date"), DAY),
        "codes": [_chosen(o) for o in options],
        "kind": _text(kind, KIND) or None,
        "report_on": _text(element(REPORT).get("selected_date"), REPORT) or None,
    }


def _fields(value: Any, name: str) -> dict[str, Any]:
    """A part of the form's state: an object, or nothing (``None``)."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _misshapen(name)
    return value


def _text(value: Any, name: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise _misshapen(name)
    return value


def _chosen(option: Any) -> str:
    """The value of a chosen option: one without a value is not what Slack sends."""
    if value := _text(_fields(option, ISSUES).get("value"), ISSUES):
        return value
    raise _misshapen(ISSUES)


def _misshapen(name: str) -> InvalidInput:
    return InvalidInput(
        f"The form came back with its `{name}` field in a shape pnc-bot does not understand; "
        "nothing was recorded.",
        "Open the form again (`/pnc assess`) and submit it once more.",
    )


def field_for(exc: PncError) -> str:
    """The form field a refusal belongs to (``response_action=errors``)."""
    from bot.errors import DuplicateAssessment, InvalidDate, InvalidReportDate, UnknownIssueCodes

    if isinstance(exc, UnknownIssueCodes):
        return ISSUES
    if isinstance(exc, InvalidReportDate):
        return REPORT
    if isinstance(exc, (InvalidDate, DuplicateAssessment)):
        return DAY
    return FACTORY


def form_errors(exc: PncError) -> dict[str, Any]:
    """A refusal shown in the form, under the field it is about (``response_action=errors``)."""
    return {
        "response_action": "errors",
        "errors": {field_for(exc): exc.render()[:FORM_ERROR_LIMIT]},
    }


# --- App Home ---------------------------------------------------------------------------------


def home_view(text: str, factories: Sequence[str] = ()) -> dict[str, Any]:
    """App Home; each line listing one of ``factories`` (``• `ID` …``) is a block of its own
    with a Status button (``bot.buttons``), answered for the person who presses it only."""
    if not factories:
        return {"type": "home", "blocks": sections(text)}
    rows = {f"• `{escape_mrkdwn(f)}`": f for f in factories}
    shown: list[dict[str, Any]] = []
    for paragraph in text.split("\n\n"):
        lines: list[str] = []
        for line in [*paragraph.split("\n"), ""]:
            fid = next((f for start, f in rows.items() if line.startswith(start + " ")), None)
            if fid is None and line:
                lines.append(line)
                continue
            shown += sections("\n".join(lines)) if lines else []
            lines = []
            if fid is not None:
                block = sections(line)[0]
                button = buttons.actions([[buttons.Press(buttons.Button.STATUS, fid)]])
                shown.append({**block, "accessory": button[0]["elements"][0]})
    return {"type": "home", "blocks": shown[:100]}


def _plain(text: str) -> dict[str, Any]:
    return {"type": "plain_text", "text": text, "emoji": True}


def _option(text: str, value: str) -> dict[str, Any]:
    return {"text": _plain(text), "value": value}


def codes_of(values: Sequence[str]) -> str:
    return " ".join(values) if values else "none"
