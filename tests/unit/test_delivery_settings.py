"""Delivery settings as they are read and shown: the SMTP URL, the sender's address. Pure: no
I/O."""

from __future__ import annotations

from bot.transports import SmtpSettings


def test_the_smtp_password_never_appears_in_the_settings_repr() -> None:
    settings = SmtpSettings.from_url("smtp://pnc:s3cr%40t-pw@relay.example:587?starttls=true")
    assert settings.password == "s3cr@t-pw"
    assert "s3cr" not in repr(settings) and "s3cr" not in str(settings)
    assert "relay.example" in repr(settings)
