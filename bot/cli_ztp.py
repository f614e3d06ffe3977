"""``pnc-bot ztp``: zero-tolerance cases on the command line — the open ones, one opened by
hand, progress recorded on one. The person at the server's command line acts as a manager
(``bot.roles.operator``); the words are read as ``/pnc ztp …`` reads them.

The use case is imported by the command that runs it: every command's start-up imports this
module.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from bot.bootstrap import Bot
from bot.cli_run import run, with_bot
from bot.render import render_text
from bot.roles import operator

ztp_app = typer.Typer(
    help="Zero-tolerance cases: list the open ones, open one by hand, record progress.",
    invoke_without_command=True,
)

Note = Annotated[list[str] | None, typer.Argument(help="A note (required): kept with the case.")]


def _text(bot: Bot, what: str, **context: Any) -> str:
    return render_text(
        "cli/ztp.txt", what=what, tz=bot.settings.tz, now=bot.core.clock(), **context
    )


@ztp_app.callback()
def ztp_default(ctx: typer.Context) -> None:
    """With no subcommand: the open cases."""
    if ctx.invoked_subcommand is None:
        ztp_list(as_json=False)


@ztp_app.command("list")
def ztp_list(
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON list.")] = False,
) -> None:
    """The open zero-tolerance cases, oldest first, with their deadlines."""

    async def work(bot: Bot) -> str:
        from bot.usecases import ztp

        cases = await ztp.open_cases(bot.core)
        if as_json:
            return json.dumps([c.to_json() for c in cases], ensure_ascii=False, indent=2) + "\n"
        return _text(bot, "list", cases=cases)

    typer.echo(run(lambda: with_bot(work)), nl=False)


@ztp_app.command("open")
def ztp_open(
    factory: Annotated[str, typer.Argument(help="The factory's id.")],
    code: Annotated[str, typer.Argument(help="One issue code of its country's catalogue.")],
    note: Note = None,
) -> None:
    """Open a case by hand: the staff alert and the authorities' email go out (by `serve` or
    `outbox send`); the factory is not emailed."""

    async def work(bot: Bot) -> str:
        from bot.usecases import ztp

        opened = await ztp.open_by_hand(bot.core, operator(), factory, code, " ".join(note or []))
        return _text(bot, "opened", o=opened)

    typer.echo(run(lambda: with_bot(work)), nl=False)


@ztp_app.command("update")
def ztp_update(
    case: Annotated[str, typer.Argument(help="The case's number, as `pnc-bot ztp` lists.")],
    status: Annotated[str, typer.Argument(help="investigating, action-plan or closed.")],
    note: Note = None,
) -> None:
    """Record progress on a case (forward only; closing it cancels its reminders)."""

    async def work(bot: Bot) -> str:
        from bot.usecases import ztp

        line = await ztp.update(bot.core, operator(), case, status, " ".join(note or []))
        return _text(bot, "updated", c=line)

    typer.echo(run(lambda: with_bot(work)), nl=False)
