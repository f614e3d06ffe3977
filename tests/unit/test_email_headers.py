"""Email headers as mail programs read them (issue #16): whatever the names — Vietnamese, with
commas, quotes, parentheses, semicolons, backslashes, very long — every email, written to a
``.eml`` file or sent over SMTP, parses with ``email.policy.default`` to exactly the intended
addresses and display names, and no header line is over 998 bytes. Pure: no database.

Both ways a message leaves are checked: ``FileTransport`` writes
``message.as_bytes(policy=email.policy.SMTP)``; ``SmtpTransport`` hands the message to
aiosmtplib, which flattens a classic ``Message`` with the ``compat32`` policy.
"""

from __future__ import annotations

import copy
import dataclasses
import email
import pickle
from collections.abc import Callable
from datetime import UTC, date, datetime
from email import policy
from email.message import EmailMessage, Message
from email.utils import parseaddr

import pytest
from aiosmtplib.email import flatten_message
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from bot import mail, notices
from bot.countries import load_config
from bot.notices import Party
from bot.settings import Settings
from store.outbox import Claimed
from tests.emails import row_for

SETTINGS = Settings(
    database_url="sqlite+aiosqlite:///x.db",
    inspectorate_email="insp@molisa.example",
    staff_channel="C0STAFF",
    mail_from="Better Work PNC <pnc@betterwork.example>",
)
VN = load_config(SETTINGS).countries["VN"]
PAYLOAD = {
    "threshold": 4,
    "consecutive": 3,
    "k": 2,
    "assessed_on": "2024-05-08",
    "nc_issues": sorted(i.code for i in VN.catalogue)[:3],
    "kind": "regular",
}
LONG_NAME = "Saigon Stitch Co., Ltd. (Linh Trung Export Processing Zone, Thu Duc Branch No. 2)"
VIETNAMESE_NAME = (
    "Công ty TNHH May mặc Sài Gòn Xuất khẩu (Khu chế xuất Linh Trung, Chi nhánh Thủ Đức số 2)"
)
#: the two ways a message is flattened: to a file (``FileTransport``), over SMTP (aiosmtplib)
FLATTENERS: dict[str, Callable[[Message], bytes]] = {
    "eml": lambda m: m.as_bytes(policy=policy.SMTP),
    "smtp": lambda m: flatten_message(m),
}
PROPERTY = settings(
    deadline=None,
    database=None,
    max_examples=300,
    suppress_health_check=[HealthCheck.too_slow],
)

_VIETNAMESE = "ăâđêôơưĂÂĐÊÔƠƯàáảãạằắẳẵặầấẩẫậèéẻẽẹềếểễệìíỉĩịòóỏõọồốổỗộờớởỡợùúủũụừứửữựỳýỷỹỵĐỨỰ"
_PUNCTUATION = ",;:.\"\\()<>[]@=?_-'&/!#%*+"
#: printable text: letters (with Vietnamese ones often), combining marks, digits, punctuation,
#: symbols and spaces; validation refuses control characters before a name is stored
NAMES = st.text(
    st.one_of(
        st.sampled_from(_VIETNAMESE + _PUNCTUATION + "  "),
        st.characters(codec="utf-8", categories=("L", "M", "N", "P", "S", "Zs")),
    ),
    min_size=1,
    max_size=100,
).map(lambda s: " ".join(s.split()))


def _row(name: str, addresses: tuple[str, ...] = ("hr@saigonstitch.example",)) -> Claimed:
    factory = Party("VN-1001", name, addresses, "vi")
    planned, _ = notices.plan(
        "VN-1001/at_risk_warning/a9", "at_risk_warning", PAYLOAD, factory, VN, (), date(2027, 6, 30)
    )
    (notice,) = [n for n in planned if n.channel == "email" and n.recipient_type == "factory"]
    return row_for(notice)


def _parse(raw: bytes) -> EmailMessage:
    result = email.message_from_bytes(raw, policy=policy.default)
    assert isinstance(result, EmailMessage)
    return result


def _mailboxes(message: EmailMessage, header: str) -> list[tuple[str, str]]:
    return [(a.display_name, a.addr_spec) for a in message[header].addresses]


def _check(message: Message, row: Claimed, settings_: Settings, name: str) -> None:
    """Each way of sending reads back to exactly the names and addresses intended."""
    subject = mail.render(row.kind, mail.languages_for(row), dict(row.payload))[0]
    for how, flatten in FLATTENERS.items():
        raw = flatten(message)
        head = raw.split(b"\n\n", 1)[0].split(b"\r\n\r\n", 1)[0]
        long_lines = [line[:60] for line in raw.splitlines() if len(line) > 998]
        assert not long_lines, how
        assert head.isascii(), how
        back = _parse(raw)
        assert _mailboxes(back, "To") == [(name, a) for a in row.addresses], (how, head)
        assert _mailboxes(back, "From") == [settings_.sender], (how, head)
        if settings_.reply_to_mailbox:
            assert _mailboxes(back, "Reply-To") == [settings_.reply_to_mailbox], (how, head)
        assert back["Subject"] == subject, (how, head)
        for header in ("To", "From", "Subject"):
            assert not back[header].defects, (how, header, back[header].defects, head)


