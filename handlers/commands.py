"""The ``/pnc`` command. Each subcommand is declared once, here: what is typed, its usage line,
who may run it, its grammar (``handlers.parse``) and what it does — a small function: arguments
in, one use case, a reply out. Permissions are checked at the door (``handlers.middleware``)
from the same declaration; the use cases that change something check them again.

The listener acknowledges at once (Slack allows 3 s), then runs the subcommand and replies
through ``respond``.
"""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncApp

from bot.roles import Actor, Permission, RoleLevel
from bot.usecases import (
    access,
    assessments,
    calls,
    follow_ups,
    inspectorate,
    outbox_admin,
    reading,
    readmission,
    referrals,
    registry,
    review,
)
from bot.usecases.core import Core
from handlers import blocks
from handlers import parse as grammar
from handlers.declare import SUBCOMMANDS, subcommand
from handlers.parse import Command
from handlers.runner import ACTOR, COMMAND, CORE, Reply, answer, answer_now, tracked


def parse(text: str) -> Command:
    """What ``/pnc <text>`` means (a ``MalformedCommand`` if nothing)."""
    return grammar.parse(text, SUBCOMMANDS)


def register(app: AsyncApp) -> None:
    app.command("/pnc")(tracked(pnc))


async def pnc(
    ack: Any, respond: Any, command: dict[str, Any], context: dict[str, Any], client: Any
) -> None:
    parsed: Command = context[COMMAND]
    core: Core = context[CORE]
    actor: Actor = context[ACTOR]
    assert parsed.subcommand is not None
    run = parsed.subcommand.run
    if parsed.subcommand.reads:
        await answer_now(context, ack, respond, lambda: run(core, actor, parsed.args))
        return
    await ack()
    if parsed.action == assessments.RECORD.action and "date" not in parsed.args:
        # the form: trigger_id expires ~3 s after the command, so open it before anything slow
        async def open_form() -> Reply:
            factory_id = parsed.args.get("factory")
            code = (await reading.factory(core, factory_id)).country if factory_id else None
            view = blocks.assess_modal(core.country(code), core.today(), factory_id)
            await client.views_open(trigger_id=command["trigger_id"], view=view)
            return None

        await answer(context, respond, open_form)
        return
    await answer(context, respond, lambda: run(core, actor, parsed.args))


def _staff(action: str) -> Permission:
    return Permission(action, RoleLevel.VIEWER)


# --- anyone on staff --------------------------------------------------------------------------


@subcommand("status", "/pnc status <factory>", _staff("status"), grammar.one_factory, reads=True)
async def _status(core: Core, actor: Actor, args: dict[str, Any]) -> Reply:
    view = await reading.status(core, args["factory"])
    return blocks.template("status", v=view, shown=view.latest(5))


@subcommand("history", "/pnc history <factory>", _staff("history"), grammar.one_factory, reads=True)
async def _history(core: Core, actor: Actor, args: dict[str, Any]) -> Reply:
    return blocks.template("history", v=await reading.history_of(core, args["factory"]))


@subcommand(
    "at-risk", "/pnc at-risk [country]", _staff("at-risk"), grammar.optional_country, reads=True
)
async def _at_risk(core: Core, actor: Actor, args: dict[str, Any]) -> Reply:
    return blocks.template("watch_list", w=await reading.watch_list(core, args["country"]))


@subcommand(
    "issues", "/pnc issues [country]", _staff("issues"), grammar.optional_country, reads=True
)
async def _issues(core: Core, actor: Actor, args: dict[str, Any]) -> Reply:
    country = core.country(args["country"])
    return blocks.template("issues", country=country, clusters=country.catalogue.clusters())


@subcommand("help", "/pnc help", _staff("help"), grammar.nothing, reads=True)
async def _help(core: Core, actor: Actor, args: dict[str, Any]) -> Reply:
    usages = {level.label: usages_of(level) for level in RoleLevel}
    return blocks.template("help", usages=usages, role=actor.role.label if actor.role else None)


