"""The door every Slack request passes: who is asking, what they ask, whether they may.

``register`` installs two global middlewares. The first puts the use cases' core in the
context; the second resolves the person's role (configured or granted), parses ``/pnc`` text,
and checks the permission declared with the subcommand (``handlers.commands``). A request
refused here is answered at once — an ephemeral message for a command, field errors for a
form — and audited; nothing else runs.
Listeners therefore never check permissions themselves. A button's press (and the form it
opens) is read here too (``bot.buttons.Press``: a forged one is refused) and needs the role of
the command it stands for (``bot.usecases.presses.PERMISSIONS``); refused, it is told to the
presser alone.

Before all that, the HTTP server passes each signed request to ``screen``: a body not in the
shape Slack sends for a slash command, the assessment form or an event this bot listens to is
refused with a 400 before Bolt or any listener reads it.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import aiohttp
from slack_bolt.async_app import AsyncApp
from slack_bolt.response import BoltResponse

from bot import logs
from bot.buttons import ACTION_PREFIX
from bot.errors import PncError
from bot.roles import Actor, Permission
from bot.usecases import access, assessments, presses
from bot.usecases.core import Core
from bot.vocabulary import AuditOutcome
from handlers import actions, blocks, events, modals
from handlers.commands import parse
from handlers.runner import ACTOR, COMMAND, CORE, FORM, HTTP, SOURCE, STARTED, audit

log = logging.getLogger(__name__)

#: forms that need a role, by their callback id
_FORMS: dict[str, Permission] = {blocks.ASSESS_CALLBACK: assessments.RECORD}


class Malformed(ValueError):
    """A request (correctly signed) that is not in the shape Slack sends; the message says
    what is wrong, with anything quoted from the request escaped and cut short."""


def screen(body: Any) -> bool:
    """Whether a parsed Slack request goes to the listeners (True) or is an event none of them
    wants (False: acknowledge it and do nothing); ``Malformed`` if it cannot be handled."""
    if not isinstance(body, dict):
        raise Malformed(f"the body is {type(body).__name__}, not an object")
    if body.get("ssl_check") == "1" or body.get("type") == "url_verification":
        return True  # Bolt answers these itself
    if "command" in body:
        for key in ("command", "user_id"):
            if not _text(body, key):
                raise Malformed(f"a slash command without `{key}`")
        for key in ("text", "response_url", "trigger_id", "channel_id", "team_id"):
            _text(body, key)
        return True
    kind = body.get("type")
    if kind == "event_callback":
        event = _object(body, "event")
        if not _text(event, "type"):
            raise Malformed("an event without a type")
        if event["type"] not in events.EVENTS:
            return False
        _text(event, "user")
        return True
    if kind == "view_submission":
        if not _text(_object(body, "user"), "id"):
            raise Malformed("a form submitted without a user id")
        view = _object(body, "view")
        if not _text(view, "type"):
            raise Malformed("a view without a type")
        _text(view, "private_metadata")
        if _text(view, "callback_id") not in (*_FORMS, modals.PRESS_CALLBACK):
            raise Malformed(f"a view of no form this bot has ({quoted(view.get('callback_id'))})")
        if "state" in view and "values" in _object(view, "state"):
            values = _object(view["state"], "values")
            if not all(isinstance(block, dict) for block in values.values()):
                raise Malformed("a form whose `state.values` are not objects")
        return True
    if kind == "block_actions":
        _screen_press(body)
        return True
    if kind == "app_rate_limited":
        return False
    raise Malformed(f"no slash command, form or event this bot handles (type {quoted(kind)})")


def _screen_press(body: dict[str, Any]) -> None:
    """A button pressed: by someone, on a button of the bot's (what its value says is read
    at the door, where a forged one is refused)."""
    if not _text(_object(body, "user"), "id"):
        raise Malformed("a button pressed without a user id")
    pressed = body.get("actions")
    if not isinstance(pressed, list) or not pressed:
        raise Malformed("a button press without its actions")
    for action in pressed:
        if not isinstance(action, dict):
            raise Malformed("a button press whose actions are not objects")
        _text(action, "value")
        if not _text(action, "action_id").startswith(ACTION_PREFIX):
            raise Malformed(f"a press of no button this bot has ({quoted(action['action_id'])})")
    for key in ("trigger_id", "response_url"):
        _text(body, key)
    for key in ("container", "channel", "message"):
        if key in body:
            _object(body, key)


def _object(parent: dict[str, Any], key: str) -> dict[str, Any]:
    value = parent.get(key)
    if not isinstance(value, dict):
        raise Malformed(f"`{key}` is {type(value).__name__}, not an object")
    return value


def _text(parent: dict[str, Any], key: str) -> str:
    """The string at ``key`` ("" when absent); ``Malformed`` if it is something else."""
    value = parent.get(key, "")
    if not isinstance(value, str):
        raise Malformed(f"`{key}` is {type(value).__name__}, not a string")
    return value


def quoted(value: Any) -> str:
    """A value from the request, safe to log: a string escaped (``ascii``) and cut short, or
    the name of what it is."""
    if not isinstance(value, str):
        return type(value).__name__
    return ascii(value[:40]) + ("..." if len(value) > 40 else "")


def register(app: AsyncApp, core: Core, http: aiohttp.ClientSession) -> None:
    async def provide_core(context: dict[str, Any], next: Any) -> None:
        context[STARTED] = time.monotonic()
        # the log lines of this request (and of the listeners it starts) carry its id
        logs.new_request(context.get(logs.REQUEST_ID))
        context[CORE] = core
        context[HTTP] = http
        await next()

    app.middleware(provide_core)
    app.middleware(check_access)


async def check_access(
    context: dict[str, Any], body: dict[str, Any], next: Any
) -> BoltResponse | None:
    try:
        return await _check_access(context, body, next)
    except Exception:
        # e.g. the database is restarting: say so plainly; the person can try again
        log.exception("could not check access for %s", context.get("user_id"))
        await audit(context, AuditOutcome.ERROR, {"error": "unavailable"})
        if body.get("type") == "view_submission":
            return BoltResponse(
                status=200,
                body={
                    "response_action": "errors",
                    "errors": {blocks.FACTORY: blocks.phrase("unavailable")},
                },
            )
        if body.get("command"):
            return BoltResponse(status=200, body=blocks.reply("unavailable"))
        return BoltResponse(status=200, body="")


async def _check_access(
    context: dict[str, Any], body: dict[str, Any], next: Any
) -> BoltResponse | None:
    core: Core = context[CORE]
    user_id = context.get("user_id")
    if not user_id:
        await next()  # nothing a person asked for (url_verification, other events)
        return None
    context.setdefault(SOURCE, "slack")
    logs.bind(user=user_id)
    permission: Permission | None = None
    if body.get("command"):
        text = f"{body['command']} {body.get('text', '')}".strip()
        context["pnc_text"] = text
        try:
            command = parse(body.get("text", ""))
        except PncError as exc:
            await audit(context, AuditOutcome.REFUSED, {"error": exc.code})
            return BoltResponse(status=200, body=blocks.refusal(exc))
        assert command.subcommand is not None
        permission = command.subcommand.permission
        context[COMMAND] = command
        logs.bind(subcommand=command.action, factory=command.args.get("factory"))
    elif body.get("type") == "block_actions" or _pressed_form(body):
        try:
            permission = _press(context, body)
        except PncError as exc:
            await audit(context, AuditOutcome.REFUSED, {"error": exc.code})
            return await _refuse_press(context, body, exc)
    elif body.get("type") == "view_submission":
        permission = _FORMS.get(body.get("view", {}).get("callback_id", ""))
        context["pnc_text"] = f"form: {body.get('view', {}).get('callback_id', '')}"
        logs.bind(subcommand=FORM)
    actor = context.get(ACTOR)
    if not isinstance(actor, Actor):  # the console shell may act as someone chosen locally
        actor = await access.actor(core, user_id, context[SOURCE])
        context[ACTOR] = actor
    if permission is not None and not actor.may(permission):
        try:
            actor.require(permission, await access.managers(core))  # names who may grant it
        except PncError as exc:
            detail = {"error": exc.code, "action": permission.action}
            await audit(context, AuditOutcome.REFUSED, detail)
            if actions.PRESS in context:
                return await _refuse_press(context, body, exc)
            return BoltResponse(status=200, body=_refused(body, exc))
    await next()
    return None


def _refused(body: dict[str, Any], exc: PncError) -> dict[str, Any]:
    if body.get("type") == "view_submission":
        return blocks.form_errors(exc)
    return blocks.refusal(exc)


def _pressed_form(body: dict[str, Any]) -> bool:
    view = body.get("view")
    return (
        body.get("type") == "view_submission"
        and isinstance(view, dict)
        and view.get("callback_id") == modals.PRESS_CALLBACK
    )


def _press(context: dict[str, Any], body: dict[str, Any]) -> Permission:
    """Read a button's press (or the form it opened) into the context; the permission of the
    command it stands for. A forged press or form is an ``InvalidInput``."""
    if body.get("type") == "block_actions":
        context["pnc_text"] = "button: (not readable)"
        press = actions.press_of(body)
        where = actions.where_of(body)
        context["pnc_text"] = f"button: {press}"
    else:
        context["pnc_text"] = "form: press (not readable)"
        press, channel, ts = modals.metadata(body["view"])
        where = (channel, ts)
        context["pnc_text"] = f"form: press {press}"
    context[actions.PRESS], context[actions.WHERE] = press, where
    logs.bind(subcommand=f"button {press.button}")
    return presses.PERMISSIONS[press.button]


async def _refuse_press(
    context: dict[str, Any], body: dict[str, Any], exc: PncError
) -> BoltResponse:
    """A press refused at the door: told to the presser alone; nothing else runs."""
    press = context.get(actions.PRESS)
    if body.get("type") == "view_submission":
        errors = modals.form_errors(press, exc) if press is not None else blocks.form_errors(exc)
        return BoltResponse(status=200, body=errors)
    try:
        await actions.tell(context, context.get("client"), body, blocks.refusal(exc))
    except Exception:
        log.exception("could not tell %s their press was refused", context.get("user_id"))
    return BoltResponse(status=200, body="")
