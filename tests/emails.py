"""Emails in tests: a notice's outbox row, and a built message as a mail client receives it."""

from __future__ import annotations

import email
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage, Message

from bot import notices
from store.outbox import Claimed

NOW = datetime(2026, 11, 20, 3, 0, tzinfo=UTC)


def row_for(
    notice: notices.Notice, domain: str = "betterwork.example", now: datetime = NOW
) -> Claimed:
    """The outbox row the use cases would write for ``notice``, due ``now``, as claimed."""
    return Claimed.of(notices.outbox_row(notice, now, domain))


def parsed(message: Message) -> EmailMessage:
    """The message parsed back from the bytes the transports send, as a mail client sees it."""
    result = email.message_from_bytes(message.as_bytes(policy=policy.SMTP), policy=policy.default)
    assert isinstance(result, EmailMessage)
    return result
