"""Running the command line's work: a coroutine in ``asyncio.run``, with refusals and an
unreachable database turned into one line on stderr (secrets masked), and the bot built and
released around it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

import typer
from sqlalchemy.exc import DBAPIError, OperationalError

from bot import logs, redaction
from bot.bootstrap import Bot, bootstrap
from bot.errors import ConfigError, PncError
from bot.settings import load_settings

T = TypeVar("T")


def known_secrets() -> tuple[str, ...]:
    """The settings' secret values, masked in logs and errors; none if the settings are
    invalid (the command then stops with a message that shows none)."""
    try:
        return load_settings().secrets
    except ConfigError:
        return ()


def fail(message: str, code: int = 1) -> typer.Exit:
    """One line on stderr — a log record when the log is JSON, so every line stays one."""
    if logs.in_use() == logs.LogFormat.json:
        logging.getLogger("pnc-bot").error(message)
    else:
        typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def run(work: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine; refusals and unreachable databases become one line on stderr."""
    try:
        return asyncio.run(work())
    except PncError as exc:
        raise fail(exc.render()) from None
    except (OperationalError, DBAPIError, OSError) as exc:
        try:
            where = load_settings().database_url_redacted
        except ConfigError:
            where = "PNC_DATABASE_URL"
        detail = getattr(exc, "orig", None) or exc
        # the driver's text may echo the URL or the password
        shown = redaction.text(f"{type(detail).__name__}: {detail}", known_secrets())
        raise fail(f"cannot use the database {where}: {shown}") from None


async def with_bot(use: Callable[[Bot], Awaitable[T]]) -> T:
    bot = await bootstrap()
    try:
        return await use(bot)
    finally:
        await bot.aclose()
