"""Invisible and direction-changing characters are refused at the door (issue #16): bidi
overrides, embeddings, isolates and marks, zero-width characters, the soft hyphen and every
other Unicode format character would reach email subjects, ``To:`` display names and Slack,
where they hide or reorder text. The refusal names the character by its code and name and says
where it is; Vietnamese text, composed or decomposed, is still accepted.
"""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot import validation
from bot.errors import ConfigError, InvalidInput, PncError
from bot.settings import load_settings
from bot.usecases import readmission, registry
from bot.usecases.core import Core
from store import registry as stored
from tests.conftest import MANAGER

PROPERTY = settings(database=None, deadline=None, max_examples=300)

#: the characters issue #16 names: bidi embeddings, overrides, isolates and marks, the Arabic
#: letter mark, zero-width space, non-joiner and joiner, word joiner, byte-order mark, soft hyphen
NAMED = [
    *map(chr, range(0x202A, 0x202F)),
    *map(chr, range(0x2066, 0x206A)),
    "\u200e",
    "\u200f",
    "\u061c",
    *map(chr, range(0x200B, 0x200E)),
    "\u2060",
    "\ufeff",
    "\u00ad",
]
#: every other format character, e.g. tag characters (U+E0041) that smuggle invisible ASCII
FORMAT = st.characters(categories=("Cf",))
VIETNAMESE = [
    "Công ty TNHH May mặc Sài Gòn",
    "Xí nghiệp Dệt Thủ Đức số 2",
    "Nhà máy Hòa Bình (Khu chế xuất Linh Trung), chi nhánh Bình Dương",
    "Đồng Nai Garment – Phường Tân Hiệp",
]


def refusal(exc_info: pytest.ExceptionInfo[PncError]) -> str:
    return exc_info.value.render()


@pytest.mark.parametrize("char", NAMED, ids=lambda c: f"U+{ord(c):04X}")
def test_text_refuses_each_named_character_saying_which_and_where(char: str) -> None:
    with pytest.raises(InvalidInput) as exc_info:
        validation.text(f"Saigon Stitch{char} Co.", "factory name")
    message = refusal(exc_info)
    assert f"U+{ord(char):04X}" in message
    assert unicodedata.name(char) in message
    assert "factory name" in message
    assert "after `Saigon Stitch`" in message
    assert char not in message  # the refusal does not carry it back to Slack


@PROPERTY
@given(before=st.text(st.characters(categories=("L", "N", "Zs"))), char=FORMAT)
def test_text_refuses_every_format_character(before: str, char: str) -> None:
    with pytest.raises(InvalidInput) as exc_info:
        validation.text(f"{before}{char}x", "reason", 500)
    assert f"U+{ord(char):04X}" in str(exc_info.value)
    assert char not in refusal(exc_info)


def test_the_refusal_names_the_first_one_and_counts_the_others() -> None:
    with pytest.raises(InvalidInput) as exc_info:
        validation.text("\u202eAcme\u200b Out\u200bfitters", "buyer name")
    message = refusal(exc_info)
    assert "U+202E (RIGHT-TO-LEFT OVERRIDE) at the start" in message
    assert "2 more" in message


@pytest.mark.parametrize("name", VIETNAMESE)
@pytest.mark.parametrize("form", ["NFC", "NFD"])
def test_vietnamese_names_composed_or_decomposed_are_accepted(name: str, form: str) -> None:
    value = unicodedata.normalize(form, name)
    assert validation.text(value, "factory name") == value


def test_identifier_refusal_names_the_invisible_character() -> None:
    with pytest.raises(InvalidInput) as exc_info:
        validation.identifier("VN-1001\u202e", "factory id")
    message = refusal(exc_info)
    assert "U+202E (RIGHT-TO-LEFT OVERRIDE)" in message and "factory id" in message
    assert "\u202e" not in message


@pytest.mark.parametrize(
    ("value", "code"), [("hr@acme.example\u200b", "U+200B"), ("hr@ac\u00adme.example", "U+00AD")]
)
def test_email_addresses_with_an_invisible_character_are_refused_by_name(
    value: str, code: str
) -> None:
    with pytest.raises(InvalidInput) as exc_info:
        validation.emails(value)
    assert code in refusal(exc_info)


def test_quoted_input_shows_invisible_characters_by_their_code() -> None:
    assert validation.shown("VN\u202e-1") == "VN<U+202E>-1"


async def test_adding_a_factory_with_a_bidi_override_in_its_name_writes_nothing(
    core: Core,
) -> None:
    with pytest.raises(InvalidInput) as exc_info:
        await registry.add_factory(
            core, MANAGER, "VN-7001", "Acme \u202eCo. Ltd", "VN", "hr@acme.example"
        )
    assert "U+202E (RIGHT-TO-LEFT OVERRIDE) after `Acme`" in refusal(exc_info)
    async with core.db.transaction() as s:
        assert await stored.get_factory(s, "VN-7001") is None
    await registry.add_factory(core, MANAGER, "VN-7001", VIETNAMESE[0], "VN", "hr@acme.example")


def test_an_evidence_link_with_an_invisible_character_is_refused_by_name() -> None:
    assert readmission.urls(["https://drive.example/evidence"], "evidence")
    with pytest.raises(InvalidInput) as exc_info:
        readmission.urls(["https://drive.example/\u202eevidence"], "evidence")
    assert "U+202E (RIGHT-TO-LEFT OVERRIDE)" in refusal(exc_info)


def test_a_sender_whose_name_hides_characters_is_refused_at_start_up() -> None:
    assert load_settings(mail_from="Better Work PNC <pnc@example.org>").sender[0]
    with pytest.raises(ConfigError) as exc_info:
        load_settings(mail_from="Better\u200b Work <pnc@example.org>")
    assert "U+200B (ZERO WIDTH SPACE)" in exc_info.value.render()
