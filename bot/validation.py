"""Parsing and checking what people type or import. Each function returns a clean value or
raises a ``PncError`` saying what was wrong and what would be right."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from datetime import date
from typing import Protocol

from bot.errors import (
    InvalidDate,
    InvalidInput,
    InvalidReportDate,
    InvisibleCharacter,
    UnknownIssueCodes,
)
from bot.policy import AssessmentKind


class Catalogue(Protocol):
    """What checking issue codes needs of a country's catalogue (``bot.countries.Catalogue``)."""

    @property
    def codes(self) -> frozenset[str]: ...

    def suggest(self, code: str, n: int = 3) -> list[str]: ...


EARLIEST_ASSESSMENT = date(2000, 1, 1)
IDENTIFIER = re.compile(r"^[A-Z0-9][A-Z0-9._-]{0,63}$")
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_EMAIL = re.compile(
    r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@"
    r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$"
)
#: characters that must never be quoted back or stored: C0 and C1 controls, DEL, line and
#: paragraph separators, and lone surrogates (what undecodable bytes become)
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")
#: letters that show as nothing (Hangul fillers) and the combining grapheme joiner; with every
#: format character (``_hidden``) they can hide or reorder what people read
_BLANK = frozenset("\u034f\u115f\u1160\u3164\uffa0")
_LIST_SEPARATORS = re.compile(r"[;,\s]+")
NO_ISSUES = frozenset({"none", "-", ""})
_OTHER_SEPARATORS = (",", " ", "\t", "\r", "\n", "\xa0")
LANGUAGES = ("vi", "en")
#: what an assessment may be; which kinds count is the country's (``Rules.counted_kinds``)
ASSESSMENT_KINDS = tuple(k.value for k in AssessmentKind)


def identifier(value: str, what: str = "id") -> str:
    """A factory or buyer id: letters, digits, ``.``, ``_``, ``-``; compared upper-case."""
    cleaned = value.strip()
    cleaned = cleaned.upper() if cleaned.isascii() else cleaned
    if not IDENTIFIER.fullmatch(cleaned):
        hidden = _invisible(cleaned)
        raise (InvisibleCharacter if hidden else InvalidInput)(
            f"`{shown(value)}` is not a valid {what}"
            + (f": it contains an invisible character, {hidden}." if hidden else "."),
            "Use letters, digits, `.`, `_` or `-` (up to 64), e.g. `VN-1234`.",
        )
    return cleaned


def text(value: str, what: str, max_length: int = 200) -> str:
    """A single line of free text (a name, a reason): no control characters, no invisible or
    direction-changing ones, not empty."""
    cleaned = " ".join(value.split())
    if not cleaned:
        raise InvalidInput(f"The {what} is empty.", f"Give a {what}.")
    if _CONTROL.search(value.replace("\t", " ")):
        raise InvalidInput(f"The {what} contains control characters.", "Use one line of text.")
    visible(value, what)
    if len(cleaned) > max_length:
        raise InvalidInput(
            f"The {what} is {len(cleaned)} characters long.", f"Use at most {max_length}."
        )
    return cleaned


def emails(value: str | Iterable[str], what: str = "email addresses") -> tuple[str, ...]:
    """One or more addresses, separated by `;` or `,` in a string. At least one is required."""
    parts = _LIST_SEPARATORS.split(value) if isinstance(value, str) else list(value)
    result: list[str] = []
    for part in parts:
        address = part.strip().strip("<>")
        if not address:
            continue
        if len(address) > 254 or not _EMAIL.fullmatch(address):
            hidden = _invisible(address)
            raise (InvisibleCharacter if hidden else InvalidInput)(
                f"`{shown(address)}` is not a valid email address"
                + (f": it contains an invisible character, {hidden}." if hidden else "."),
                "Write addresses like `name@example.com`, separated by `;`.",
            )
        local, _, domain = address.rpartition("@")
        normalised = f"{local}@{domain.lower()}"
        if normalised not in result:
            result.append(normalised)
    if not result:
        raise InvalidInput(f"No {what} given.", "Give at least one, e.g. `hr@factory.example`.")
    return tuple(result)


def iso_date(value: str, what: str = "date") -> date:
    cleaned = value.strip()
    try:
        if not _ISO_DATE.fullmatch(cleaned):
            raise ValueError
        return date.fromisoformat(cleaned)
    except ValueError:
        raise InvalidDate(
            f"`{shown(value)}` is not a valid {what}.",
            "Write dates as YYYY-MM-DD, e.g. 2026-03-31.",
        ) from None


def optional_date(value: str | date | None, what: str = "date") -> date | None:
    if value is None or isinstance(value, date):
        return value
    return iso_date(value, what) if value.strip() else None


def past_date(value: str | date, today: date, what: str = "date") -> date:
    """The day something took place (``what``: "meeting date"): ISO, not in the future, not
    before 2000."""
    day = iso_date(value, what) if isinstance(value, str) else value
    thing = what.removesuffix(" date")
    if day > today:
        raise InvalidDate(
            f"The {what} {day.isoformat()} is in the future.",
            f"Give the day the {thing} took place (today is {today.isoformat()}).",
        )
    if day < EARLIEST_ASSESSMENT:
        raise InvalidDate(
            f"The {what} {day.isoformat()} is before 2000.",
            f"Check the year; {thing}s before 2000 are not accepted.",
        )
    return day


