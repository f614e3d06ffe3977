"""Delivery settings as they are read and shown: the SMTP URL, the sender's address. Pure: no
I/O."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.errors import ConfigError
from bot.settings import Settings, load_settings
from bot.smtp_url import SmtpSettings
from bot.transports import retry_after


def test_the_smtp_password_never_appears_in_the_settings_repr() -> None:
    settings = SmtpSettings.from_url("smtp://pnc:s3cr%40t-pw@relay.example:587?starttls=true")
    assert settings.password == "s3cr@t-pw"
    assert "s3cr" not in repr(settings) and "s3cr" not in str(settings)
    assert "relay.example" in repr(settings)


def test_the_sender_may_carry_a_display_name() -> None:
    settings = Settings(
        mail_from="Phòng PNC Better Work <pnc@betterwork.example>",
        reply_to="csr@betterwork.example",
    )
    assert settings.sender == ("Phòng PNC Better Work", "pnc@betterwork.example")
    assert settings.reply_to_mailbox == ("", "csr@betterwork.example")
    assert settings.mail_domain == "betterwork.example"
    assert Settings().sender == ("", "pnc-bot@localhost")
    assert Settings(reply_to=" ").reply_to_mailbox is None  # PNC_REPLY_TO= : none


@pytest.mark.parametrize(
    "value",
    [
        "pnc",
        "pnc@@betterwork.example",
        "a@betterwork.example, b@betterwork.example",
        "Better Work <pnc@betterwork.example> and more",
        "Phòng PNC <phòng@betterwork.example>",
        "pnc@betterwork.example\r\nBcc: x@evil.example",
    ],
)
@pytest.mark.parametrize("variable", ["PNC_MAIL_FROM", "PNC_REPLY_TO"])
def test_a_sender_that_is_not_one_address_is_refused_at_start(
    variable: str, value: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError, match=f"{variable}: .*not one email address"):
        load_settings()


NOW = datetime(2026, 11, 20, 3, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("7", 7.0),
        ("2.5", 2.5),
        ("Fri, 20 Nov 2026 03:00:42 GMT", 42.0),  # an HTTP date
        ("0", 1.0),  # at least a second: never a busy loop
        ("Fri, 20 Nov 2026 02:00:00 GMT", 1.0),  # a date in the past
        ("86400", 3600.0),  # at most an hour
        (None, 30.0),
        ("soon", 30.0),
        ("nan", 30.0),
    ],
)
def test_slack_retry_after_is_read_as_seconds_or_a_date_within_bounds(
    header: str | None, seconds: float
) -> None:
    assert retry_after(header, NOW) == seconds
