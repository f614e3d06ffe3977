"""Emails from outbox rows: Jinja2 templates (text and HTML, English and Vietnamese) and the
headers of SPEC §3.

Templates live in ``templates/email/<language>/``: ``<kind>.subject.txt`` (one line),
``<kind>.txt`` and ``<kind>.html`` (autoescaped). A factory whose language is Vietnamese gets the
Vietnamese text first and the English below; everyone else gets English. ``layout.txt`` and
``layout.html`` put the parts together.
"""

from __future__ import annotations

from collections.abc import Sequence
from email.header import Header
from email.message import Message
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import format_datetime, formataddr
from functools import cache
from importlib import resources
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from bot.settings import Settings
from bot.vocabulary import Recipient
from store.outbox import Claimed

#: languages each notice is written in; a factory in another language gets English
LANGUAGES = ("vi", "en")


@cache
def environment() -> Environment:
    """One environment for emails: ``*.html`` autoescaped, ``*.txt`` not."""
    env = Environment(
        loader=FileSystemLoader(str(resources.files("templates"))),
        autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["plural"] = lambda n, one, many=None: (
        f"{n} {one if n == 1 else (many or one + 's')}"
    )
    return env


def languages_for(row: Claimed) -> list[str]:
    """Vietnamese first with English below for a Vietnamese-speaking factory; else English."""
    if row.recipient_type == Recipient.FACTORY and row.language == "vi":
        return ["vi", "en"]
    return ["en"]


def render(kind: str, languages: Sequence[str], context: dict[str, Any]) -> tuple[str, str, str]:
    """Subject (in the first language), text and HTML of one notice in the given languages
    (first one first)."""
    env = environment()
    subjects, texts, htmls = [], [], []
    for language in languages:
        base = f"email/{language}/{kind}"
        ctx = {**context, "language": language}
        subjects.append(" ".join(env.get_template(f"{base}.subject.txt").render(ctx).split()))
        texts.append(env.get_template(f"{base}.txt").render(ctx).strip())
        htmls.append(env.get_template(f"{base}.html").render(ctx))
    layout = {**context, "languages": list(languages)}
    text = env.get_template("email/layout.txt").render(parts=texts, **layout)
    html = env.get_template("email/layout.html").render(parts=htmls, **layout)
    return subjects[0], text, html


def build(row: Claimed, settings: Settings) -> Message:
    """The message for one outbox row, to the addresses still to deliver to.

    Assembled with the classic MIME classes: the modern ``EmailMessage`` re-parses every header
    it is given, which cost more than rendering the templates. Every value here was validated
    when it was stored (no line breaks); ``_header`` refuses one anyway, and encodes non-ASCII
    text (RFC 2047). Addresses are written with ``formataddr``, which encodes only the display
    name (``PNC_MAIL_FROM`` and ``PNC_REPLY_TO`` were parsed when the settings were read).
    """
    subject, text, html = render(row.kind, languages_for(row), dict(row.payload))
    message = MIMEMultipart("alternative")
    message["Subject"] = _header(subject)
    message["From"] = formataddr(settings.sender, charset="utf-8")
    name = " ".join(row.recipient_name.split())[:100]
    message["To"] = ", ".join(formataddr((name, a), charset="utf-8") for a in row.addresses)
    if settings.reply_to_mailbox:
        message["Reply-To"] = formataddr(settings.reply_to_mailbox, charset="utf-8")
    # when the notice was written, not when this attempt is made: every retry is the same message
    message["Date"] = format_datetime(row.created_at)
    message["Message-ID"] = _header(row.message_id)
    message["Auto-Submitted"] = "auto-generated"
    message["PNC-Notice"] = _header(row.kind)
    if row.factory_id:
        message["PNC-Factory"] = _header(row.factory_id)
    message.attach(MIMEText(text, "plain", "utf-8"))
    message.attach(MIMEText(html, "html", "utf-8"))
    return message


def _header(value: str) -> str:
    value = str(value)  # a plain string: a ``StrEnum`` (a notice kind) would not fold
    if "\r" in value or "\n" in value:
        raise ValueError("a header value contains a line break")
    return value if value.isascii() else Header(value, "utf-8").encode()
