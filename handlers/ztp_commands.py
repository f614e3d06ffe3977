"""The ``/pnc`` subcommands of zero-tolerance cases (``handlers.declare.subcommand``): the open
cases, a case opened by hand, progress recorded on one. Their grammars are pure functions here,
fuzzed with the others (``tests/unit/test_parse_fuzz.py``)."""

from __future__ import annotations

from typing import Any

from bot.errors import MalformedCommand
from bot.roles import Actor
from bot.usecases import ztp
from bot.usecases.core import Core
from handlers import blocks
from handlers.declare import subcommand
from handlers.runner import Reply

OPEN_USAGE = "/pnc ztp open <factory> <code> <note>"
UPDATE_USAGE = "/pnc ztp update <case> investigating|action-plan|closed <note>"
_FORMS = (
    "`ztp` lists the open zero-tolerance cases; `ztp open <factory> <code> <note>` opens one, "
    "`ztp update <case> investigating|action-plan|closed <note>` records progress."
)


def ztp_list(args: list[str], usage: str) -> dict[str, Any]:
    """``ztp`` alone lists; any other word after it shows the forms."""
    if args:
        raise MalformedCommand(_FORMS, OPEN_USAGE)
    return {}


def ztp_open(args: list[str], usage: str) -> dict[str, Any]:
    """A factory, one issue code, and a note (the rest of the words; required)."""
    if len(args) < 3:
        raise MalformedCommand(
            "A zero-tolerance case needs the factory, an issue code and a note saying what was "
            "found.",
            usage,
        )
    return {"factory": args[0], "code": args[1], "note": " ".join(args[2:])}


def ztp_update(args: list[str], usage: str) -> dict[str, Any]:
    """A case's number, the step reached, and a note (required: it is kept with the case)."""
    if len(args) < 3:
        raise MalformedCommand(
            "Progress on a case needs its number, the step (`investigating`, `action-plan` or "
            "`closed`) and a note.",
            usage,
        )
    return {"case": args[0], "status": args[1], "note": " ".join(args[2:])}


def _reply(core: Core, what: str, **context: Any) -> Reply:
    return blocks.template("ztp", what=what, tz=core.settings.tz, now=core.clock(), **context)


@subcommand("ztp", "/pnc ztp", ztp.LIST, ztp_list, reads=True)
async def _ztp(core: Core, actor: Actor, args: dict[str, Any]) -> Reply:
    return _reply(core, "list", cases=await ztp.open_cases(core))


@subcommand("ztp open", OPEN_USAGE, ztp.OPEN, ztp_open)
async def _ztp_open(core: Core, actor: Actor, args: dict[str, Any]) -> Reply:
    opened = await ztp.open_by_hand(core, actor, args["factory"], args["code"], args["note"])
    return _reply(core, "opened", o=opened)


@subcommand("ztp update", UPDATE_USAGE, ztp.UPDATE, ztp_update)
async def _ztp_update(core: Core, actor: Actor, args: dict[str, Any]) -> Reply:
    case = await ztp.update(core, actor, args["case"], args["status"], args["note"])
    return _reply(core, "updated", c=case)