# --- assessors --------------------------------------------------------------------------------


@subcommand(
    "assess",
    "/pnc assess [<factory> <YYYY-MM-DD> <code,code,…|none> [unannounced|advisory|verification]"
    " [report <YYYY-MM-DD>]]",
    assessments.RECORD,
    grammar.assess,
)
async def _assess(core: Core, actor: Actor, args: dict[str, Any]) -> Reply:
    outcome = await assessments.record(
        core,
        actor,
        args["factory"],
        args["date"],
        args["codes"],
        args["kind"],
        report_on=args.get("report_on"),
    )
    return blocks.template("assessed", o=outcome)


@subcommand(
    "factory add",
    '/pnc factory add <id> "<name>" <country> <emails> [vi|en] [<cycle end>]',
    registry.ADD_FACTORY,
    grammar.factory_add,
)
async def _factory_add(core: Core, actor: Actor, args: dict[str, Any]) -> Reply:
    factory = await registry.add_factory(
        core,
        actor,
        args["factory"],
        args["name"],
        args["country"],
        args["emails"],
        args["language"],
        args["cycle_end"],
    )
    return blocks.reply("factory_added", factory, core.country(factory.country))


@subcommand(
    "buyer add", '/pnc buyer add <id> "<name>" <emails>', registry.ADD_BUYER, grammar.buyer_add
)
async def _buyer_add(core: Core, actor: Actor, args: dict[str, Any]) -> Reply:
    buyer = await registry.add_buyer(core, actor, args["buyer"], args["name"], args["emails"])
    return blocks.reply("buyer_added", buyer)


@subcommand(
    "subscribe",
    "/pnc subscribe <buyer> <factory>",
    registry.SUBSCRIBE,
    grammar.buyer_and_factory,
)
async def _subscribe(core: Core, actor: Actor, args: dict[str, Any]) -> Reply:
    created = await registry.subscribe(core, actor, args["buyer"], args["factory"])
    return blocks.reply("subscribed", args["buyer"].upper(), args["factory"].upper(), created)


@subcommand(
    "unsubscribe",
    "/pnc unsubscribe <buyer> <factory>",
    registry.UNSUBSCRIBE,
    grammar.buyer_and_factory,
)
async def _unsubscribe(core: Core, actor: Actor, args: dict[str, Any]) -> Reply:
    await registry.unsubscribe(core, actor, args["buyer"], args["factory"])
    return blocks.reply("unsubscribed", args["buyer"].upper(), args["factory"].upper())


@subcommand(
    "readmission apply",
    "/pnc readmission apply <factory> <evidence link> … [reports <link> …]",
    readmission.APPLY,
    grammar.readmission_apply,
)
async def _readmission_apply(core: Core, actor: Actor, args: dict[str, Any]) -> Reply:
    outcome = await readmission.apply(
        core, actor, args["factory"], args["evidence"], args["reports"]
    )
    return blocks.reply("readmission_applied", outcome)


@subcommand(
    "meeting held",
    "/pnc meeting held <factory> <YYYY-MM-DD>",
    follow_ups.MEETING_HELD,
    grammar.factory_and_date,
)
async def _meeting_held(core: Core, actor: Actor, args: dict[str, Any]) -> Reply:
    held = await follow_ups.meeting_held(core, actor, args["factory"], args["date"])
    return blocks.reply("meeting_held", args["factory"].upper(), held)


# the Labour Inspectorate's visits and the improvement reports answering them


@subcommand(
    "inspectorate visit",
    "/pnc inspectorate visit <factory> <YYYY-MM-DD>",
    inspectorate.VISIT,
    grammar.factory_and_date,
)
async def _inspectorate_visit(core: Core, actor: Actor, args: dict[str, Any]) -> Reply:
    visit = await inspectorate.record_visit(core, actor, args["factory"], args["date"])
    return blocks.reply("visit_recorded", visit)


