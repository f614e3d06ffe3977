"""Jinja2 rendering of the words people read: console output, Slack messages, emails.

Slack templates run in an environment whose ``finalize`` escapes ``&``, ``<`` and ``>`` in
every ``{{ … }}`` (Slack's mrkdwn needs no more), so user-supplied text can never become a
mention, a channel ping or a link; markup made by trusted code is wrapped in ``Mrkdwn``.
"""

from __future__ import annotations

import logging
from datetime import date
from functools import cache
from importlib import resources
from typing import Any

from jinja2 import (
    BytecodeCache,
    Environment,
    FileSystemBytecodeCache,
    FileSystemLoader,
    StrictUndefined,
)
from jinja2.bccache import Bucket

log = logging.getLogger(__name__)


def _date(value: date | str | None, empty: str = "—") -> str:
    """A date as YYYY-MM-DD (dates in notice payloads are already ISO strings)."""
    if not value:
        return empty
    return value if isinstance(value, str) else value.isoformat()


def _plural(n: int, one: str, many: str | None = None) -> str:
    return f"{n} {one if n == 1 else (many or one + 's')}"


class Mrkdwn(str):
    """Text that is already Slack mrkdwn (escaped, or markup made by the bot itself)."""


def escape_mrkdwn(value: object) -> Mrkdwn:
    if isinstance(value, Mrkdwn):
        return value
    text = "" if value is None else str(value)
    if "&" in text or "<" in text or ">" in text:
        text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return Mrkdwn(text)


def _finalize(value: object) -> object:
    """Every ``{{ … }}`` of a Slack template: escaped (``escape_mrkdwn``); text with nothing
    to escape and numbers as they are (the usual case, on the status's hot path)."""
    kind = type(value)
    if kind is str:
        text = str(value)
        if "&" not in text and "<" not in text and ">" not in text:
            return text
    elif kind is int:
        return value
    return escape_mrkdwn(value)


def mention(user_id: str) -> Mrkdwn:
    """A mention of a Slack user id (ids are checked before they are stored)."""
    return Mrkdwn(f"<@{escape_mrkdwn(user_id)}>")


class _CompiledTemplates(FileSystemBytecodeCache):
    """Templates compiled once for every process (Jinja's cache in a private folder of the
    temporary directory, keyed by the template's source): a CLI command does not compile its
    templates again at each run (``bench/cli_startup.py``). Each environment has its own
    files (``kind``: its options change the compiled code). A cache that cannot be written is
    only slower."""

    def __init__(self, kind: str) -> None:
        super().__init__(pattern=f"__pnc_bot_{kind}_%s.cache")

    def dump_bytecode(self, bucket: Bucket) -> None:
        try:
            super().dump_bytecode(bucket)
        except OSError as exc:
            log.debug("could not keep a compiled template: %s", exc)

    def load_bytecode(self, bucket: Bucket) -> None:
        try:
            super().load_bytecode(bucket)
        except (OSError, ValueError, EOFError) as exc:
            log.debug("could not read a compiled template: %s", exc)


def _compiled_templates(kind: str) -> BytecodeCache | None:
    try:
        return _CompiledTemplates(kind)
    except (OSError, RuntimeError) as exc:  # no private temporary folder: compile each time
        log.debug("templates are compiled at each start: %s", exc)
        return None


def _environment(kind: str, **options: Any) -> Environment:
    env = Environment(
        bytecode_cache=_compiled_templates(kind),
        loader=FileSystemLoader(str(resources.files("templates"))),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        # templates ship with the package and do not change while it runs: no stat of the
        # file at every render (it was 5 % of the event loop's time under the status load)
        auto_reload=False,
        **options,
    )
    env.filters["date"] = _date
    env.filters["plural"] = _plural
    return env


@cache
def slack_environment() -> Environment:
    env = _environment("slack", autoescape=False, finalize=_finalize)
    env.filters["mention"] = mention
    return env


def render_slack(name: str, **context: Any) -> str:
    return slack_environment().get_template(name).render(**context).strip()


@cache
def text_environment() -> Environment:
    """Plain-text templates (no escaping): console output and the text part of emails."""
    return _environment("text", autoescape=False)


def render_text(name: str, **context: Any) -> str:
    return text_environment().get_template(name).render(**context)


# --- Slack messages ---------------------------------------------------------------------------

SECTION_LIMIT = 3000  # characters of text in one section block
BLOCK_LIMIT = 50  # blocks in one message


def sections(text: str) -> list[dict[str, Any]]:
    """mrkdwn text as section blocks, one per paragraph, within Slack's limits."""
    blocks: list[dict[str, Any]] = []
    for paragraph in (p.strip() for p in text.split("\n\n")):
        while paragraph:
            part, paragraph = _cut(paragraph)
            blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": part}})
    if len(blocks) > BLOCK_LIMIT:
        blocks = [*blocks[: BLOCK_LIMIT - 1], _context("… (shortened: too long for Slack)")]
    return blocks


def message(text: str, *, in_channel: bool = False) -> dict[str, Any]:
    """A reply: blocks plus the same mrkdwn as the fallback text."""
    return {
        "response_type": "in_channel" if in_channel else "ephemeral",
        "text": text[:3900],
        "blocks": sections(text),
    }


def _context(text: str) -> dict[str, Any]:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": text}]}


def _cut(text: str) -> tuple[str, str]:
    if len(text) <= SECTION_LIMIT:
        return text, ""
    at = text.rfind("\n", 0, SECTION_LIMIT)
    at = at if at > 0 else SECTION_LIMIT
    return text[:at], text[at:].lstrip("\n")
