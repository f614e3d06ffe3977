"""Button presses (``block_actions``) and the forms some buttons open.

The door (``handlers.middleware``) has read the press (``bot.buttons.Press``, refused if forged)
and checked the presser's role with the permission of the command the button stands for, so a
listener here only acts: through ``bot.usecases.presses``, audited by ``runner.answer`` (or
``runner.audit`` for a form), the reply for the presser alone, and the message pressed on
updated to say who did what and when, without its buttons. A press that came second is told
who decided (``AlreadyDecided``) and the message is updated all the same.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_sdk.webhook.async_client import AsyncWebhookClient

from bot import buttons
from bot.buttons import Button, Press
from bot.errors import AlreadyDecided, PncError
from bot.render import mention, message, render_slack, slack_environment
from bot.roles import Actor
from bot.usecases import presses
from bot.usecases.core import Core
from bot.vocabulary import AuditOutcome
from handlers import blocks, modals
from handlers.runner import ACTOR, CORE, HTTP, Reply, answer, audit, tracked

log = logging.getLogger(__name__)

#: the press the door read (a ``Press``), and the message it was pressed on
PRESS, WHERE = "pnc_press", "pnc_where"


def register(app: AsyncApp) -> None:
    app.action(re.compile("^" + re.escape(buttons.ACTION_PREFIX)))(tracked(pressed))
    app.view(modals.PRESS_CALLBACK)(tracked(submitted))


def press_of(body: dict[str, Any]) -> Press:
    """The press a ``block_actions`` body carries (its first action's value)."""
    action = (body.get("actions") or [{}])[0]
    return Press.parse(action.get("value"))


def where_of(body: dict[str, Any]) -> tuple[str | None, str | None]:
    """The channel and ``ts`` of the message a button was pressed on (None from App Home)."""
    container = body.get("container") or {}
    channel = (body.get("channel") or {}).get("id") or container.get("channel_id")
    ts = container.get("message_ts") or (body.get("message") or {}).get("ts")
    return (channel, ts) if container.get("type") == "message" else (None, None)


# --- a press ---------------------------------------------------------------------------------


async def pressed(ack: Any, body: dict[str, Any], context: dict[str, Any], client: Any) -> None:
    await ack()
    core: Core = context[CORE]
    press: Press = context[PRESS]
    actor: Actor = context[ACTOR]
    channel, ts = where_of(body)
    if press.button in buttons.FORMS:
        # the form first: the trigger expires about 3 s after the press
        view = modals.modal(press, channel, ts, core.today())
        try:
            await client.views_open(trigger_id=body.get("trigger_id", ""), view=view)
        except Exception:
            log.exception("could not open the form of %s", press)
            await audit(context, AuditOutcome.ERROR, {"press": str(press), "error": "views.open"})
            return
        await audit(context, AuditOutcome.OK, {"press": str(press), "opened": "form"})
        return

    async def work() -> Reply:
        try:
            reply, what = await _act(core, actor, press)
        except AlreadyDecided as exc:
            await _mark(context, client, channel, ts, body, press, decided=exc)
            raise
        line = _done(core, press, actor.user_id, what)
        await _mark(context, client, channel, ts, body, press, line=line)
        return reply

    await answer(context, _for_presser(context, body, client), work)


async def _act(core: Core, actor: Actor, press: Press) -> tuple[Reply, str]:
    """Do what a button without a form does: the reply for the presser, and what the message
    pressed on will say was done (beyond who and when)."""
    match press.button:
        case Button.RETRY:
            await presses.retry(core, actor, press)
            return None, ""
        case Button.RETRY_ALL:
            revived = await presses.retry_all(core, actor, press)
            return blocks.reply("notices_retried", revived), str(revived.count)
        case Button.RESUME:
            await presses.resume(core, actor, press)
            return None, ""
        case Button.RELEASE:
            return blocks.reply("review_released", await presses.release(core, actor, press)), ""
        case Button.STATUS:
            view = await presses.status(core, press)
            return blocks.template("status", v=view, shown=view.latest(5)), ""
    raise ValueError(f"{press.button} opens a form")  # pragma: no cover


def _for_presser(
    context: dict[str, Any], body: dict[str, Any], client: Any
) -> Callable[..., Awaitable[Any]]:
    """The ``respond`` ``runner.answer`` replies with: ``tell`` (the presser only)."""

    async def respond(**reply: Any) -> None:
        await tell(context, client, body, reply)

    return respond


async def tell(context: dict[str, Any], client: Any, body: dict[str, Any], reply: Reply) -> None:
    """A reply for the person who pressed (or submitted) only: on the response URL, or an
    ephemeral message in the channel, or a direct message."""
    if reply is None:
        return
    user = context.get("user_id") or (body.get("user") or {}).get("id", "")
    url, http = body.get("response_url"), context.get(HTTP)
    reply = {**reply, "response_type": "ephemeral", "replace_original": False}
    if url and http is not None:
        await AsyncWebhookClient(url, session=http).send_dict(reply)
        return
    channel = context.get(WHERE, (None, None))[0]
    text, shown = reply["text"], reply.get("blocks")
    if channel:
        await client.chat_postEphemeral(channel=channel, user=user, text=text, blocks=shown)
    else:
        await client.chat_postMessage(channel=user, text=text, blocks=shown)


# --- a form's submission ---------------------------------------------------------------------


async def submitted(
    ack: Any, body: dict[str, Any], view: dict[str, Any], context: dict[str, Any], client: Any
) -> None:
    core: Core = context[CORE]
    press: Press = context[PRESS]
    actor: Actor = context[ACTOR]
    channel, ts = context.get(WHERE, (None, None))
    try:
        fields = modals.values(view)
        what = await _submit(core, actor, press, fields)
    except AlreadyDecided as exc:
        await ack()  # nothing to fix in the form: it closes, and the presser is told
        await audit(context, AuditOutcome.REFUSED, {"press": str(press), "error": exc.code})
        await _mark(context, client, channel, ts, {}, press, decided=exc)
        await _quietly(tell(context, client, {}, blocks.refusal(exc)))
        return
    except PncError as exc:
        await ack(**modals.form_errors(press, exc))
        await audit(context, AuditOutcome.REFUSED, {"press": str(press), "error": exc.code})
        return
    except Exception as exc:
        log.exception("could not act on the form of %s", press)
        await ack(**modals.form_errors(press, PncError(blocks.phrase("unavailable"))))
        await audit(context, AuditOutcome.ERROR, {"press": str(press), "error": type(exc).__name__})
        return
    await ack()
    await audit(context, AuditOutcome.OK, {"press": str(press)})
    line = _done(core, press, actor.user_id, what)
    await _mark(context, client, channel, ts, {}, press, line=line)


async def _submit(core: Core, actor: Actor, press: Press, fields: dict[str, str]) -> str:
    match press.button:
        case Button.APPROVE | Button.REJECT:
            note = fields.get(modals.NOTE) or fields.get(modals.REASON) or None
            await presses.decide(core, actor, press, note)
            return ""
        case Button.MEETING_HELD:
            held = await presses.meeting_held(core, actor, press, fields.get(modals.DAY, ""))
            return held.isoformat()
        case Button.DISMISS:
            await presses.dismiss(core, actor, press, fields.get(modals.REASON, ""))
            return ""
        case Button.ZTP_UPDATE:
            step = fields.get(modals.STEP, "")
            case = await presses.ztp_update(core, actor, press, step, fields.get(modals.NOTE, ""))
            return str(getattr(case, "status", step))
    raise ValueError(f"{press.button} opens no form")  # pragma: no cover


# --- the message pressed on ------------------------------------------------------------------


def _done(core: Core, press: Press, user: str, what: str) -> str:
    at = f"{core.clock().astimezone(core.settings.tz):%H:%M}"
    module: Any = slack_environment().get_template("slack/buttons.txt").module
    return str(module.done(press.button.value, press.subject, _who(user), at, what)).strip()


def _who(user: str | None) -> str:
    """A Slack member as a mention; anyone else (the console, the command line) by name."""
    if user and user[:1] in ("U", "W") and user.isalnum():
        return mention(user)
    return user or "someone"


async def _mark(
    context: dict[str, Any],
    client: Any,
    channel: str | None,
    ts: str | None,
    body: dict[str, Any],
    press: Press,
    *,
    line: str = "",
    decided: AlreadyDecided | None = None,
) -> None:
    """Say on the message pressed on who did what and when, and take its buttons away (only
    the row of the thing decided, where it has several)."""
    if not channel or not ts or (not line and decided is None):
        return
    if decided is not None:
        module: Any = slack_environment().get_template("slack/buttons.txt").module
        line = str(module.decided(decided.what.capitalize(), _who(decided.by), decided.when))
    try:
        text, shown = await _drawn(context[CORE], channel, ts, body, press)
        shown.append({"type": "context", "elements": [{"type": "mrkdwn", "text": line}]})
        await client.chat_update(
            channel=channel, ts=ts, text=f"{text}\n{line}"[:3900], blocks=shown
        )
    except Exception:
        log.exception("could not update the message %s in %s", ts, channel)


async def _drawn(
    core: Core, channel: str, ts: str, body: dict[str, Any], press: Press
) -> tuple[str, list[dict[str, Any]]]:
    """The message as it stands (from the press), or drawn again from its alert, with every
    row of buttons about the thing pressed taken away."""
    original = body.get("message") or {}
    if isinstance(original.get("blocks"), list):
        shown = [b for b in original["blocks"] if not _row_of(b, press)]
        return str(original.get("text", "")), shown
    alert = await presses.alert_of(core, channel, ts)
    if alert is None:
        return "", []
    text = render_slack(f"slack/alerts/{alert['kind']}.txt", **alert["payload"])
    rows = buttons.for_alert(alert["kind"], alert["key"], alert["payload"])
    kept = [row for row in rows if all(p.subject != press.subject for p in row)]
    drawn = buttons.with_buttons(message(text), kept)
    return text, list(drawn["blocks"])


def _row_of(block: Any, press: Press) -> bool:
    """Whether a block is a row of buttons with one about the thing pressed."""
    if not isinstance(block, dict) or block.get("type") != "actions":
        return False
    for element in block.get("elements") or []:
        try:
            if Press.parse(element.get("value")).subject == press.subject:
                return True
        except PncError:
            continue
    return False


async def _quietly(sent: Awaitable[Any]) -> None:
    try:
        await sent
    except Exception:
        log.exception("could not tell the presser")
