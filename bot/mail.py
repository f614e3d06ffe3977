"""Emails from outbox rows: Jinja2 templates (text and HTML, English and Vietnamese) and the
headers of SPEC §3.

Templates live in ``templates/email/<language>/``: ``<kind>.subject.txt`` (one line),
``<kind>.txt`` and ``<kind>.html`` (autoescaped). A factory or an Inspectorate whose language is
Vietnamese gets the Vietnamese text first and the English below; everyone else gets English.
``layout.txt`` and ``layout.html`` put the parts together.
"""

from __future__ import annotations

import re
from base64 import b64encode
from collections.abc import Iterable, Sequence
from email.header import Header
from email.message import Message
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.policy import Policy
from email.utils import format_datetime
from functools import cache
from importlib import resources
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from bot import chart
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
        # templates ship with the package and do not change while it runs: no stat of the
        # file at every render (it was 5 % of the event loop's time under the status load)
        auto_reload=False,
    )
    env.filters["plural"] = lambda n, one, many=None: (
        f"{n} {one if n == 1 else (many or one + 's')}"
    )
    # the chart whose data a notice's payload keeps (bot/chart.py; templates/*/chart.*)
    env.globals["chart_of"] = chart.thawed
    return env


#: recipients who read their notice in their own language first, with English below
OWN_LANGUAGE = frozenset({Recipient.FACTORY, Recipient.INSPECTORATE, Recipient.AUTHORITY})


