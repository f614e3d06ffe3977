"""The ``/pnc`` grammar (``handlers.parse``): what people really type, and what Slack sends."""

from __future__ import annotations

import pytest

from bot.errors import MalformedCommand
from bot.render import escape_mrkdwn, render_slack
from bot.roles import RoleLevel
from handlers.commands import SUBCOMMANDS, USAGE, parse, usages_of
from handlers.parse import Command


def refusal(text: str) -> str:
    with pytest.raises(MalformedCommand) as caught:
        parse(text)
    return caught.value.render()


# --- words and quotes ----------------------------------------------------------------------------


@pytest.mark.parametrize("apostrophe", ["'", "’"])
def test_an_apostrophe_in_free_text_is_text(apostrophe: str) -> None:
    reason = f"The factory didn{apostrophe}t fix it"
    command = parse(f"readmission reject VN-1001 {reason}")
    assert command == Command("readmission reject", {"factory": "VN-1001", "note": reason})


def test_an_apostrophe_in_an_unquoted_name_is_text() -> None:
    command = parse("factory add VN-9 O'Brien Ltd VN hr@x.example")
    assert command.args["name"] == "O'Brien Ltd"
    assert command.args["country"] == "VN"


def test_an_apostrophe_inside_a_quoted_name_is_text() -> None:
    assert parse('buyer add B-X "Marks & Spencer\'s" b@x.example').args["name"] == (
        "Marks & Spencer's"
    )


def test_backslashes_are_kept() -> None:
    assert parse(r"withdraw VN-1001 2025-01-05 see C:\temp\x").args["reason"] == r"see C:\temp\x"
    assert parse(r'factory add VN-9 "A\B" VN a@b.example').args["name"] == r"A\B"


def test_a_hash_is_text_not_a_comment() -> None:
    assert parse("readmission reject VN-1001 see #12").args["note"] == "see #12"


@pytest.mark.parametrize("quotes", [('"', '"'), ("“", "”"), ("„", "“")])
def test_double_quotes_straight_or_typographic_group_words(quotes: tuple[str, str]) -> None:
    opening, closing = quotes
    command = parse(f"factory add VN-9 {opening}Saigon Stitch{closing} VN a@b.example vi")
    assert command.args["name"] == "Saigon Stitch"
    assert command.args["language"] == "vi"


@pytest.mark.parametrize("text", ['factory add VN-9 "Saigon Stitch VN a@b.example', "status “VN"])
def test_an_unclosed_double_quote_is_refused_clearly(text: str) -> None:
    assert refusal(text) == 'A quotation mark is not closed. Put names in quotes: "Saigon Stitch".'


# --- what Slack sends: entities and markup -------------------------------------------------------


def test_a_link_in_slack_markup_is_taken_with_its_entities_read() -> None:
    command = parse(
        "readmission apply VN-1001 <https://drive.example/f?id=1&amp;usp=sharing> "
        "<https://drive.example/g?a=1&amp;b=2|folder> reports https://moit.example/r?x=1&amp;y=2"
    )
    assert command.args["evidence"] == [
        "https://drive.example/f?id=1&usp=sharing",
        "https://drive.example/g?a=1&b=2",
    ]
    assert command.args["reports"] == ["https://moit.example/r?x=1&y=2"]


@pytest.mark.parametrize(
    ("sent", "emails"),
    [
        ("<mailto:hr@x.example|hr@x.example>", "hr@x.example"),
        ("<mailto:hr@x.example>", "hr@x.example"),
        (
            "<mailto:a@x.example|a@x.example>;<mailto:b@y.example|b@y.example>",
            "a@x.example;b@y.example",
        ),
    ],
)
def test_an_email_in_slack_markup_is_the_address(sent: str, emails: str) -> None:
    factory = parse(f"factory add VN-9 Name VN {sent}")
    assert (factory.args["name"], factory.args["country"]) == ("Name", "VN")
    assert factory.args["emails"] == emails
    assert parse(f"buyer add B-X Name {sent}").args["emails"] == emails


def test_slack_markup_is_one_word_even_with_spaces_or_quotes_in_its_label() -> None:
    command = parse(
        'readmission apply VN-1001 <https://drive.example/a|the "final" evidence folder> '
        "reports <https://moit.example/r|report to the Inspectorate>"
    )
    assert command.args["evidence"] == ["https://drive.example/a"]
    assert command.args["reports"] == ["https://moit.example/r"]
    factory = parse("factory add VN-9 Name VN <mailto:hr@x.example|HR team>")
    assert (factory.args["name"], factory.args["emails"]) == ("Name", "hr@x.example")
    reason = "see <https://x.example|this page> and <#C1|general>"
    assert parse(f"readmission reject VN-1001 {reason}").args["note"] == reason


def test_mentions_channels_and_links_in_free_text_stay_as_typed() -> None:
    reason = "ask <@U123|bob> in <#C1|general> about <https://x.example/?a=1&amp;b=2|this>"
    command = parse(f"readmission reject VN-1001 {reason}")
    assert command.args["note"] == (
        "ask <@U123|bob> in <#C1|general> about <https://x.example/?a=1&b=2|this>"
    )


def test_entities_a_person_typed_are_read_once() -> None:
    command = parse("withdraw VN-1001 2025-01-05 a&amp;b &lt;@U1&gt; &amp;lt;")
    assert command.args["reason"] == "a&b <@U1> &lt;"
    assert parse("role grant <@U0NEW|new> viewer").args["user"] == "<@U0NEW|new>"


# --- refusals ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "group"),
    [
        ("role promote <@U1> manager", ("role grant", "role revoke")),
        ("role", ("role grant", "role revoke")),
        (
            "readmission withdraw VN-1001",
            (
                "readmission apply",
                "readmission unannounced",
                "readmission approve",
                "readmission reject",
            ),
        ),
        ("calls move 2030-01-10", ("calls add", "calls list", "calls remove")),
    ],
)
def test_a_wrong_subcommand_shows_every_usage_of_its_group(
    text: str, group: tuple[str, ...]
) -> None:
    shown = refusal(text)
    for action in group:
        assert f"`{USAGE[action]}`" in shown, (action, shown)


# --- the declarations ----------------------------------------------------------------------------


def test_each_subcommand_is_declared_once_with_a_usage_that_starts_with_what_is_typed() -> None:
    assert len({c.action for c in SUBCOMMANDS}) == len(SUBCOMMANDS)
    assert len({c.words for c in SUBCOMMANDS}) == len(SUBCOMMANDS)
    for c in SUBCOMMANDS:
        assert c.usage.startswith(f"/pnc {c.words}"), c
        assert USAGE[c.action] == c.usage
    # a group word alone means at most one of its subcommands
    for verb in {c.words.split()[0] for c in SUBCOMMANDS}:
        assert (
            sum(c.default or c.words == verb for c in SUBCOMMANDS if c.words.split()[0] == verb)
            <= 1
        )


def test_help_lists_every_usage_once_under_the_role_it_needs() -> None:
    text = render_slack(
        "slack/help.txt", usages={r.label: usages_of(r) for r in RoleLevel}, role="viewer"
    )
    staff, rest = text.split("*Assessors*")
    assessors, managers = rest.split("*Managers*")
    sections = {RoleLevel.VIEWER: staff, RoleLevel.ASSESSOR: assessors, RoleLevel.MANAGER: managers}
    for c in SUBCOMMANDS:
        shown = f"`{escape_mrkdwn(c.usage)}`"
        assert text.count(shown) == 1 and shown in sections[c.permission.role], c.usage