@subcommand(
    "readmission report",
    "/pnc readmission report <factory> <link>",
    readmission.REPORT,
    grammar.factory_and_link,
)
async def _readmission_report(core: Core, actor: Actor, args: dict[str, Any]) -> Reply:
    added = await readmission.add_report(core, actor, args["factory"], args["link"])
    return blocks.reply("report_added", added)


# --- managers ---------------------------------------------------------------------------------


@subcommand(
    "amend",
    "/pnc amend <factory> <YYYY-MM-DD> <code,code,…|none|kind> <reason>",
    assessments.AMEND,
    grammar.amend,
)
async def _amend(core: Core, actor: Actor, args: dict[str, Any]) -> Reply:
    outcome = await assessments.amend(
        core,
        actor,
        args["factory"],
        args["date"],
        args["reason"],
        nc_issues=args["codes"],
        kind=args["kind"],
    )
    return blocks.reply("amended", outcome)


@subcommand(
    "withdraw",
    "/pnc withdraw <factory> <YYYY-MM-DD> <reason>",
    assessments.WITHDRAW,
    grammar.withdraw,
)
async def _withdraw(core: Core, actor: Actor, args: dict[str, Any]) -> Reply:
    outcome = await assessments.withdraw(core, actor, args["factory"], args["date"], args["reason"])
    return blocks.reply("withdrawn", outcome)


@subcommand(
    "readmission unannounced",
    "/pnc readmission unannounced <factory> <YYYY-MM-DD>",
    readmission.SCHEDULE_VISIT,
    grammar.factory_and_date,
)
async def _readmission_visit(core: Core, actor: Actor, args: dict[str, Any]) -> Reply:
    visit = await readmission.schedule_visit(core, actor, args["factory"], args["date"])
    return blocks.reply("visit_scheduled", args["factory"].upper(), visit)


@subcommand(
    "readmission approve",
    "/pnc readmission approve <factory> [note]",
    readmission.APPROVE,
    grammar.factory_and_note,
)
async def _readmission_approve(core: Core, actor: Actor, args: dict[str, Any]) -> Reply:
    outcome = await readmission.decide(core, actor, args["factory"], True, args["note"])
    return blocks.reply("readmission_decided", outcome, True)


@subcommand(
    "readmission reject",
    "/pnc readmission reject <factory> <reason>",
    readmission.REJECT,
    grammar.factory_and_reason,
)
async def _readmission_reject(core: Core, actor: Actor, args: dict[str, Any]) -> Reply:
    outcome = await readmission.decide(core, actor, args["factory"], False, args["note"])
    return blocks.reply("readmission_decided", outcome, False)


@subcommand(
    "calls add", "/pnc calls add <YYYY-MM-DD> [HH:MM] [quarterly]", calls.ADD, grammar.calls_add
)
async def _calls_add(core: Core, actor: Actor, args: dict[str, Any]) -> Reply:
    if args["quarterly"]:
        series = await calls.add_series(core, actor, args["date"], args["time"])
        return blocks.reply("series_added", series)
    return blocks.reply("call_added", await calls.add(core, actor, args["date"], args["time"]))


@subcommand(
    "calls list",
    "/pnc calls list",
    Permission("calls list", RoleLevel.MANAGER),
    grammar.no_more,
    default=True,
    reads=True,
)
async def _calls_list(core: Core, actor: Actor, args: dict[str, Any]) -> Reply:
    return blocks.template("calls", c=await calls.calendar(core))


@subcommand(
    "calls remove", "/pnc calls remove <YYYY-MM-DD> [series]", calls.REMOVE, grammar.calls_remove
)
async def _calls_remove(core: Core, actor: Actor, args: dict[str, Any]) -> Reply:
    if args["series"]:
        return blocks.reply("series_removed", await calls.remove_series(core, actor, args["date"]))
    removed = await calls.remove(core, actor, args["date"])
    return blocks.reply("calls_removed", args["date"], removed)