def languages_for(row: Claimed) -> list[str]:
    """Vietnamese first with English below for a Vietnamese-speaking factory, Inspectorate or
    authority (a zero-tolerance case); else English."""
    if row.recipient_type in OWN_LANGUAGE and row.language == "vi":
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
    when it was stored (no line breaks); ``_header`` refuses one anyway. The subject and the
    addresses are folded here (``_Folded``), so that mail programs read back exactly the names
    written, however long or punctuated (``PNC_MAIL_FROM`` and ``PNC_REPLY_TO`` were parsed
    when the settings were read).
    """
    subject, text, html = render(row.kind, languages_for(row), dict(row.payload))
    message = MIMEMultipart("alternative")
    message["Subject"] = _unstructured("Subject", _one_line(subject))
    message["From"] = _addresses("From", settings.sender[0], [settings.sender[1]])
    message["To"] = _addresses("To", row.recipient_name, row.addresses)
    if settings.reply_to_mailbox:
        name, address = settings.reply_to_mailbox
        message["Reply-To"] = _addresses("Reply-To", name, [address])
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
    """A one-line header value; non-ASCII text encoded (RFC 2047)."""
    value = _one_line(value)
    return value if value.isascii() else Header(value, "utf-8").encode()


def _one_line(value: str) -> str:
    """``value`` as a plain string, refused if it would break the header onto a new line."""
    value = str(value)  # a plain string: a ``StrEnum`` (a notice kind) would not fold
    if "\r" in value or "\n" in value:
        raise ValueError("a header value contains a line break")
    return value


# --- folding ----------------------------------------------------------------------------------
#
# ``email.policy.SMTP`` (the ``.eml`` files) refolds any plain header string with a line over 78
# characters through the modern header parser, which writes a display name with a comma without
# its quotes (CPython 3.11): mail programs then read phantom recipients. So the subject and the
# addresses are folded here, into lines of at most 78 characters where the words allow it (never
# over 998), and handed over as ``_Folded`` values, which that policy writes as they are. The
# ``compat32`` policy (aiosmtplib) folds a long line again, but only at its spaces.

_LINE = 78
#: the characters of an RFC 5322 atom: a word of a display name written as it is
_ATOM = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+")
#: a subject's words fit on its first line: ASCII words of up to 68 characters as they are,
#: encoded words of 42 bytes of UTF-8 (56 characters of base64, 68 in all)
_WORD = 68
_CHUNK = 42
#: a display name is cut to this many characters
MAX_NAME = 100


class _Folded(str):
    """A header value folded by this module (its lines joined by ``\\n``): to
    ``email.policy.SMTP`` a value with a ``name`` is a header object, written by its ``fold``."""

    name: str

    def __new__(cls, name: str, lines: Sequence[str]) -> _Folded:
        folded = super().__new__(cls, "\n".join(lines))
        folded.name = name
        return folded

    def fold(self, *, policy: Policy) -> str:
        """The header as ``policy`` writes it: these lines, with its line separator."""
        lines = self.replace("\n", policy.linesep)
        return f"{self.name}: {lines}{policy.linesep}"

    def __reduce__(self) -> tuple[type[_Folded], tuple[str, list[str]]]:
        """Copied and pickled as what it was made of (a message may be)."""
        return _Folded, (self.name, self.split("\n"))


def _fold(name: str, pieces: Iterable[str]) -> _Folded:
    """``pieces`` joined by spaces into lines of at most 78 characters (``name: `` counted
    in the first); a piece longer than a line has a line to itself."""
    lines = [""]
    room = _LINE - len(name) - 2
    for piece in pieces:
        if not lines[-1]:
            lines[-1] = piece
        elif len(lines[-1]) + 1 + len(piece) <= room:
            lines[-1] += " " + piece
        else:
            lines.append(" " + piece)
            room = _LINE
    return _Folded(name, lines)


def _encoded(text: str) -> str:
    """``text`` as one RFC 2047 encoded word (UTF-8, base64)."""
    return f"=?utf-8?b?{b64encode(text.encode()).decode('ascii')}?="


def _plain(word: str) -> bool:
    """Whether a word can be written as it is: ASCII, and not mistaken for an encoded word."""
    return word.isascii() and "=?" not in word


def _unstructured(name: str, value: str) -> _Folded:
    """A subject: ASCII words as they are; runs of other words as encoded words of at most 68
    characters (readers ignore the spaces between two encoded words: a run's own spaces are
    inside them)."""
    pieces: list[str] = []
    run: list[str] = []
    for word in [*value.split(), ""]:
        if word and not (_plain(word) and len(word) <= _WORD):
            run.append(word)
            continue
        if run:
            pieces += _chunks(" ".join(run))
            run = []
        if word:
            pieces.append(word)
    return _fold(name, pieces)


def _chunks(text: str) -> list[str]:
    """``text`` as encoded words of at most 42 bytes of UTF-8 each, split between characters."""
    words, start, size = [], 0, 0
    for i, char in enumerate(text):
        width = len(char.encode())
        if size + width > _CHUNK:
            words.append(_encoded(text[start:i]))
            start, size = i, 0
        size += width
    words.append(_encoded(text[start:]))
    return words


def _addresses(name: str, display: str, addresses: Sequence[str]) -> _Folded:
    """An address header: each address with the display name, cut to 100 characters."""
    phrase = _phrase(" ".join(" ".join(display.split())[:MAX_NAME].split()))
    pieces: list[str] = []
    for i, address in enumerate(addresses):
        comma = "," if i < len(addresses) - 1 else ""
        address = _one_line(address)
        pieces += [*phrase, f"<{address}>{comma}"] if phrase else [f"{address}{comma}"]
    return _fold(name, pieces)


def _phrase(display: str) -> list[str]:
    """A display name as the pieces of an RFC 5322 phrase that every reader decodes to it.

    ASCII words are atoms, or one quoted string for a run with punctuation (it may fold at its
    spaces). A run of other words is ONE encoded word, even over RFC 2047's 75 characters:
    readers disagree on the space between two encoded words of a display name (Python 3.11
    keeps it, RFC 2047 drops it), so two are never written side by side.
    """
    pieces: list[str] = []
    words = display.split()
    i = 0
    while i < len(words):
        plain = _plain(words[i])
        j = i
        while j < len(words) and _plain(words[j]) == plain:
            j += 1
        run = words[i:j]
        if not plain:
            pieces.append(_encoded(" ".join(run)))
        elif all(_ATOM.fullmatch(w) for w in run):
            pieces += run
        else:
            quoted = [w.replace("\\", "\\\\").replace('"', '\\"') for w in run]
            quoted[0] = f'"{quoted[0]}'
            quoted[-1] = f'{quoted[-1]}"'
            pieces += quoted
        i = j
    return pieces
