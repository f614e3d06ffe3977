"""The operator's sub-commands of ``pnc-bot``: the outbox (``pnc-bot outbox …``) and the events
held for staff review (``pnc-bot review …``). The person at the server's command line acts as a
manager (``bot.roles.operator``)."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from bot.bootstrap import Bot
from bot.cli_run import fail, run, with_bot
from bot.errors import PncError
from bot.render import render_text
from bot.roles import operator
from bot.settings import load_settings

outbox_app = typer.Typer(
    help="Notices waiting, retrying and dead; retry one; send what is due.",
    invoke_without_command=True,
)
review_app = typer.Typer(
    help="Events held for staff review: list them, release one (its notices go out), dismiss one.",
    invoke_without_command=True,
)


@outbox_app.callback()
def outbox_default(ctx: typer.Context) -> None:
    """With no subcommand: the list."""
    if ctx.invoked_subcommand is None:
        outbox_list(as_json=False)


@outbox_app.command("list")
def outbox_list(
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Notices waiting, retrying and dead, and paused channels."""
    from bot.usecases import outbox_admin

    view = run(lambda: with_bot(lambda bot: outbox_admin.overview(bot.core, limit=100)))
    if as_json:
        typer.echo(json.dumps(view.to_json(), indent=2))
    else:
        typer.echo(render_text("cli/outbox.txt", o=view, tz=load_settings().tz), nl=False)


@outbox_app.command("retry")
def outbox_retry(
    words: Annotated[
        list[str] | None,
        typer.Argument(
            help="A notice's number, or `dead` for every dead notice, optionally narrowed by a "
            "notice kind and a factory (e.g. `dead at_risk_warning VN-1001`).",
            metavar="NUMBER | dead [KIND] [FACTORY]",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Send a dead or waiting notice again, or every dead one (they are sent by `serve` or
    `outbox send`); the words are read as `/pnc outbox retry` reads them."""
    from bot.usecases import outbox_admin
    from handlers.parse import outbox_retry as grammar

    try:
        args = grammar(words or [], "pnc-bot outbox retry <notice number> | dead [kind] [factory]")
    except PncError as exc:
        raise fail(exc.render()) from None

    async def work(bot: Bot) -> str:
        if args["notice"] is None:
            revived = await outbox_admin.retry_dead(
                bot.core, operator(), args["kind"], args["factory"]
            )
            return render_text("cli/outbox_retry.txt", revived=revived, line=None)
        line = await outbox_admin.retry(bot.core, operator(), args["notice"])
        return render_text("cli/outbox_retry.txt", revived=None, line=line)

    typer.echo(run(lambda: with_bot(work)), nl=False)


@outbox_app.command("send")
def outbox_send() -> None:
    """Deliver every notice that is due now, then exit (no Slack: staff alerts stay queued
    unless SLACK_BOT_TOKEN is set)."""

    async def work(bot: Bot) -> int:
        from slack_sdk.web.async_client import AsyncWebClient

        from bot.bootstrap import build_dispatcher

        token = bot.settings.slack_bot_token
        slack = (
            AsyncWebClient(token=token.get_secret_value(), base_url=bot.settings.slack_api_url)
            if token
            else None
        )
        dispatcher = build_dispatcher(bot, slack)
        total = 0
        try:
            while claimed := await dispatcher.run_once():
                total += claimed
        finally:
            await dispatcher.close()
        return total

    total = run(lambda: with_bot(work))
    typer.echo(f"{total} notices handled; see `pnc-bot outbox` for any still waiting")


EventNumber = Annotated[str, typer.Argument(help="The event's number, as `pnc-bot review` lists.")]


@review_app.callback()
def review_default(ctx: typer.Context) -> None:
    """With no subcommand: the list."""
    if ctx.invoked_subcommand is None:
        review_list(as_json=False)


@review_app.command("list")
def review_list(
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """The events held for review, numbered, with why and what people had been told."""
    from bot.usecases import review

    async def work(bot: Bot) -> str:
        view = await review.pending(bot.core, operator(), limit=100)
        if as_json:
            return json.dumps(view.to_json(), ensure_ascii=False, indent=2) + "\n"
        return render_text("cli/review.txt", v=view, done=None, tz=bot.settings.tz)

    typer.echo(run(lambda: with_bot(work)), nl=False)


@review_app.command("release")
def review_release(
    number: EventNumber,
) -> None:
    """Send a held event's notices and open what it leaves to do, as if it had just happened
    (they are sent by `serve` or `outbox send`)."""
    from bot.usecases import review

    async def work(bot: Bot) -> str:
        done = await review.release(bot.core, operator(), number)
        return render_text("cli/review.txt", v=None, done=done, tz=bot.settings.tz)

    typer.echo(run(lambda: with_bot(work)), nl=False)


@review_app.command("dismiss")
def review_dismiss(
    number: EventNumber,
    reason: Annotated[
        list[str] | None, typer.Argument(help="Why (required): kept with the event.")
    ] = None,
) -> None:
    """Close a held event without notices."""
    from bot.usecases import review

    async def work(bot: Bot) -> str:
        done = await review.dismiss(bot.core, operator(), number, " ".join(reason or []))
        return render_text("cli/review.txt", v=None, done=done, tz=bot.settings.tz)

    typer.echo(run(lambda: with_bot(work)), nl=False)
