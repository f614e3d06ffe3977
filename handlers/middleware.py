"""The door every Slack request passes: who is asking, what they ask, whether they may.

``register`` installs two global middlewares. The first puts the use cases' core in the
context; the second resolves the person's role (configured or granted), parses ``/pnc`` text,
and checks the permission declared with the subcommand (``handlers.commands``). A request
refused here is answered at once — an ephemeral message for a command, field errors for a
form — and audited; nothing else runs.
Listeners therefore never check permissions themselves.
"""

from __future__ import annotations

import logging
from typing import Any

import aiohttp
from slack_bolt.async_app import AsyncApp
from slack_bolt.response import BoltResponse

from bot.errors import PncError
from bot.roles import Actor, Permission
from bot.usecases import access, assessments
from bot.usecases.core import Core
from bot.vocabulary import AuditOutcome
from handlers import blocks
from handlers.commands import parse
from handlers.runner import ACTOR, COMMAND, CORE, HTTP, SOURCE, audit

log = logging.getLogger(__name__)

#: forms that need a role, by their callback id
_FORMS: dict[str, Permission] = {blocks.ASSESS_CALLBACK: assessments.RECORD}


def register(app: AsyncApp, core: Core, http: aiohttp.ClientSession) -> None:
    async def provide_core(context: dict[str, Any], next: Any) -> None:
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
    elif body.get("type") == "view_submission":
        permission = _FORMS.get(body.get("view", {}).get("callback_id", ""))
        context["pnc_text"] = f"form: {body.get('view', {}).get('callback_id', '')}"
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
            return BoltResponse(status=200, body=_refused(body, exc))
    await next()
    return None


def _refused(body: dict[str, Any], exc: PncError) -> dict[str, Any]:
    if body.get("type") == "view_submission":
        return blocks.form_errors(exc)
    return blocks.refusal(exc)
