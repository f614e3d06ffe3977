"""The ``/pnc`` subcommands of Progress Report One (``handlers.declare.subcommand``)."""

from __future__ import annotations

from typing import Any

from bot.errors import MalformedCommand
from bot.roles import Actor
from bot.usecases import progress
from bot.usecases.core import Core
from handlers import blocks
from handlers import parse as grammar
from handlers.declare import subcommand
from handlers.runner import Reply

USAGE = "/pnc progress <factory> <YYYY-MM-DD> fixed <code,code,…|none>"


def read_progress(args: list[str], usage: str) -> dict[str, Any]:
    """``<factory> <YYYY-MM-DD> fixed <codes|none>``: a progress report and what it says fixed."""
    if len(args) < 4 or args[2].lower() != "fixed":
        raise MalformedCommand(
            "A progress report needs the factory, its date, `fixed` and the issue codes it "
            "reports fixed (or `none`).",
            usage,
        )
    return {**grammar.factory_and_date(args[:2], usage), "codes": " ".join(args[3:])}


@subcommand("progress", USAGE, progress.RECORD, read_progress)
async def _progress(core: Core, actor: Actor, args: dict[str, Any]) -> Reply:
    recorded = await progress.record(core, actor, args["factory"], args["date"], args["codes"])
    return blocks.template("progress", p=recorded)
