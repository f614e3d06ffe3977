"""``pnc-bot progress``: record a factory's progress report (Progress Report One) from the
server's command line, as ``/pnc progress`` does; the operator acts as a manager.

The use case is imported by the command that runs it: every command's start-up imports this
module.
"""

from __future__ import annotations

from typing import Annotated

import typer

from bot.bootstrap import Bot
from bot.cli_run import fail, run, with_bot
from bot.errors import PncError
from bot.render import render_text
from bot.roles import operator

USAGE = "pnc-bot progress <factory> <YYYY-MM-DD> fixed <code,code,…|none>"


def progress(
    words: Annotated[
        list[str],
        typer.Argument(
            help="The factory, the report's date, `fixed` and the codes it reports fixed "
            "(or `none`), e.g. `VN-1001 2026-02-05 fixed CO-01,OS-01`.",
            metavar="FACTORY YYYY-MM-DD fixed CODES|none",
            show_default=False,
        ),
    ],
) -> None:
    """Record what a factory's progress report says it fixed of the issues its latest counted
    assessment found; its reminders stop."""
    from bot.usecases import progress as use_case
    from handlers.progress_commands import read_progress

    try:
        args = read_progress(list(words), USAGE)
    except PncError as exc:
        raise fail(exc.render()) from None

    async def work(bot: Bot) -> str:
        recorded = await use_case.record(
            bot.core, operator(), args["factory"], args["date"], args["codes"]
        )
        return render_text("cli/progress.txt", p=recorded)

    typer.echo(run(lambda: with_bot(work)), nl=False)