def assessment_date(value: str | date, today: date) -> date:
    """An assessment date: ISO, not in the future, not before 2000."""
    return past_date(value, today, "assessment date")


def issue_codes(value: str | Iterable[str], catalogue: Catalogue, country: str) -> frozenset[str]:
    """Codes separated by `,`, `;` or spaces (or `none`), each in the country's catalogue."""
    if isinstance(value, str):
        text = value.upper()
        for separator in _OTHER_SEPARATORS:
            if separator in text:
                text = text.replace(separator, ";")
        codes = frozenset(text.split(";"))
    else:
        codes = frozenset(c.strip().upper() for c in value)
    if codes <= catalogue.codes:
        return codes
    codes = frozenset(c for c in codes if c.lower() not in NO_ISSUES)
    unknown = {shown(c, 20): catalogue.suggest(c) for c in sorted(codes - catalogue.codes)}
    if unknown:
        raise UnknownIssueCodes(country, unknown)
    return codes


def language(value: str | None) -> str | None:
    """``vi`` or ``en``; None (empty) means the country's default language."""
    if value is None or not value.strip():
        return None
    cleaned = value.strip().lower()
    if cleaned not in LANGUAGES:
        raise InvalidInput(f"`{shown(value)}` is not a supported language.", "Use `vi` or `en`.")
    return cleaned


def assessment_kind(value: str | None) -> str:
    """One of ``ASSESSMENT_KINDS``; nothing means ``regular``."""
    if value is None or not value.strip():
        return AssessmentKind.REGULAR.value
    cleaned = value.strip().lower()
    if cleaned not in ASSESSMENT_KINDS:
        kinds = ", ".join(f"`{k}`" for k in ASSESSMENT_KINDS[:-1])
        raise InvalidInput(
            f"`{shown(value)}` is not an assessment kind.",
            f"Use {kinds} or `{ASSESSMENT_KINDS[-1]}`.",
        )
    return cleaned


_SLACK_USER = re.compile(r"^<@([UW][A-Z0-9]{2,20})(?:\|[^>]*)?>$|^([UW][A-Z0-9]{2,20})$")


def slack_user(value: str) -> str:
    """A Slack user id from a mention (`<@U123|name>`) or a bare id (`U123`)."""
    match = _SLACK_USER.fullmatch(value.strip())
    if not match:
        raise InvalidInput(
            f"`{shown(value)}` is not a Slack user.",
            "Mention the person (type @ and pick their name) so Slack sends their user id.",
        )
    return match.group(1) or match.group(2)


def visible(value: str, what: str) -> str:
    """``value``, unless it holds a character that hides or reorders text where people read it
    (bidi overrides, isolates and marks, zero-width characters, the soft hyphen, every other
    Unicode format character): refused, naming the first by its code and name and saying where.
    Letters with combining marks, composed or not (Vietnamese), are visible."""
    hidden = _invisible(value)
    if hidden:
        raise InvisibleCharacter(
            f"The {what} contains an invisible character: {hidden}.",
            f"Such characters hide or reorder text in emails and Slack. Retype the {what} "
            "without them (text copied from elsewhere may carry them).",
        )
    return value


def _invisible(value: str) -> str | None:
    """The first hidden character of ``value``, named, and where it is; None if there is none."""
    if value.isascii():
        return None
    found = [i for i, char in enumerate(value) if _hidden(char)]
    if not found:
        return None
    char = value[found[0]]
    named = f"U+{ord(char):04X} ({unicodedata.name(char, 'unnamed')})"
    before = value[: found[0]].strip()
    where = f"after `{shown(before if len(before) <= 30 else '…' + before[-29:])}`"
    more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
    return f"{named} {where if before else 'at the start'}{more}"


def _hidden(char: str) -> bool:
    return char in _BLANK or unicodedata.category(char) == "Cf"


def storable(value: str) -> str:
    """Text kept as typed for the record (the audit log), except what no database can store:
    NUL and lone surrogates are written as escapes."""
    return _UNSTORABLE.sub(lambda m: f"\\x{ord(m.group()):02x}", value)


_UNSTORABLE = re.compile(r"[\x00\ud800-\udfff]")


def shown(value: str, limit: int = 60) -> str:
    """User input made safe to quote back in one line: control characters dropped, invisible
    ones written as their code (``<U+202E>``), truncated."""
    flat = _CONTROL.sub("", value).replace("`", "'")
    if not flat.isascii():
        flat = "".join(f"<U+{ord(c):04X}>" if _hidden(c) else c for c in flat)
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def report_date(value: str | date | None, assessed_on: date, today: date) -> date | None:
    """The date of an assessment's report (Progress Report One is due 30 days after it): not
    before the assessment, not in the future; nothing (None or empty) means the assessment's
    own date."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        day = past_date(value.strip() if isinstance(value, str) else value, today, "report date")
    except InvalidDate as exc:
        raise InvalidReportDate(exc.message, exc.hint) from None
    if day < assessed_on:
        raise InvalidReportDate(
            f"The report date {day.isoformat()} is before the assessment ({assessed_on}).",
            "Give the day the assessment report was issued: on or after the assessment date.",
        )
    return day
