"""Fuzzing the ``/pnc`` grammar (``handlers.parse.parse``).

Whatever a person types, ``parse`` answers with a ``Command`` the permission table knows, or with
a ``MalformedCommand`` that reads as one plain paragraph — never with another exception. The
strategies that build plausible commands are shared with the end-to-end command fuzz
(``tests/integration/test_command_fuzz.py``).
"""

from __future__ import annotations

import unicodedata
from datetime import date

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from bot.errors import MalformedCommand
from handlers.commands import PERMISSIONS, SUBCOMMANDS, USAGE, VERBS, parse
from handlers.parse import MAX_LENGTH, Command

PROPERTY = settings(
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
    database=None,
    max_examples=400,
)

# --- the vocabulary of plausible commands -------------------------------------------------------

FACTORY_IDS = ("VN-1001", "VN-1002", "VN-1003", "VN-1004", "VN-1005", "KH-2001")
BUYER_IDS = ("B-ACME", "B-NORD", "B-PAC")
CODES = ("CO-01", "CO-02", "OS-01", "OS-03", "WT-01", "WT-02", "CH-01", "FL-03", "FA-01", "CL-01")


def _prefix(usage: str) -> tuple[str, ...]:
    """The literal words a usage line starts with: ``/pnc calls add <date>`` → calls, add."""
    words = []
    for word in usage.split()[1:]:
        if word[0] in '<["':
            break
        words.append(word)
    return tuple(words)


#: the words each real subcommand starts with, taken from the grammar's own usage lines
PREFIXES = tuple(sorted({_prefix(u) for u in USAGE.values()} | {(v,) for v in VERBS}))


def _case(word: str) -> st.SearchStrategy[str]:
    return st.sampled_from([word, word.upper(), word.capitalize()])


def _typo(word: str) -> st.SearchStrategy[str]:
    """The word with one character replaced: a slip of the finger."""
    return st.tuples(st.integers(0, max(len(word) - 1, 0)), st.sampled_from("xd-")).map(
        lambda p: word[: p[0]] + p[1] + word[p[0] + 1 :]
    )


def dates() -> st.SearchStrategy[str]:
    valid = st.dates(min_value=date(2020, 1, 1), max_value=date(2031, 12, 31)).map(date.isoformat)
    broken = st.sampled_from(
        [
            "2025-02-30",
            "2025-13-01",
            "2025-00-10",
            "2024-02-29",
            "2023-02-29",
            "0000-01-01",
            "9999-12-31",
            "25-1-1",
            "2025/01/05",
            "05-01-2025",
            "2025-1-5",
            "today",
            "２０２５-０１-０５",  # full-width digits match \d
            "٢٠٢٥-٠١-٠٥",  # Arabic-Indic digits match \d too
        ]
    )
    return st.one_of(valid, valid, broken)


def ids(known: tuple[str, ...]) -> st.SearchStrategy[str]:
    real = st.sampled_from(known)
    return st.one_of(
        real,
        real,
        real.map(str.lower),
        real.flatmap(_typo),
        st.sampled_from(["VN-9999", "XX-1", "-", "VN 1001", "a" * 65, "VN-1001\u200b"]),
        st.from_regex(r"[A-Z]{2}-[0-9]{1,5}", fullmatch=True),
    )


def code_lists() -> st.SearchStrategy[str]:
    code = st.one_of(
        st.sampled_from(CODES),
        st.sampled_from(CODES).map(str.lower),
        st.sampled_from(["XX-99", "CO-1", "CO01", "", "none", "NONE", "n/a"]),
    )
    separator = st.sampled_from([",", ";", ", ", ",,", ";;"])
    return st.one_of(
        st.just("none"),
        code,
        st.tuples(st.lists(code, min_size=1, max_size=6), separator).map(lambda t: t[1].join(t[0])),
    )


