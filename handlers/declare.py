"""Where ``/pnc`` subcommands are declared: ``subcommand`` adds one to ``SUBCOMMANDS``. The core
ones are in ``handlers.commands``; the zero-tolerance and progress-report ones in modules of
their own (``handlers.ztp_commands``, ``handlers.progress_commands``), which ``handlers.commands``
imports so that every declaration is made before its tables (usage, permissions, verbs) are
built."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from bot.roles import Actor, Permission
from bot.usecases.core import Core
from handlers.parse import Grammar, Subcommand
from handlers.runner import Reply

Handler = Callable[[Core, Actor, dict[str, Any]], Awaitable[Reply]]

#: every subcommand, in the order ``help`` lists them
SUBCOMMANDS: list[Subcommand] = []


def subcommand(
    words: str,
    usage: str,
    permission: Permission,
    read: Grammar,
    *,
    default: bool = False,
    reads: bool = False,
) -> Callable[[Handler], Handler]:
    """Declare a subcommand: ``words`` typed after ``/pnc``, its usage line, the permission it
    needs, its grammar; ``default`` when its first word alone means it; ``reads`` when it
    changes nothing (its answer then goes in the acknowledgement)."""

    def declare(run: Handler) -> Handler:
        SUBCOMMANDS.append(Subcommand(words, usage, permission, read, run, default, reads))
        return run

    return declare
