"""Running a request's work, and the one audit entry it leaves.

``answer`` runs acknowledged work and turns its outcome into the reply — its result, a refusal
(a ``PncError``, rendered in one place) or an apology for a fault on our side (logged, never
shown) — sends it through ``respond``, and writes the audit entry: who, what they typed, how it
ended. ``answer_now`` does the same for a read, whose reply goes in the acknowledgement.
``tracked`` lets Bolt answer Slack as soon as a listener acknowledges.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
import weakref
from asyncio import FIRST_COMPLETED
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, cast

from slack_sdk.webhook.async_client import AsyncWebhookClient

from bot.errors import PncError
from bot.metrics import INSTRUMENTS
from bot.usecases import access, read_audits
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

#: how long Bolt is kept waiting for a listener's acknowledgement (Slack allows 3 s)
ACK_WAIT = 2.9
#: how long a read may take to be answered in its acknowledgement (``answer_now``)
ACK_WITHIN = 2.0

#: listener tasks still running; a stopping server (and the shell) waits for them
IN_FLIGHT: weakref.WeakSet[asyncio.Task[Any]] = weakref.WeakSet()


def tracked(listener: F) -> F:
    """Run a listener in a task of its own, registered in ``IN_FLIGHT`` while it runs, and
    return to Bolt as soon as it acknowledges (or at once, for an event, which Bolt
    acknowledges itself): the app runs with ``process_before_response``, so Bolt answers Slack
    the moment this returns, with what was passed to ``ack`` — no polling for it — while the
    rest of the listener's work goes on. Bolt injects arguments by name;
    ``functools.wraps`` keeps the listener's signature visible to it."""

    @functools.wraps(listener)
    async def run(*args: Any, **kwargs: Any) -> Any:
        acked = asyncio.Event()
        ack = kwargs.get("ack")
        if ack is not None:

            async def ack_and_go(*a: Any, **kw: Any) -> Any:
                try:
                    return await ack(*a, **kw)
                finally:
                    acked.set()

            kwargs["ack"] = ack_and_go
        else:
            acked.set()
        task = asyncio.ensure_future(listener(*args, **kwargs))
        IN_FLIGHT.add(task)
        task.add_done_callback(_log_failure)
        if not acked.is_set():
            waiter = asyncio.ensure_future(acked.wait())
            await asyncio.wait({task, waiter}, timeout=ACK_WAIT, return_when=FIRST_COMPLETED)
            waiter.cancel()
        if task.done() and not task.cancelled() and task.exception() is None:
            return task.result()
        return None

    return cast(F, run)


def _log_failure(task: asyncio.Task[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("a listener failed", exc_info=task.exception())


async def settle(seconds: float) -> int:
    """Wait up to ``seconds`` for the listeners in flight, then write the reads' audit entries
    waiting (``read_audits``); returns how many listeners are still running."""
    pending = [t for t in IN_FLIGHT if not t.done() and t is not asyncio.current_task()]
    still: set[asyncio.Task[Any]] = set()
    if pending:
        _, still = await asyncio.wait(pending, timeout=seconds)
    await read_audits.flush_all()
    return len(still)


async def answer(
    context: dict[str, Any],
    respond: Callable[..., Awaitable[Any]],
    work: Callable[[], Awaitable[Reply]],
) -> None:
    """Run acknowledged work: audit its outcome, then send its reply through ``respond``."""
    reply, outcome, detail = await _outcome(context, work)
    await audit(context, outcome, detail)  # on record before the person sees the outcome
    await _send(context, respond, reply)


async def answer_now(
    context: dict[str, Any],
    ack: Callable[..., Awaitable[Any]],
    respond: Callable[..., Awaitable[Any]],
    work: Callable[[], Awaitable[Reply]],
) -> None:
    """A read: its reply in the acknowledgement itself, which spares the person the round
    trip to the response URL. One not ready within ``ACK_WITHIN`` seconds is acknowledged
    empty and answered through ``respond``, as every other command is. Its audit entry is
    kept after the answer and written with other reads' (``bot.usecases.read_audits``: a
    crash loses at most the last moment of reads' entries)."""
    task = asyncio.ensure_future(_outcome(context, work))
    done, _ = await asyncio.wait({task}, timeout=ACK_WITHIN)
    if not done:
        await ack()
        reply, outcome, detail = await task
        await audit(context, outcome, detail, read=True)
        await _send(context, respond, reply)
        return
    reply, outcome, detail = task.result()
    await (ack(reply) if reply is not None else ack())
    await audit(context, outcome, detail, read=True)


async def _outcome(
    context: dict[str, Any], work: Callable[[], Awaitable[Reply]]
) -> tuple[Reply, AuditOutcome, dict[str, Any]]:
    """The work's reply and how it ended: its result, a refusal (a ``PncError``, rendered in
    one place) or an apology for a fault on our side (logged, never shown)."""
    try:
        return await work(), AuditOutcome.OK, {}
    except PncError as exc:
        return blocks.refusal(exc), AuditOutcome.REFUSED, {"error": exc.code}
    except Exception as exc:
        log.exception("command failed: %s", context.get("pnc_text", "")[:200])
        return blocks.reply("failure"), AuditOutcome.ERROR, {"error": type(exc).__name__}


async def _send(
    context: dict[str, Any], respond: Callable[..., Awaitable[Any]], reply: Reply
) -> None:
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


async def audit(
    context: dict[str, Any],
    outcome: AuditOutcome,
    detail: dict[str, Any],
    *,
    read: bool = False,
) -> None:
    """Record one request in the audit log (a ``read``'s in a batch); a failure to do so is
    logged, not raised."""
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
            read=read,
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