def _settings(name: str) -> Settings:
    """Settings whose sender and reply-to addresses have ``name``, written as people write it
    in ``PNC_MAIL_FROM``: a quoted string, in UTF-8."""
    quoted = name.replace("\\", "\\\\").replace('"', '\\"')
    return Settings(
        database_url="sqlite+aiosqlite:///x.db",
        mail_from=f'"{quoted}" <pnc@betterwork.example>',
        reply_to=f'"{quoted}" <help@betterwork.example>',
    )


@pytest.mark.parametrize(
    "name",
    [
        LONG_NAME,
        VIETNAMESE_NAME,
        'Nhà máy "Hòa Bình"; xưởng 3 \\ kho (cũ), số 7',
        "Acme Outfitters",
        "=?utf-8?q?Fake?= Buyer",
        "x" * 100,
        "Đ" * 100,
        "😀" * 100,  # four bytes each: the longest encoded word there can be
        "a, b; " * 16,
    ],
)
def test_a_long_or_punctuated_name_reads_back_exactly(name: str) -> None:
    name = " ".join(name.split())
    row = _row(name, ("hr@saigonstitch.example", "compliance@saigonstitch.example"))
    settings_ = _settings(name)
    assert settings_.sender == (name, "pnc@betterwork.example")
    _check(mail.build(row, settings_), row, settings_, name)


def test_a_name_over_100_characters_is_cut_to_100_in_the_to_header() -> None:
    name = f"{VIETNAMESE_NAME} {VIETNAMESE_NAME}"
    row = _row(name)
    back = _parse(mail.build(row, SETTINGS).as_bytes(policy=policy.SMTP))
    assert _mailboxes(back, "To") == [(name[:100].rstrip(), "hr@saigonstitch.example")]


@PROPERTY
@given(name=NAMES, other=NAMES)
@example(name=LONG_NAME, other=VIETNAMESE_NAME)
def test_any_printable_name_reads_back_exactly(name: str, other: str) -> None:
    if not name:
        name = "x"
    row = _row(name, ("hr@saigonstitch.example", "a@b.example"))
    settings_ = _settings(other or "y")
    _check(mail.build(row, settings_), row, settings_, name)


def test_a_sender_without_a_name_or_with_a_very_long_one() -> None:
    row = _row("Acme Outfitters")
    back = _parse(
        mail.build(row, SETTINGS.model_copy(update={"mail_from": "pnc@bw.example"})).as_bytes(
            policy=policy.SMTP
        )
    )
    assert _mailboxes(back, "From") == [("", "pnc@bw.example")]
    long = _settings("Better Work Việt Nam " * 20)
    for flatten in FLATTENERS.values():
        raw = flatten(mail.build(row, long))
        assert max(len(line) for line in raw.splitlines()) <= 998
        (sender,) = _mailboxes(_parse(raw), "From")
        assert sender == (long.sender[0][:100].rstrip(), "pnc@betterwork.example")


def test_a_copied_or_pickled_message_is_written_the_same() -> None:
    message = mail.build(_row(LONG_NAME), _settings(VIETNAMESE_NAME))
    raw = message.as_bytes(policy=policy.SMTP)
    assert copy.deepcopy(message).as_bytes(policy=policy.SMTP) == raw
    assert pickle.loads(pickle.dumps(message)).as_bytes(policy=policy.SMTP) == raw


def test_the_envelope_sender_is_the_from_address_even_with_a_long_punctuated_name() -> None:
    settings_ = _settings(LONG_NAME)
    message = mail.build(_row(VIETNAMESE_NAME), settings_)
    assert parseaddr(str(message["From"]))[1] == "pnc@betterwork.example"


def test_a_long_vietnamese_subject_is_folded_under_998_bytes() -> None:
    name = ("Nhà máy Đức Thịnh " * 12).strip()[:200]
    row = dataclasses.replace(_row(name), created_at=datetime(2026, 11, 20, tzinfo=UTC))
    message = mail.build(row, SETTINGS)
    for flatten in FLATTENERS.values():
        raw = flatten(message)
        assert max(len(line) for line in raw.splitlines()) <= 998
        assert name in _parse(raw)["Subject"]
