"""Emails from outbox rows: Jinja2 templates (text and HTML, English and Vietnamese) and the
headers of SPEC §3.

Templates live in ``templates/email/<language>/``: ``<kind>.subject.txt`` (one line),
``<kind>.txt`` and ``<kind>.html`` (autoescaped). A factory whose language is Vietnamese gets the
Vietnamese text first and the English below; everyone else gets English. ``layout.txt`` and
``layout.html`` put the parts together.
"""

from __future__ import annotations

from collections.abc import Sequence
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime
from functools import cache
from importlib import resources
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from bot.settings import Settings
from store.models import OutboxMessage

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


def languages_for(row: OutboxMessage) -> list[str]:
    """Vietnamese first with English below for a Vietnamese-speaking factory; else English."""
    if row.recipient_type == "factory" and row.language == "vi":
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


def build(row: OutboxMessage, settings: Settings) -> EmailMessage:
    """The message for one outbox row, to the addresses still to deliver to."""
    subject, text, html = render(row.kind, languages_for(row), dict(row.payload))
    message = EmailMessage()
    message["Subject"] = subject
    message["From"] = settings.mail_from
    message["To"] = [_address(a, row.recipient_name) for a in row.addresses]
    if settings.reply_to:
        message["Reply-To"] = settings.reply_to
    message["Date"] = format_datetime(row.created_at)
    message["Message-ID"] = row.message_id
    message["Auto-Submitted"] = "auto-generated"
    message["PNC-Notice"] = row.kind
    if row.factory_id:
        message["PNC-Factory"] = row.factory_id
    message.set_content(text)
    message.add_alternative(html, subtype="html")
    return message


def _address(email: str, name: str) -> Address:
    local, _, domain = email.rpartition("@")
    return Address(display_name=" ".join(name.split())[:100], username=local, domain=domain)
