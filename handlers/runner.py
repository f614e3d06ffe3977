"""Running a request's work after it is acknowledged, and the one audit entry it leaves.

``answer`` turns the work's outcome into the reply — its result, a refusal (a ``PncError``,
rendered in one place) or an apology for a fault on our side (logged, never shown) — sends it
through ``respond``, and writes the audit entry: who, what they typed, how it ended.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from bot.errors import PncError
from handlers import blocks

log = logging.getLogger(__name__)

SERVICES, ACTOR, COMMAND, SOURCE = "pnc_services", "pnc_actor", "pnc_command", "pnc_source"

Reply = dict[str, Any] | None


async def answer(
    context: dict[str, Any],
    respond: Callable[..., Awaitable[Any]],
    work: Callable[[], Awaitable[Reply]],
) -> None:
    detail: dict[str, Any] = {}
    try:
        reply = await work()
        outcome = "ok"
    except PncError as exc:
        reply, outcome, detail = blocks.refusal(exc), "refused", {"error": exc.code}
    except Exception as exc:
        log.exception("command failed: %s", context.get("pnc_text", "")[:200])
        reply, outcome, detail = blocks.reply("failure"), "error", {"error": type(exc).__name__}
    if reply is not None:
        try:
            await respond(**reply)
        except Exception:
            log.exception("could not deliver the reply to %s", context.get("user_id"))
    await audit(context, outcome, detail)


async def audit(context: dict[str, Any], outcome: str, detail: dict[str, Any]) -> None:
    """Record one request in the audit log; a failure to do so is logged, not raised."""
    command = context.get(COMMAND)
    if command is not None:
        detail = {"action": command.action, **detail}
    try:
        await context[SERVICES].log_command(
            context.get("user_id") or "unknown",
            context.get(SOURCE, "slack"),
            context.get("pnc_text", ""),
            outcome,
            detail,
        )
    except Exception:
        log.exception("could not write the audit entry")
