"""The ``/pnc`` command. The listener acknowledges at once (Slack allows 3 s), then runs the
subcommand and replies through ``respond``. Each subcommand is a small function: arguments in,
one service call, a reply out. Permissions were checked at the door (``handlers.middleware``)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.async_app import AsyncApp

from bot.readmission import Readmissions
from bot.roles import Actor
from bot.schedule import Calls
from bot.services import Services
from handlers import blocks
from handlers.parse import USAGE, Command
from handlers.runner import ACTOR, COMMAND, SERVICES, Reply, answer, tracked

Handler = Callable[[Services, Actor, dict[str, Any]], Awaitable[Reply]]


def register(app: AsyncApp) -> None:
    app.command("/pnc")(tracked(pnc))


async def pnc(
    ack: Any, respond: Any, command: dict[str, Any], context: dict[str, Any], client: Any
) -> None:
    parsed: Command = context[COMMAND]
    services: Services = context[SERVICES]
    actor: Actor = context[ACTOR]
    await ack()
    if parsed.action == "assess" and "date" not in parsed.args:
        # the form: trigger_id expires ~3 s after the command, so open it before anything slow
        async def open_form() -> Reply:
            factory_id = parsed.args.get("factory")
            code = (await services.factory(factory_id)).country if factory_id else None
            view = blocks.assess_modal(services.country(code), services.today(), factory_id)
            await client.views_open(trigger_id=command["trigger_id"], view=view)
            return None

        await answer(context, respond, open_form)
        return
    handler = HANDLERS[parsed.action]
    await answer(context, respond, lambda: handler(services, actor, parsed.args))


async def _help(services: Services, actor: Actor, args: dict[str, Any]) -> Reply:
    return blocks.template("help", usage=USAGE, role=actor.role.label if actor.role else None)


async def _status(services: Services, actor: Actor, args: dict[str, Any]) -> Reply:
    view = await services.status(args["factory"])
    return blocks.template("status", v=view, shown=view.latest(5))


async def _history(services: Services, actor: Actor, args: dict[str, Any]) -> Reply:
    return blocks.template("history", v=await services.history(args["factory"]))


async def _assess(services: Services, actor: Actor, args: dict[str, Any]) -> Reply:
    outcome = await services.record_assessment(
        actor, args["factory"], args["date"], args["codes"], args["kind"]
    )
    return blocks.template("assessed", o=outcome)


async def _factory_add(services: Services, actor: Actor, args: dict[str, Any]) -> Reply:
    factory = await services.add_factory(
        actor,
        args["factory"],
        args["name"],
        args["country"],
        args["emails"],
        args["language"],
        args["cycle_end"],
    )
    return blocks.reply("factory_added", factory, services.country(factory.country))


async def _buyer_add(services: Services, actor: Actor, args: dict[str, Any]) -> Reply:
    buyer = await services.add_buyer(actor, args["buyer"], args["name"], args["emails"])
    return blocks.reply("buyer_added", buyer)


async def _subscribe(services: Services, actor: Actor, args: dict[str, Any]) -> Reply:
    created = await services.subscribe(actor, args["buyer"], args["factory"])
    return blocks.reply("subscribed", args["buyer"].upper(), args["factory"].upper(), created)


async def _unsubscribe(services: Services, actor: Actor, args: dict[str, Any]) -> Reply:
    await services.unsubscribe(actor, args["buyer"], args["factory"])
    return blocks.reply("unsubscribed", args["buyer"].upper(), args["factory"].upper())


async def _at_risk(services: Services, actor: Actor, args: dict[str, Any]) -> Reply:
    return blocks.template("watch_list", w=await services.watch_list(args["country"]))


async def _issues(services: Services, actor: Actor, args: dict[str, Any]) -> Reply:
    country = services.country(args["country"])
    return blocks.template("issues", country=country, clusters=country.catalogue.clusters())


async def _amend(services: Services, actor: Actor, args: dict[str, Any]) -> Reply:
    outcome = await services.amend_assessment(
        actor, args["factory"], args["date"], args["reason"], nc_issues=args["codes"]
    )
    return blocks.reply("amended", outcome)


async def _withdraw(services: Services, actor: Actor, args: dict[str, Any]) -> Reply:
    outcome = await services.withdraw_assessment(
        actor, args["factory"], args["date"], args["reason"]
    )
    return blocks.reply("withdrawn", outcome)


async def _role_grant(services: Services, actor: Actor, args: dict[str, Any]) -> Reply:
    user_id, level = await services.grant_role(actor, args["user"], args["role"])
    return blocks.reply("role_granted", user_id, level.label)


async def _role_revoke(services: Services, actor: Actor, args: dict[str, Any]) -> Reply:
    return blocks.reply("role_revoked", await services.revoke_role(actor, args["user"]))


async def _outbox(services: Services, actor: Actor, args: dict[str, Any]) -> Reply:
    return blocks.template("outbox", o=await services.outbox(), tz=services.settings.tz)


async def _outbox_retry(services: Services, actor: Actor, args: dict[str, Any]) -> Reply:
    return blocks.reply("notice_retried", await services.retry_notice(actor, args["notice"]))


async def _readmission_apply(services: Services, actor: Actor, args: dict[str, Any]) -> Reply:
    outcome = await Readmissions(services).apply(
        actor, args["factory"], args["evidence"], args["reports"]
    )
    return blocks.reply("readmission_applied", outcome)


async def _readmission_visit(services: Services, actor: Actor, args: dict[str, Any]) -> Reply:
    visit = await Readmissions(services).schedule_visit(actor, args["factory"], args["date"])
    return blocks.reply("visit_scheduled", args["factory"].upper(), visit)


async def _readmission_approve(services: Services, actor: Actor, args: dict[str, Any]) -> Reply:
    outcome = await Readmissions(services).decide(actor, args["factory"], True, args["note"])
    return blocks.reply("readmission_decided", outcome, True)


async def _readmission_reject(services: Services, actor: Actor, args: dict[str, Any]) -> Reply:
    outcome = await Readmissions(services).decide(actor, args["factory"], False, args["note"])
    return blocks.reply("readmission_decided", outcome, False)


async def _calls_add(services: Services, actor: Actor, args: dict[str, Any]) -> Reply:
    call = await Calls(services).add(actor, args["date"], args["time"])
    return blocks.reply("call_added", call)


async def _calls_list(services: Services, actor: Actor, args: dict[str, Any]) -> Reply:
    return blocks.template("calls", calls=await Calls(services).upcoming())


async def _calls_remove(services: Services, actor: Actor, args: dict[str, Any]) -> Reply:
    removed = await Calls(services).remove(actor, args["date"])
    return blocks.reply("calls_removed", args["date"], removed)


async def _meeting_held(services: Services, actor: Actor, args: dict[str, Any]) -> Reply:
    held = await Readmissions(services).meeting_held(actor, args["factory"], args["date"])
    return blocks.reply("meeting_held", args["factory"].upper(), held)


HANDLERS: dict[str, Handler] = {
    "help": _help,
    "status": _status,
    "history": _history,
    "assess": _assess,
    "factory add": _factory_add,
    "buyer add": _buyer_add,
    "subscribe": _subscribe,
    "unsubscribe": _unsubscribe,
    "at-risk": _at_risk,
    "issues": _issues,
    "assessment amend": _amend,
    "assessment withdraw": _withdraw,
    "readmission apply": _readmission_apply,
    "readmission unannounced": _readmission_visit,
    "readmission approve": _readmission_approve,
    "readmission reject": _readmission_reject,
    "calls add": _calls_add,
    "calls list": _calls_list,
    "calls remove": _calls_remove,
    "meeting held": _meeting_held,
    "outbox": _outbox,
    "outbox retry": _outbox_retry,
    "role grant": _role_grant,
    "role revoke": _role_revoke,
}
