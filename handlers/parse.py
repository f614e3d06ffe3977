"""The ``/pnc`` grammar (SPEC §4): text in, a ``Command`` out, or a ``MalformedCommand`` saying
what was wrong and showing the usage. Pure: no I/O, no Slack objects, so the console shell and
the fuzz tests use it as Slack does.

Slack sends the command text with ``&``, ``<`` and ``>`` typed by the user escaped as entities,
and its own markup (mentions, channels, links, email addresses) in angle brackets; tokens are
unescaped here. An email address (``<mailto:a@b.example|a@b.example>``) becomes the address;
other markup is kept as the text it is, with its entities read, and a link is taken from it
where a link is asked for.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from bot.errors import MalformedCommand
from bot.roles import Permission
from bot.suggest import close_matches
from bot.validation import _ISO_DATE, ASSESSMENT_KINDS, LANGUAGES, shown
from bot.vocabulary import NoticeKind

#: the typographic double quotes Slack clients substitute for ``"``; apostrophes are text
_DOUBLE_QUOTES = str.maketrans({"“": '"', "”": '"', "„": '"'})
#: the pieces of a command's words: white space between them (space, tab, CR, LF — not other
#: Unicode spaces), a quoted part, a quotation mark never closed, Slack's markup, other text
_PIECES = re.compile(
    r'(?P<space>[ \t\r\n]+)|"(?P<quoted>[^"]*)"|(?P<unclosed>")|(?P<text><[^<>]*>|[^ \t\r\n"<]+|<)'
)
MAX_LENGTH = 4000
#: Slack's markup (``<@U…>``, ``<#C…|name>``, ``<https://…|label>``, ``<mailto:…|…>``) and the
#: entities it sends for ``&``, ``<`` and ``>`` that a person typed
_SLACK_TEXT = re.compile(r"<([^<>]*)>|&(amp|lt|gt);")
_ENTITIES = {"amp": "&", "lt": "<", "gt": ">"}


#: a subcommand's grammar: the words after its name, and its usage line (for refusals), in; its
#: arguments out (or a ``MalformedCommand``)
Grammar = Callable[[list[str], str], dict[str, Any]]


@dataclass(frozen=True)
class Subcommand:
    """One ``/pnc`` subcommand, declared once (``handlers.commands``): what is typed, its usage
    line, who may run it, how its words are read and what it does."""

    #: what is typed: one word (``status``) or two (``readmission apply``)
    words: str
    usage: str
    permission: Permission
    grammar: Grammar
    #: the listener's work: ``(core, actor, args) → reply``; never called here
    run: Callable[..., Awaitable[Any]]
    #: what its first word alone means (``calls`` → ``calls list``)
    default: bool = False
    #: it only reads: its answer goes in the acknowledgement (``handlers.runner.answer_now``)
    reads: bool = False

    @property
    def action(self) -> str:
        return self.permission.action


@dataclass(frozen=True)
class Command:
    action: str
    args: dict[str, Any] = field(default_factory=dict)
    subcommand: Subcommand | None = field(default=None, compare=False, repr=False)


def parse(text: str, subcommands: Sequence[Subcommand]) -> Command:
    """The command ``text`` (what follows ``/pnc``) means, among ``subcommands``."""
    if len(text) > MAX_LENGTH:
        raise MalformedCommand(
            f"The command is {len(text)} characters long.", hint=f"Use at most {MAX_LENGTH}."
        )
    tokens = [_unescape(t) for t in _split(text)]
    if not tokens:
        tokens = ["help"]
    verb, rest = tokens[0].lower(), tokens[1:]
    group = [c for c in subcommands if c.words.split()[0] == verb]
    if not group:
        verbs = list(dict.fromkeys(c.words.split()[0] for c in subcommands))
        close = close_matches(verb, verbs, n=1)
        hint = f"Did you mean `{close[0]}`? " if close else ""
        raise MalformedCommand(
            f"`{_short(verb)}` is not a pnc-bot command.", hint=f"{hint}`/pnc help` lists them."
        )
    chosen, words = _choose(verb, group, rest)
    return Command(chosen.action, chosen.grammar(words, chosen.usage), chosen)


def _choose(verb: str, group: list[Subcommand], rest: list[str]) -> tuple[Subcommand, list[str]]:
    """Which of the subcommands starting with ``verb`` is meant, and the words left for it."""
    alone = next((c for c in group if c.words == verb), None)
    pairs = {c.words.split()[1]: c for c in group if c.words != verb}
    second = rest[0].lower() if rest else ""
    if second in pairs:
        return pairs[second], rest[1:]
    if alone is not None:
        return alone, rest
    default = next((c for c in group if c.default), None)
    if default is not None and not rest:
        return default, []
    names = [f"`{name}`" for name in pairs]
    needs = names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"
    problem = f"`{verb}` needs {needs}."
    if len(group) == 1:
        raise MalformedCommand(problem, group[0].usage)
    raise MalformedCommand(problem, hint="Usage: " + ", ".join(f"`{c.usage}`" for c in group))


def _split(text: str) -> list[str]:
    """Words separated by white space; ``"…"`` groups words, and so does Slack's markup
    (``<https://…|a label>``). Nothing else is special: an apostrophe (``didn't``,
    ``O'Brien``) and a backslash (``C:\\temp``) are kept as typed, ``#`` starts no comment."""
    words: list[str] = []
    word: str | None = None
    for piece in _PIECES.finditer(text.translate(_DOUBLE_QUOTES)):
        kind = piece.lastgroup
        if kind == "space":
            if word is not None:
                words.append(word)
            word = None
        elif kind == "unclosed":
            raise MalformedCommand(
                "A quotation mark is not closed.", hint='Put names in quotes: "Saigon Stitch".'
            )
        else:
            word = (word or "") + piece.group(str(kind))
    if word is not None:
        words.append(word)
    return words


# --- each subcommand's grammar: its words and usage line in, its arguments out ----------------


def nothing(args: list[str], usage: str) -> dict[str, Any]:
    """Whatever follows is ignored (``help``)."""
    return {}


def no_more(args: list[str], usage: str) -> dict[str, Any]:
    _count(args, 0, 0, usage)
    return {}


def one_factory(args: list[str], usage: str) -> dict[str, Any]:
    _count(args, 1, 1, usage)
    return {"factory": args[0]}


def optional_country(args: list[str], usage: str) -> dict[str, Any]:
    _count(args, 0, 1, usage)
    return {"country": args[0] if args else None}


def buyer_and_factory(args: list[str], usage: str) -> dict[str, Any]:
    _count(args, 2, 2, usage)
    return {"buyer": args[0], "factory": args[1]}


def assess(args: list[str], usage: str) -> dict[str, Any]:
    if len(args) <= 1:
        return {"factory": args[0]} if args else {}  # the form
    if len(args) < 3:
        raise MalformedCommand(
            "An assessment needs the factory, the date and the issue codes (or `none`).", usage
        )
    factory, day, *codes = args
    _date(day, usage)
    kind = report = None
    if len(codes) > 2 and codes[-2].lower() == "report":  # the assessment report's date
        report, _ = codes.pop(), codes.pop()
        _date(report, usage)
    if codes and codes[-1].lower() in ASSESSMENT_KINDS and len(codes) > 1:
        kind = codes.pop().lower()
    facts = {"factory": factory, "date": day, "codes": " ".join(codes), "kind": kind}
    return facts | ({"report_on": report} if report else {})


def factory_add(args: list[str], usage: str) -> dict[str, Any]:
    # read from the right, so a name may be several words even without quotes
    if len(args) < 4:
        raise MalformedCommand("A factory needs an id, a name, a country and emails.", usage)
    factory_id, *rest = args
    cycle_end = rest.pop() if rest and _ISO_DATE.match(rest[-1]) else None
    language = rest.pop().lower() if rest and rest[-1].lower() in LANGUAGES else None
    if len(rest) < 3 or "@" not in rest[-1]:
        raise MalformedCommand(
            "A factory needs a name, a country and emails, in that order.", usage
        )
    emails = rest.pop()
    country = rest.pop()
    return {
        "factory": factory_id,
        "name": " ".join(rest),
        "country": country,
        "emails": emails,
        "language": language,
        "cycle_end": cycle_end,
    }


def buyer_add(args: list[str], usage: str) -> dict[str, Any]:
    if len(args) < 3 or "@" not in args[-1]:
        raise MalformedCommand("A buyer needs an id, a name and emails.", usage)
    return {"buyer": args[0], "name": " ".join(args[1:-1]), "emails": args[-1]}


def amend(args: list[str], usage: str) -> dict[str, Any]:
    if len(args) < 4:
        raise MalformedCommand(
            "An amendment needs the factory, the date, the new codes (or kind) and a reason.",
            usage,
        )
    _date(args[1], usage)
    # the third word is the new codes, or the assessment's right kind (``advisory``, …)
    kind = args[2].lower() if args[2].lower() in ASSESSMENT_KINDS else None
    return {
        "factory": args[0],
        "date": args[1],
        "codes": None if kind else args[2],
        "kind": kind,
        "reason": " ".join(args[3:]),
    }


def withdraw(args: list[str], usage: str) -> dict[str, Any]:
    if len(args) < 3:
        raise MalformedCommand("A withdrawal needs the factory, the date and a reason.", usage)
    _date(args[1], usage)
    return {"factory": args[0], "date": args[1], "reason": " ".join(args[2:])}


def role_grant(args: list[str], usage: str) -> dict[str, Any]:
    _count(args, 2, 2, usage)
    return {"user": args[0], "role": args[1].lower()}


def role_revoke(args: list[str], usage: str) -> dict[str, Any]:
    _count(args, 1, 1, usage)
    return {"user": args[0]}


def readmission_apply(args: list[str], usage: str) -> dict[str, Any]:
    if len(args) < 2:
        raise MalformedCommand("An application needs the factory and the evidence links.", usage)
    factory, *links = (args[0], *(_link(t) for t in args[1:]))
    lowered = [link.lower() for link in links]
    at = lowered.index("reports") if "reports" in lowered else len(links)
    return {"factory": factory, "evidence": links[:at], "reports": links[at + 1 :]}


def factory_and_date(args: list[str], usage: str) -> dict[str, Any]:
    _count(args, 2, 2, usage)
    _date(args[1], usage)
    return {"factory": args[0], "date": args[1]}


def factory_and_link(args: list[str], usage: str) -> dict[str, Any]:
    """A factory and one link (Slack's ``<https://…|label>`` read as its address)."""
    _count(args, 2, 2, usage)
    return {"factory": args[0], "link": _link(args[1])}


def factory_and_note(args: list[str], usage: str) -> dict[str, Any]:
    if not args:
        raise MalformedCommand("Which factory?", usage)
    return {"factory": args[0], "note": " ".join(args[1:]) or None}


def factory_and_reason(args: list[str], usage: str) -> dict[str, Any]:
    if len(args) < 2:
        raise MalformedCommand("A rejection needs the factory and a reason.", usage)
    return {"factory": args[0], "note": " ".join(args[1:])}


def calls_add(args: list[str], usage: str) -> dict[str, Any]:
    """A day, a time of day (optional) and ``quarterly`` (optional, last) for a series."""
    words = list(args)
    quarterly = len(words) > 1 and words[-1].lower() == QUARTERLY
    if quarterly:
        words.pop()
    _count(words, 1, 2, usage)
    _date(words[0], usage)
    at = words[1] if len(words) > 1 else None
    if at is not None and not any(c.isdigit() for c in at):
        raise MalformedCommand(
            f"`{_short(at)}` is neither a time of day (HH:MM) nor `{QUARTERLY}`.", usage
        )
    return {"date": words[0], "time": at, "quarterly": quarterly}


def calls_remove(args: list[str], usage: str) -> dict[str, Any]:
    """A day, and ``series`` to remove the series from that day's occurrence on."""
    words = list(args)
    series = len(words) > 1 and words[-1].lower() == SERIES
    if series:
        words.pop()
    _count(words, 1, 1, usage)
    _date(words[0], usage)
    return {"date": words[0], "series": series}


def one_date(args: list[str], usage: str) -> dict[str, Any]:
    _count(args, 1, 1, usage)
    _date(args[0], usage)
    return {"date": args[0]}


#: the word after a call's day and time that makes it a series, and the one that removes one
QUARTERLY, SERIES = "quarterly", "series"

_OUTBOX = (
    "`outbox` lists notices; `outbox retry <n>` retries one, `outbox retry dead` every dead one."
)
_KINDS = tuple(k.value for k in NoticeKind)


def outbox(retry_usage: str) -> Grammar:
    """``outbox`` alone lists; anything after it but ``retry <n>`` shows how to retry."""

    def read(args: list[str], usage: str) -> dict[str, Any]:
        if args:
            raise MalformedCommand(_OUTBOX, retry_usage)
        return {}

    return read


def outbox_retry(args: list[str], usage: str) -> dict[str, Any]:
    """One notice by its number (the use case checks it), or ``dead``: every dead notice,
    narrowed by a notice kind and a factory, each optional, in either order. A word is the kind
    when it names one (any case), or has no digit and looks like one (then it is refused with
    the kinds it may mean); any other word is the factory."""
    if not args:
        raise MalformedCommand("Give the notice's number, or `dead` for every dead notice.", usage)
    if args[0].lower() != "dead":
        _count(args, 1, 1, usage)
        return {"notice": args[0], "kind": None, "factory": None}
    _count(args, 1, 3, usage)
    kind = factory = None
    for word in args[1:]:
        if word.lower() in _KINDS or (
            not any(c.isdigit() for c in word) and close_matches(word, _KINDS, n=1)
        ):
            if kind is not None:
                raise MalformedCommand("Name at most one notice kind.", usage)
            kind = _notice_kind(word, usage)
        elif factory is not None:
            raise MalformedCommand("Name at most one factory.", usage)
        else:
            factory = word
    return {"notice": None, "kind": kind, "factory": factory}


def _notice_kind(word: str, usage: str) -> str:
    if word.lower() in _KINDS:
        return word.lower()
    close = close_matches(word, _KINDS, n=1)
    raise MalformedCommand(
        f"`{_short(word)}` is not a notice kind.",
        usage,
        hint=f"Did you mean `{close[0]}`? Usage: `{usage}`" if close else None,
    )


_REVIEW = (
    "`review` lists the events held for review; `review release <n>` sends one's notices, "
    "`review dismiss <n> <reason>` closes one without notices."
)


def review(release_usage: str) -> Grammar:
    """``review`` alone lists; anything after it but ``release`` or ``dismiss`` shows how."""

    def read(args: list[str], usage: str) -> dict[str, Any]:
        if args:
            raise MalformedCommand(_REVIEW, release_usage)
        return {}

    return read


def review_release(args: list[str], usage: str) -> dict[str, Any]:
    """A held event's number (the use case checks it)."""
    if not args:
        raise MalformedCommand("Give the number of the held event, as `review` lists it.", usage)
    _count(args, 1, 1, usage)
    return {"event": args[0]}


def review_dismiss(args: list[str], usage: str) -> dict[str, Any]:
    """A held event's number and the reason (required: it is kept with the event)."""
    if not args:
        raise MalformedCommand("Give the number of the held event, as `review` lists it.", usage)
    if len(args) < 2:
        raise MalformedCommand("A dismissal needs a reason.", usage)
    return {"event": args[0], "reason": " ".join(args[1:])}


def _count(args: list[str], least: int, most: int, usage: str) -> None:
    if least <= len(args) <= most:
        return
    if len(args) < least:
        problem = "Something is missing."
    else:
        extra = " ".join(args[most:])
        problem = f"Unexpected `{_short(extra)}` at the end."
    raise MalformedCommand(problem, usage)


def _date(value: str, usage: str) -> None:
    if not _ISO_DATE.match(value):
        raise MalformedCommand(f"`{_short(value)}` is not a date (YYYY-MM-DD).", usage)


def _unescape(token: str) -> str:
    return _SLACK_TEXT.sub(_read, token)


def _read(match: re.Match[str]) -> str:
    markup, entity = match.groups()
    if entity is not None:
        return _ENTITIES[entity]
    target, bar, label = markup.partition("|")
    target = _SLACK_TEXT.sub(_read, target)
    if target[:7].lower() == "mailto:":
        return target[7:].partition("?")[0]  # the address; the label is what Slack showed
    return f"<{target}{bar}{_SLACK_TEXT.sub(_read, label)}>"


def _link(token: str) -> str:
    """The address of Slack's link markup (``<https://…|label>``), or the token as typed."""
    if token.startswith("<") and token.endswith(">"):
        return token[1:-1].partition("|")[0]
    return token


def _short(value: str, limit: int = 40) -> str:
    return shown(value, limit)
