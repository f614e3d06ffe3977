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
from dataclasses import dataclass, field
from typing import Any

from bot.errors import MalformedCommand
from bot.suggest import close_matches
from bot.validation import _ISO_DATE, ASSESSMENT_KINDS, LANGUAGES, shown

#: each subcommand's usage: the grammar's one source, shown by ``help`` and in refusals
USAGE: dict[str, str] = {
    "help": "/pnc help",
    "status": "/pnc status <factory>",
    "history": "/pnc history <factory>",
    "assess": "/pnc assess [<factory> <YYYY-MM-DD> <code,code,…|none> [unannounced]]",
    "factory add": '/pnc factory add <id> "<name>" <country> <emails> [vi|en] [<cycle end>]',
    "buyer add": '/pnc buyer add <id> "<name>" <emails>',
    "subscribe": "/pnc subscribe <buyer> <factory>",
    "unsubscribe": "/pnc unsubscribe <buyer> <factory>",
    "at-risk": "/pnc at-risk [country]",
    "issues": "/pnc issues [country]",
    "assessment amend": "/pnc amend <factory> <YYYY-MM-DD> <code,code,…|none> <reason>",
    "assessment withdraw": "/pnc withdraw <factory> <YYYY-MM-DD> <reason>",
    "readmission apply": "/pnc readmission apply <factory> <evidence link> … [reports <link> …]",
    "readmission unannounced": "/pnc readmission unannounced <factory> <YYYY-MM-DD>",
    "readmission approve": "/pnc readmission approve <factory> [note]",
    "readmission reject": "/pnc readmission reject <factory> <reason>",
    "calls add": "/pnc calls add <YYYY-MM-DD> [HH:MM]",
    "calls list": "/pnc calls list",
    "calls remove": "/pnc calls remove <YYYY-MM-DD>",
    "meeting held": "/pnc meeting held <factory> <YYYY-MM-DD>",
    "outbox": "/pnc outbox",
    "outbox retry": "/pnc outbox retry <notice number>",
    "role grant": "/pnc role grant <@user> <viewer|assessor|manager>",
    "role revoke": "/pnc role revoke <@user>",
}

#: what people type first → the action (two-word actions take their second word from the text)
_VERBS = {
    "help": "help",
    "status": "status",
    "history": "history",
    "assess": "assess",
    "factory": "factory",
    "buyer": "buyer",
    "subscribe": "subscribe",
    "unsubscribe": "unsubscribe",
    "at-risk": "at-risk",
    "issues": "issues",
    "amend": "assessment amend",
    "withdraw": "assessment withdraw",
    "role": "role",
    "outbox": "outbox",
    "readmission": "readmission",
    "calls": "calls",
    "meeting": "meeting",
}
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


@dataclass(frozen=True)
class Command:
    action: str
    args: dict[str, Any] = field(default_factory=dict)


def parse(text: str) -> Command:
    """The command ``text`` (what follows ``/pnc``) means."""
    if len(text) > MAX_LENGTH:
        raise MalformedCommand(
            f"The command is {len(text)} characters long.", hint=f"Use at most {MAX_LENGTH}."
        )
    tokens = [_unescape(t) for t in _split(text)]
    if not tokens:
        return Command("help")
    verb, rest = tokens[0].lower(), tokens[1:]
    action = _VERBS.get(verb)
    if action is None:
        close = close_matches(verb, list(_VERBS), n=1)
        hint = f"Did you mean `{close[0]}`? " if close else ""
        raise MalformedCommand(
            f"`{_short(verb)}` is not a pnc-bot command.", hint=f"{hint}`/pnc help` lists them."
        )
    if action in ("factory", "buyer"):
        if not rest or rest[0].lower() != "add":
            raise MalformedCommand(f"`{action}` needs `add`.", USAGE[f"{action} add"])
        return _PARSERS[f"{action} add"](rest[1:])
    if action in ("readmission", "calls", "meeting"):
        return _GROUPS[action](rest)
    if action == "outbox":
        if not rest:
            return Command("outbox")
        if rest[0].lower() != "retry" or len(rest) != 2:
            raise MalformedCommand(
                "`outbox` lists notices; `outbox retry <n>` retries one.", USAGE["outbox retry"]
            )
        return Command("outbox retry", {"notice": rest[1]})
    if action == "role":
        sub = rest[0].lower() if rest else ""
        if sub not in ("grant", "revoke"):
            raise MalformedCommand("`role` needs `grant` or `revoke`.", hint=_usages("role"))
        return _PARSERS[f"role {sub}"](rest[1:])
    return _PARSERS[action](rest)


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


def _help(args: list[str]) -> Command:
    return Command("help")


def _one_factory(action: str) -> Any:
    def parse_it(args: list[str]) -> Command:
        _count(action, args, 1, 1)
        return Command(action, {"factory": args[0]})

    return parse_it


def _assess(args: list[str]) -> Command:
    if len(args) <= 1:
        return Command("assess", {"factory": args[0]} if args else {})
    if len(args) < 3:
        raise MalformedCommand(
            "An assessment needs the factory, the date and the issue codes (or `none`).",
            USAGE["assess"],
        )
    factory, day, *codes = args
    _date(day, "assess")
    kind = None
    if codes and codes[-1].lower() in ASSESSMENT_KINDS and len(codes) > 1:
        kind = codes.pop().lower()
    return Command(
        "assess", {"factory": factory, "date": day, "codes": " ".join(codes), "kind": kind}
    )


def _factory_add(args: list[str]) -> Command:
    # read from the right, so a name may be several words even without quotes
    usage = USAGE["factory add"]
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
    return Command(
        "factory add",
        {
            "factory": factory_id,
            "name": " ".join(rest),
            "country": country,
            "emails": emails,
            "language": language,
            "cycle_end": cycle_end,
        },
    )


