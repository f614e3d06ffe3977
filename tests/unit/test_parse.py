"""The ``/pnc`` grammar (``handlers.parse``): what people really type, and what Slack sends."""

from __future__ import annotations

import pytest

from bot.errors import MalformedCommand
from handlers.parse import Command, parse


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