def quoted(text: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """``text`` in straight, smart, single or unbalanced quotes."""
    quotes = st.sampled_from(
        [('"', '"'), ("“", "”"), ("„", "“"), ("'", "'"), ("‘", "’"), ('"', ""), ("", "”")]
    )
    return st.tuples(quotes, text).map(lambda t: f"{t[0][0]}{t[1]}{t[0][1]}")


def garbage() -> st.SearchStrategy[str]:
    return st.one_of(
        st.text(max_size=12),
        st.text(st.characters(codec="ascii"), max_size=12),
        st.sampled_from(["\\", "\\\\", '"', "'", "`", "*", "_", "~", "#", "\t", "\x00", "\x85"]),
        st.just("x" * 300),
    )


SLACK_MARKUP = (
    "<@U123|x>",
    "<@U0FUZZ>",
    "<@W0ABC>",
    "<@U0MANAGER|boss>",
    "<#C123|general>",
    "<!channel>",
    "<!here>",
    "<!subteam^S123|@team>",
    "<https://x|y>",
    "<https://drive.example/evidence.pdf>",
    "<mailto:hr@x.example|hr@x.example>",
    "&lt;",
    "&gt;",
    "&amp;",
    "&amp;lt;",
    "a&amp;b",
    "&lt;@U123&gt;",
    "<>",
    "<",
    ">",
)


def arguments(
    factory_ids: tuple[str, ...] = FACTORY_IDS, buyer_ids: tuple[str, ...] = BUYER_IDS
) -> st.SearchStrategy[str]:
    """One argument token, as a person might type it."""
    return st.one_of(
        ids(factory_ids),
        ids(factory_ids),
        ids(buyer_ids),
        dates(),
        dates(),
        code_lists(),
        st.sampled_from(["regular", "unannounced", "Unannounced", "reports", "REPORTS"]),
        st.sampled_from(["VN", "KH", "vn", "XX", "Vietnam", "vi", "en", "fr"]),
        st.sampled_from(["hr@x.example", "a@x.example;b@y.example", "@", "not-an-email", "a@"]),
        st.sampled_from(["viewer", "assessor", "manager", "Manager", "admin", "owner"]),
        st.sampled_from(["add", "list", "remove", "apply", "approve", "reject", "held", "retry"]),
        st.sampled_from(["09:30", "23:59", "24:00", "9:5", "25:99", "noon"]),
        st.integers(-3, 10**20).map(str),
        st.sampled_from(SLACK_MARKUP),
        quoted(st.sampled_from(["Saigon Stitch", "A", "", "Công ty May 10", "x, y"])),
        garbage(),
    )


def command_texts(
    factory_ids: tuple[str, ...] = FACTORY_IDS,
    buyer_ids: tuple[str, ...] = BUYER_IDS,
    max_args: int = 7,
) -> st.SearchStrategy[str]:
    """What follows ``/pnc``: a real subcommand (sometimes mistyped) and random arguments."""
    words = st.sampled_from(PREFIXES).flatmap(
        lambda prefix: st.tuples(*(st.one_of(*[_case(w)] * 4, _typo(w)) for w in prefix))
    )
    spaces = st.sampled_from([" ", " ", " ", "  ", "\t", " \n "])
    return st.tuples(
        words,
        st.lists(arguments(factory_ids, buyer_ids), max_size=max_args),
        spaces,
        st.sampled_from(["", "", " ", "\n"]),
    ).map(lambda t: t[2].join([*t[0], *t[1]]) + t[3])


#: the sample assessments' days, so that amendments and withdrawals sometimes find one
ASSESSED_ON = (
    "2023-04-12",
    "2024-05-08",
    "2025-06-17",
    "2024-02-20",
    "2025-09-03",
    "2024-07-15",
    "2025-08-21",
    "2025-01-14",
    "2025-11-05",
    "2018-05-30",
    "2024-03-11",
    "2026-03-25",
)


def _words(*parts: st.SearchStrategy[str] | str) -> st.SearchStrategy[str]:
    return st.tuples(*(st.just(p) if isinstance(p, str) else p for p in parts)).map(
        lambda t: " ".join(w for w in t if w)
    )


def _token(strategy: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """Only values shlex reads as one token."""
    return strategy.filter(lambda t: t and not set(t) & set(" \t\r\n\"'\\“”„‘’"))


def well_formed(
    factory_ids: tuple[str, ...] = FACTORY_IDS, buyer_ids: tuple[str, ...] = BUYER_IDS
) -> st.SearchStrategy[tuple[str, str]]:
    """A command written as its usage line says, with plausible values: (action, text)."""
    fid = _token(ids(factory_ids))
    bid = _token(ids(buyer_ids))
    day = st.one_of(st.sampled_from(ASSESSED_ON), dates())
    # an ISO-shaped day: the grammar accepts these, the use cases judge them
    iso = day.filter(lambda d: len(d) == 10 and d[4] == d[7] == "-")
    new_id = st.from_regex(r"(VN|KH|XX)-[0-9]{4,5}", fullmatch=True)
    name = quoted(st.sampled_from(["Saigon Stitch", "Công ty May 10", "A&amp;B", "x, y"])).filter(
        lambda n: n[0] in "\"'“„‘" and n[-1] in "\"'”“’"
    )
    reason = st.sampled_from(["typo", "wrong factory", "the report was &lt;wrong&gt;", "x"])
    link = st.sampled_from(
        ["https://drive.example/a.pdf", "<https://x.example|y>", "evidence", "http://x"]
    )
    links = st.lists(link, min_size=1, max_size=3).map(" ".join)
    country = st.sampled_from(["", "VN", "KH", "vn", "XX"])
    user = st.sampled_from(["<@U0NEW1>", "<@U0NEW2|new>", "<@U0FUZZ>", "U0NEW3", "someone"])
    role = st.sampled_from(["viewer", "assessor", "manager", "admin"])
    email = st.sampled_from(["hr@x.example", "a@x.example;b@y.example", "a@x.example,b@"])
    kind = st.sampled_from(["", "", "regular", "unannounced"])
    texts = {
        "help": _words("help"),
        "status": _words("status", fid),
        "history": _words("history", fid),
        "assess": st.one_of(
            _words("assess", st.sampled_from(["", *factory_ids])),
            _words("assess", fid, iso, _token(code_lists()), kind),
            _words("assess", fid, iso, _token(code_lists()), kind, "report", iso),
        ),
        "factory add": _words(
            "factory add",
            new_id,
            name,
            st.sampled_from(["VN", "KH", "XX"]),
            email,
            st.sampled_from(["", "vi", "en"]),
            st.sampled_from(["", "2027-06-30", "2020-01-01"]),
        ),
        "buyer add": _words("buyer add", st.sampled_from(["B-NEW", "B-ACME", "b-x"]), name, email),
        "subscribe": _words("subscribe", bid, fid),
        "unsubscribe": _words("unsubscribe", bid, fid),
        "at-risk": _words("at-risk", country),
        "issues": _words("issues", country),
        "assessment amend": _words("amend", fid, iso, _token(code_lists()), reason),
        "assessment withdraw": _words("withdraw", fid, iso, reason),
        "readmission apply": _words(
            "readmission apply", fid, links, st.sampled_from(["", "reports"]), link
        ),
        "readmission unannounced": _words("readmission unannounced", fid, iso),
        "readmission approve": _words("readmission approve", fid, st.sampled_from(["", "ok"])),
        "readmission reject": _words("readmission reject", fid, reason),
        "calls add": _words("calls add", iso, st.sampled_from(["", "09:30", "25:99", "9"])),
        "calls list": _words("calls list"),
        "calls remove": _words("calls remove", iso),
        "meeting held": _words("meeting held", fid, iso),
        "outbox": _words("outbox"),
        "outbox retry": _words("outbox retry", st.sampled_from(["1", "2", "0", "-1", "x", "10"])),
        "role grant": _words("role grant", user, role),
        "role revoke": _words("role revoke", user),
        "review": _words("review"),
        "review release": _words(
            "review release", st.sampled_from(["1", "#2", "0", "-1", "x", "10"])
        ),
        "review dismiss": _words("review dismiss", st.sampled_from(["1", "#2", "x"]), reason),
        "inspectorate visit": _words("inspectorate visit", fid, iso),
        "readmission report": _words("readmission report", fid, link),
        "referral send": _words("referral send", fid),
        "ztp": _words("ztp"),
        "ztp open": _words("ztp open", fid, st.sampled_from(["CL-01", "os-01", "XX-9"]), reason),
        "ztp update": _words(
            "ztp update",
            st.sampled_from(["1", "#2", "0", "x"]),
            st.sampled_from(["investigating", "action-plan", "closed", "open"]),
            reason,
        ),
        "progress": _words("progress", fid, iso, "fixed", _token(code_lists())),
    }
    assert set(texts) == set(PERMISSIONS) - {"import"}
    return st.sampled_from(sorted(texts)).flatmap(
        lambda action: texts[action].map(lambda text: (action, text))
    )


ANY_TEXT = st.one_of(
    # every code point, surrogates and control characters included
    st.text(st.characters(exclude_categories=())),
    st.text(st.characters(codec="ascii")),
    st.text(st.sampled_from(" \"'“”„‘’\\\t\n<>&@;,-:0123456789abcdefhlprstuvw"), max_size=40),
)


# --- properties ----------------------------------------------------------------------------------


def _controls(text: str) -> list[str]:
    """The control characters (category Cc, C0 and C1) in ``text``."""
    return [c for c in text if unicodedata.category(c) == "Cc"]


def check(text: str) -> Command | MalformedCommand:
    """``parse(text)``, checked: a known Command, or a refusal that reads as one paragraph."""
    try:
        command = parse(text)
    except MalformedCommand as exc:
        shown = exc.render()
        assert shown.strip(), f"empty refusal for {text!r}"
        assert "\n" not in shown, f"refusal of {text!r} is not one paragraph: {shown!r}"
        assert not _controls(shown), f"refusal of {text!r} shows control characters: {shown!r}"
        assert exc.code == "malformed_command"
        return exc
    assert isinstance(command, Command)
    assert command.action in PERMISSIONS, command
    assert command.action in {c.action for c in SUBCOMMANDS}, command
    return command


def _same(a: Command | MalformedCommand, b: Command | MalformedCommand) -> bool:
    if isinstance(a, MalformedCommand) and isinstance(b, MalformedCommand):
        return a.render() == b.render()
    return a == b


@PROPERTY
@given(text=ANY_TEXT)
@example(text="")
@example(text="\ud800")
@example(text="status \udfff")
@example(text="x" * (MAX_LENGTH + 1))
@example(text='assess "')
@example(text="assess \\")
@example(text="readmission apply VN-1001 reports")
@example(text="meeting held VN-1001")
def test_any_text_is_a_known_command_or_a_one_paragraph_refusal(text: str) -> None:
    check(text)


@PROPERTY
@given(text=command_texts())
def test_plausible_commands_are_a_known_command_or_a_one_paragraph_refusal(text: str) -> None:
    check(text)


@PROPERTY
@given(text=st.one_of(ANY_TEXT, command_texts()))
def test_parse_is_deterministic(text: str) -> None:
    assert _same(check(text), check(text))


@PROPERTY
@given(command=well_formed())
def test_a_command_written_as_its_usage_says_is_that_command(command: tuple[str, str]) -> None:
    action, text = command
    result = check(text)
    assert isinstance(result, Command), f"{text!r}: {result}"
    assert result.action == action, text


# --- bugs found ---------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["\x85", "\x80", "assess VN-1001 \x85 none", "status a b\x9b"])
def test_a_refusal_never_echoes_a_c1_control_character(text: str) -> None:
    with pytest.raises(MalformedCommand) as exc_info:
        parse(text)
    shown = exc_info.value.render()
    assert not _controls(shown), repr(shown)