def _buyer_add(args: list[str]) -> Command:
    usage = USAGE["buyer add"]
    if len(args) < 3 or "@" not in args[-1]:
        raise MalformedCommand("A buyer needs an id, a name and emails.", usage)
    return Command(
        "buyer add", {"buyer": args[0], "name": " ".join(args[1:-1]), "emails": args[-1]}
    )


def _pair(action: str) -> Any:
    def parse_it(args: list[str]) -> Command:
        _count(action, args, 2, 2)
        return Command(action, {"buyer": args[0], "factory": args[1]})

    return parse_it


def _optional_country(action: str) -> Any:
    def parse_it(args: list[str]) -> Command:
        _count(action, args, 0, 1)
        return Command(action, {"country": args[0] if args else None})

    return parse_it


def _amend(args: list[str]) -> Command:
    action = "assessment amend"
    if len(args) < 4:
        raise MalformedCommand(
            "An amendment needs the factory, the date, the new codes and a reason.", USAGE[action]
        )
    _date(args[1], action)
    return Command(
        action,
        {"factory": args[0], "date": args[1], "codes": args[2], "reason": " ".join(args[3:])},
    )


def _withdraw(args: list[str]) -> Command:
    action = "assessment withdraw"
    if len(args) < 3:
        raise MalformedCommand(
            "A withdrawal needs the factory, the date and a reason.", USAGE[action]
        )
    _date(args[1], action)
    return Command(action, {"factory": args[0], "date": args[1], "reason": " ".join(args[2:])})


def _role_grant(args: list[str]) -> Command:
    _count("role grant", args, 2, 2)
    return Command("role grant", {"user": args[0], "role": args[1].lower()})


def _role_revoke(args: list[str]) -> Command:
    _count("role revoke", args, 1, 1)
    return Command("role revoke", {"user": args[0]})


def _readmission(args: list[str]) -> Command:
    sub = args[0].lower() if args else ""
    rest = args[1:]
    if sub == "apply":
        if len(rest) < 2:
            raise MalformedCommand(
                "An application needs the factory and the evidence links.",
                USAGE["readmission apply"],
            )
        factory, *links = (rest[0], *(_link(t) for t in rest[1:]))
        lowered = [link.lower() for link in links]
        at = lowered.index("reports") if "reports" in lowered else len(links)
        return Command(
            "readmission apply",
            {"factory": factory, "evidence": links[:at], "reports": links[at + 1 :]},
        )
    if sub == "unannounced":
        _count("readmission unannounced", rest, 2, 2)
        _date(rest[1], "readmission unannounced")
        return Command("readmission unannounced", {"factory": rest[0], "date": rest[1]})
    if sub in ("approve", "reject"):
        action = f"readmission {sub}"
        if not rest or (sub == "reject" and len(rest) < 2):
            raise MalformedCommand(
                "A rejection needs the factory and a reason."
                if sub == "reject"
                else "Which factory?",
                USAGE[action],
            )
        return Command(action, {"factory": rest[0], "note": " ".join(rest[1:]) or None})
    raise MalformedCommand(
        "`readmission` needs `apply`, `unannounced`, `approve` or `reject`.",
        hint=_usages("readmission"),
    )


def _calls(args: list[str]) -> Command:
    sub = args[0].lower() if args else "list"
    rest = args[1:]
    if sub == "list":
        _count("calls list", rest, 0, 0)
        return Command("calls list")
    if sub == "add":
        _count("calls add", rest, 1, 2)
        _date(rest[0], "calls add")
        return Command("calls add", {"date": rest[0], "time": rest[1] if len(rest) > 1 else None})
    if sub == "remove":
        _count("calls remove", rest, 1, 1)
        _date(rest[0], "calls remove")
        return Command("calls remove", {"date": rest[0]})
    raise MalformedCommand("`calls` needs `add`, `list` or `remove`.", hint=_usages("calls"))


def _meeting(args: list[str]) -> Command:
    if not args or args[0].lower() != "held":
        raise MalformedCommand("`meeting` needs `held`.", USAGE["meeting held"])
    _count("meeting held", args[1:], 2, 2)
    _date(args[2], "meeting held")
    return Command("meeting held", {"factory": args[1], "date": args[2]})


_GROUPS = {"readmission": _readmission, "calls": _calls, "meeting": _meeting}

_PARSERS = {
    "help": _help,
    "status": _one_factory("status"),
    "history": _one_factory("history"),
    "assess": _assess,
    "factory add": _factory_add,
    "buyer add": _buyer_add,
    "subscribe": _pair("subscribe"),
    "unsubscribe": _pair("unsubscribe"),
    "at-risk": _optional_country("at-risk"),
    "issues": _optional_country("issues"),
    "assessment amend": _amend,
    "assessment withdraw": _withdraw,
    "role grant": _role_grant,
    "role revoke": _role_revoke,
}


def _count(action: str, args: list[str], least: int, most: int) -> None:
    if least <= len(args) <= most:
        return
    if len(args) < least:
        problem = "Something is missing."
    else:
        extra = " ".join(args[most:])
        problem = f"Unexpected `{_short(extra)}` at the end."
    raise MalformedCommand(problem, USAGE[action])


def _usages(group: str) -> str:
    """The usage of every subcommand of a group (``calls`` → add, list, remove), one line."""
    lines = [f"`{usage}`" for action, usage in USAGE.items() if action.split()[0] == group]
    return "Usage: " + ", ".join(lines)


def _date(value: str, action: str) -> None:
    if not _ISO_DATE.match(value):
        raise MalformedCommand(f"`{_short(value)}` is not a date (YYYY-MM-DD).", USAGE[action])


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
