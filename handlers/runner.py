"""Running a request's work after it is acknowledged, and the one audit entry it leaves.

``answer`` turns the work's outcome into the reply — its result, a refusal (a ``PncError``,
rendered in one place) or an apology for a fault on our side (logged, never shown) — sends it
through ``respond``, and writes the audit entry: who, what they typed, how it ended.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
import weakref
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, cast

from slack_sdk.webhook.async_client import AsyncWebhookClient

from bot.errors import PncError
from bot.metrics import INSTRUMENTS
from bot.usecases import access
from bot.vocabulary import AuditOutcome
from handlers import blocks

log = logging.getLogger(__name__)

CORE, ACTOR, COMMAND, SOURCE = "pnc_core", "pnc_actor", "pnc_command", "pnc_source"
HTTP = "pnc_http"
#: when the request reached the door (``time.monotonic()``); what a form counts as in metrics
STARTED, FORM = "pnc_started", "form"
#: what a button press counts as in metrics (its audit text starts ``button:``)
BUTTON = "button"

Reply = dict[str, Any] | None
F = TypeVar("F", bound=Callable[..., Awaitable[Any]])

#: listener tasks still running; a stopping server (and the shell) waits for them
IN_FLIGHT: weakref.WeakSet[asyncio.Task[Any]] = weakref.WeakSet()


def tracked(listener: F) -> F:
    """Register a listener's task in ``IN_FLIGHT`` while it runs. Bolt injects arguments by
    name; ``functools.wraps`` keeps the listener's signature visible to it."""

    @functools.wraps(listener)
    async def run(*args: Any, **kwargs: Any) -> Any:
        task = asyncio.current_task()
        if task is not None:
            IN_FLIGHT.add(task)
        return await listener(*args, **kwargs)

    return cast(F, run)


async def settle(seconds: float) -> int:
    """Wait up to ``seconds`` for the listeners in flight; returns how many are still running."""
    pending = [t for t in IN_FLIGHT if not t.done() and t is not asyncio.current_task()]
    if not pending:
        return 0
    _, still = await asyncio.wait(pending, timeout=seconds)
    return len(still)


async def answer(
    context: dict[str, Any],
    respond: Callable[..., Awaitable[Any]],
    work: Callable[[], Awaitable[Reply]],
) -> None:
    detail: dict[str, Any] = {}
    try:
        reply = await work()
        outcome = AuditOutcome.OK
    except PncError as exc:
        reply, outcome, detail = blocks.refusal(exc), AuditOutcome.REFUSED, {"error": exc.code}
    except Exception as exc:
        log.exception("command failed: %s", context.get("pnc_text", "")[:200])
        reply, outcome = blocks.reply("failure"), AuditOutcome.ERROR
        detail = {"error": type(exc).__name__}
    await audit(context, outcome, detail)  # on record before the person sees the outcome
    if reply is not None:
        try:
            await _reply(context, respond, reply)
        except Exception:
            log.exception("could not deliver the reply to %s", context.get("user_id"))


async def _reply(
    context: dict[str, Any], respond: Callable[..., Awaitable[Any]], reply: dict[str, Any]
) -> None:
    """Send the reply to the command's response URL over the app's keep-alive session (Bolt's
    ``respond`` opens a new connection for every reply)."""
    url, http = getattr(respond, "response_url", None), context.get(HTTP)
    if url and http is not None:
        response = await AsyncWebhookClient(url, session=http).send_dict(reply)
        if response.status_code >= 400:
            raise RuntimeError(f"response URL answered {response.status_code}")
    else:
        await respond(**reply)


async def audit(context: dict[str, Any], outcome: AuditOutcome, detail: dict[str, Any]) -> None:
    """Record one request in the audit log; a failure to do so is logged, not raised."""
    command = context.get(COMMAND)
    if command is not None:
        detail = {"action": command.action, **detail}
    _measure(context, outcome, detail)
    try:
        await access.log_command(
            context[CORE],
            context.get("user_id") or "unknown",
            context.get(SOURCE, "slack"),
            context.get("pnc_text", ""),
            outcome,
            detail,
        )
    except Exception:
        log.exception("could not write the audit entry")


def _measure(context: dict[str, Any], outcome: AuditOutcome, detail: dict[str, Any]) -> None:
    """The request's latency by subcommand and outcome, and a refusal's code (``/metrics``)."""
    command = context.get(COMMAND)
    if command is not None:
        subcommand = command.action
    else:  # a form, a button, or a command refused before it could be parsed
        text = str(context.get("pnc_text", ""))
        subcommand = next((k for k in (FORM, BUTTON) if text.startswith(f"{k}:")), "unparsed")
    started = context.get(STARTED)
    seconds = time.monotonic() - started if isinstance(started, float) else None
    refusal = detail.get("error") if outcome == AuditOutcome.REFUSED else None
    INSTRUMENTS.command(subcommand, outcome, seconds, refusal)