@subcommand("referral send", "/pnc referral send <factory>", referrals.SEND, grammar.one_factory)
async def _referral_send(core: Core, actor: Actor, args: dict[str, Any]) -> Reply:
    return blocks.reply("referral_sent", await referrals.send(core, actor, args["factory"]))


_RETRY_USAGE = "/pnc outbox retry <notice number> | dead [kind] [factory]"


@subcommand(
    "outbox",
    "/pnc outbox",
    Permission("outbox", RoleLevel.MANAGER),
    grammar.outbox(_RETRY_USAGE),
    reads=True,
)
async def _outbox(core: Core, actor: Actor, args: dict[str, Any]) -> Reply:
    return blocks.template("outbox", o=await outbox_admin.overview(core), tz=core.settings.tz)


@subcommand("outbox retry", _RETRY_USAGE, outbox_admin.RETRY, grammar.outbox_retry)
async def _outbox_retry(core: Core, actor: Actor, args: dict[str, Any]) -> Reply:
    if args["notice"] is None:  # dead: every dead notice, of a kind, about a factory
        revived = await outbox_admin.retry_dead(core, actor, args["kind"], args["factory"])
        return blocks.reply("notices_retried", revived)
    return blocks.reply("notice_retried", await outbox_admin.retry(core, actor, args["notice"]))


_RELEASE_USAGE = "/pnc review release <number>"


@subcommand("review", "/pnc review", review.LIST, grammar.review(_RELEASE_USAGE), reads=True)
async def _review(core: Core, actor: Actor, args: dict[str, Any]) -> Reply:
    return blocks.template("review", v=await review.pending(core, actor), tz=core.settings.tz)


@subcommand("review release", _RELEASE_USAGE, review.RELEASE, grammar.review_release)
async def _review_release(core: Core, actor: Actor, args: dict[str, Any]) -> Reply:
    return blocks.reply("review_released", await review.release(core, actor, args["event"]))


@subcommand(
    "review dismiss",
    "/pnc review dismiss <number> <reason>",
    review.DISMISS,
    grammar.review_dismiss,
)
async def _review_dismiss(core: Core, actor: Actor, args: dict[str, Any]) -> Reply:
    outcome = await review.dismiss(core, actor, args["event"], args["reason"])
    return blocks.reply("review_dismissed", outcome)


@subcommand(
    "role grant",
    "/pnc role grant <@user> <viewer|assessor|manager>",
    access.GRANT,
    grammar.role_grant,
)
async def _role_grant(core: Core, actor: Actor, args: dict[str, Any]) -> Reply:
    user_id, level = await access.grant(core, actor, args["user"], args["role"])
    return blocks.reply("role_granted", user_id, level.label)


@subcommand("role revoke", "/pnc role revoke <@user>", access.REVOKE, grammar.role_revoke)
async def _role_revoke(core: Core, actor: Actor, args: dict[str, Any]) -> Reply:
    return blocks.reply("role_revoked", await access.revoke(core, actor, args["user"]))


# --- views of the declarations ----------------------------------------------------------------

# the subcommands declared in modules of their own, listed after these
from handlers import progress_commands, ztp_commands  # noqa: E402, F401

#: each subcommand's usage line, by action
USAGE: dict[str, str] = {c.action: c.usage for c in SUBCOMMANDS}
#: each subcommand's permission, by action
PERMISSIONS: dict[str, Permission] = {c.action: c.permission for c in SUBCOMMANDS}
#: the words a subcommand can start with
VERBS: tuple[str, ...] = tuple(dict.fromkeys(c.words.split()[0] for c in SUBCOMMANDS))


def usages_of(level: RoleLevel) -> list[str]:
    """The usage lines of the subcommands that need exactly ``level``, in declaration order."""
    return [c.usage for c in SUBCOMMANDS if c.permission.role == level]
