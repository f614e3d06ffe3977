"""How notices leave: SMTP (aiosmtplib), ``.eml`` files (the embedded default) and Slack.

A transport delivers a batch and says, per message, what happened (``Result``). When the whole
channel cannot deliver — the SMTP server is unreachable, the credentials or TLS settings are
wrong, the Slack token is revoked — it raises ``ChannelDown`` instead, and the dispatcher pauses
the channel without counting an attempt against any message.
"""

from __future__ import annotations

import asyncio
import math
import re
import ssl
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import Message
from email.policy import SMTP as SMTP_POLICY
from email.utils import parsedate_to_datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol

import aiohttp
import aiosmtplib
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.settings import mailbox
from bot.smtp_url import SmtpSettings
from bot.vocabulary import Channel
from store.outbox import Claimed


class Outcome(StrEnum):
    SENT = "sent"
    #: try again later (backoff); counts as an attempt
    RETRY = "retry"
    #: will never succeed: dead letter
    DEAD = "dead"
    #: asked to wait (Slack 429): try again after ``retry_after``, not counted as an attempt
    WAIT = "wait"


@dataclass(frozen=True)
class Result:
    outcome: Outcome
    reply: str | None = None
    error: str | None = None
    retry_after: float | None = None
    #: addresses that accepted the message when others refused it
    accepted: tuple[str, ...] = ()


class ChannelDown(Exception):
    """The channel cannot deliver anything now; ``config`` when a person must fix settings."""

    def __init__(self, reason: str, *, config: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.config = config


#: called with a message's index in the batch and its outcome, as soon as it is known
Done = Callable[[int, Result], Awaitable[None]]
#: claimed notices, each with its message (an email, or a Slack message's arguments)
Batch = Sequence[tuple[Claimed, Any]]


class Transport(Protocol):
    @property
    def channel(self) -> str:
        """The ``bot.vocabulary.Channel`` it delivers."""
        ...

    async def send(self, batch: Batch, done: Done) -> None:
        """Deliver the batch, reporting each message through ``done`` as it completes (so a
        crash leaves at most the messages in flight unrecorded); raise ``ChannelDown`` when the
        channel cannot deliver at all."""

    async def close(self) -> None: ...


# --- files -------------------------------------------------------------------------------------


class FileTransport:
    """Writes each email as ``<message id>.eml`` (and its HTML part alongside) in a folder."""

    channel = Channel.EMAIL

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)

    async def send(self, batch: Batch, done: Done) -> None:
        try:
            await asyncio.to_thread(self.folder.mkdir, parents=True, exist_ok=True)
        except OSError as exc:
            raise ChannelDown(
                f"cannot write to {self.folder}: {exc.strerror}", config=True
            ) from exc
        for i, (row, message) in enumerate(batch):
            if not row.taken_over:
                await done(i, await asyncio.to_thread(self._write, row, message))

    def _write(self, row: Claimed, message: Message) -> Result:
        stem = self.folder / _file_stem(row)
        try:
            stem.with_suffix(".eml").write_bytes(message.as_bytes(policy=SMTP_POLICY))
            html = next((p for p in message.walk() if p.get_content_type() == "text/html"), None)
            if html is not None:
                data = html.get_payload(decode=True)
                assert isinstance(data, bytes)  # a leaf part, decoded from its transfer encoding
                content = data.decode(html.get_content_charset("utf-8"))
                stem.with_suffix(".html").write_text(content, encoding="utf-8")
        except OSError as exc:
            return Result(Outcome.RETRY, error=f"cannot write {stem}: {exc.strerror}")
        return Result(Outcome.SENT, reply=f"file:{stem.with_suffix('.eml')}")

    async def close(self) -> None:
        return None


def _file_stem(row: Claimed) -> str:
    """A readable, stable file name: the same notice always lands in the same file."""
    who = re.sub(
        r"[^A-Za-z0-9._-]+",
        "-",
        f"{row.factory_id or 'pnc'}-{row.kind}-{row.recipient_type}-{row.recipient_id}",
    )
    digest = re.sub(r"[^A-Za-z0-9]", "", row.message_id)[3:15]
    return f"{who}-{digest}"


# --- SMTP --------------------------------------------------------------------------------------


class SmtpTransport:
    """Sends over a small pool of reused SMTP connections (one transaction at a time each)."""

    channel = Channel.EMAIL

    def __init__(self, settings: SmtpSettings, *, connections: int = 2) -> None:
        self.settings = settings
        self._clients: list[aiosmtplib.SMTP | None] = [None] * max(1, connections)

    async def send(self, batch: Batch, done: Done) -> None:
        """One lane per connection. When a lane fails (the channel is down, or anything else),
        the others finish — and report — the message in hand and take no more; then the
        failure is raised. So nothing is still being sent when the dispatcher gives the rest of
        the batch back."""
        lanes = [list(range(i, len(batch), len(self._clients))) for i in range(len(self._clients))]
        failed = False

        async def lane(number: int, indexes: list[int]) -> None:
            nonlocal failed
            try:
                for i in indexes:
                    if failed:
                        return
                    row, message = batch[i]
                    if not row.taken_over:
                        await done(i, await self._send_one(number, row, message))
            except BaseException:
                failed = True
                raise

        outcomes = await asyncio.gather(
            *(lane(n, ix) for n, ix in enumerate(lanes) if ix), return_exceptions=True
        )
        errors = [e for e in outcomes if isinstance(e, BaseException)]
        if errors:  # anything unexpected first: a ChannelDown only when that is all there is
            raise next((e for e in errors if not isinstance(e, ChannelDown)), errors[0])

    async def _client(self, number: int) -> aiosmtplib.SMTP:
        client = self._clients[number]
        if client is not None and client.is_connected:
            return client
        s = self.settings
        client = aiosmtplib.SMTP(
            hostname=s.hostname,
            port=s.port,
            username=s.username,
            password=s.password,
            use_tls=s.use_tls,
            start_tls=s.start_tls,
            timeout=s.timeout,
            cert_bundle=s.cafile,
        )
        try:
            await client.connect()
        except aiosmtplib.SMTPAuthenticationError as exc:
            raise ChannelDown(f"SMTP login refused: {exc.code} {exc.message}", config=True) from exc
        except (ssl.SSLError, aiosmtplib.SMTPNotSupported) as exc:
            raise ChannelDown(f"SMTP TLS failed: {exc}", config=True) from exc
        except (aiosmtplib.SMTPConnectError, aiosmtplib.SMTPTimeoutError, OSError) as exc:
            if _tls_failure(exc):  # e.g. SMTPS to a relay whose certificate is not trusted
                raise ChannelDown(f"SMTP TLS failed: {_brief(exc)}", config=True) from exc
            raise ChannelDown(f"SMTP server unreachable: {_brief(exc)}") from exc
        except aiosmtplib.SMTPResponseException as exc:
            raise ChannelDown(f"SMTP server refused the session: {exc.code} {exc.message}") from exc
        except aiosmtplib.SMTPException as exc:  # exactly that: STARTTLS asked, not offered
            if not (type(exc) is aiosmtplib.SMTPException and "STARTTLS" in str(exc)):
                raise  # e.g. the connection lost: transient
            raise ChannelDown(
                f"SMTP TLS failed: {s.hostname}:{s.port} offers no STARTTLS. Fix PNC_SMTP_URL: use "
                "smtps:// (port 465) or port 587; drop ?starttls=true only to send unencrypted.",
                config=True,
            ) from exc
        self._clients[number] = client
        return client

    async def _send_one(self, number: int, row: Claimed, message: Message) -> Result:
        try:
            return await self._transaction(number, row, message)
        except aiosmtplib.SMTPServerDisconnected:  # closed by the server while idle: reopen once
            self._clients[number] = None
        try:
            return await self._transaction(number, row, message)
        except aiosmtplib.SMTPServerDisconnected as exc:
            self._clients[number] = None
            return Result(Outcome.RETRY, error=f"connection lost: {_brief(exc)}")

    async def _transaction(self, number: int, row: Claimed, message: Message) -> Result:
        """One message over lane ``number``'s connection; a lost connection is raised."""
        client = await self._client(number)
        try:
            refused, reply = await client.send_message(
                message, sender=_envelope_sender(message), recipients=list(row.addresses)
            )
        except aiosmtplib.SMTPServerDisconnected:
            raise
        except aiosmtplib.SMTPRecipientsRefused as exc:
            codes = [r.code for r in exc.recipients]
            text = "; ".join(f"{r.recipient}: {r.code} {r.message}" for r in exc.recipients)
            permanent = all(500 <= c < 600 for c in codes)
            return Result(Outcome.DEAD if permanent else Outcome.RETRY, error=text)
        except aiosmtplib.SMTPTimeoutError as exc:
            # the outcome is unknown (e.g. after the final "."): retrying may duplicate the
            # message, but its Message-ID is the same, so receivers can tell
            self._clients[number] = None
            return Result(Outcome.RETRY, error=f"timed out: {_brief(exc)}")
        except aiosmtplib.SMTPResponseException as exc:
            outcome = Outcome.DEAD if 500 <= exc.code < 600 else Outcome.RETRY
            await _reset(client)
            return Result(outcome, error=f"{exc.code} {exc.message}")
        except aiosmtplib.SMTPException as exc:
            self._clients[number] = None
            return Result(Outcome.RETRY, error=_brief(exc))
        if refused:  # some recipients took it, others did not
            accepted = tuple(a for a in row.addresses if a not in refused)
            text = "; ".join(f"{a}: {r.code} {r.message}" for a, r in refused.items())
            permanent = all(500 <= r.code < 600 for r in refused.values())
            return Result(
                Outcome.DEAD if permanent else Outcome.RETRY,
                reply=reply,
                error=text,
                accepted=accepted,
            )
        return Result(Outcome.SENT, reply=reply)

    async def close(self) -> None:
        for i, client in enumerate(self._clients):
            if client is not None and client.is_connected:
                try:
                    await asyncio.wait_for(client.quit(), 5)
                except Exception:
                    client.close()
            self._clients[i] = None


async def _reset(client: aiosmtplib.SMTP) -> None:
    """After a refused transaction, RSET so the connection can carry the next one."""
    try:
        await client.rset()
    except Exception:
        client.close()


def _tls_failure(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLError) or "CERTIFICATE_VERIFY_FAILED" in str(seen):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _envelope_sender(message: Message) -> str:
    return mailbox(str(message["From"] or ""))[1]


def _brief(exc: BaseException) -> str:
    return (str(exc) or type(exc).__name__)[:300]


# --- Slack -------------------------------------------------------------------------------------


#: Slack errors that no retry will fix for this message
_SLACK_PERMANENT = {
    "channel_not_found",
    "is_archived",
    "msg_too_long",
    "no_text",
    "invalid_blocks",
    "too_many_attachments",
    "restricted_action",
    "cannot_reply_to_message",
}
#: Slack errors a person must fix (the token or the app's access): pause the channel
_SLACK_CONFIG = {
    "not_authed",
    "invalid_auth",
    "account_inactive",
    "token_revoked",
    "token_expired",
    "no_permission",
    "missing_scope",
    "not_in_channel",
    "org_login_required",
    "team_access_not_granted",
}


#: the longest a Slack ``Retry-After`` is honoured, and the wait when it says nothing usable
RETRY_AFTER_MAX = 3600.0
RETRY_AFTER_DEFAULT = 30.0


def retry_after(value: str | None, now: datetime | None = None) -> float:
    """Seconds to wait from a ``Retry-After`` header: a number of seconds or an HTTP date,
    between 1 s and an hour; 30 s when it is missing or unreadable."""
    text = (value or "").strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return RETRY_AFTER_DEFAULT
        if when.tzinfo is None:  # "-0000": UTC
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    if not math.isfinite(seconds):
        return RETRY_AFTER_DEFAULT
    return min(RETRY_AFTER_MAX, max(1.0, seconds))


class SlackTransport:
    """Posts staff alerts with ``chat.postMessage``; the message ``ts`` is the provider's reply."""

    channel = Channel.SLACK

    def __init__(self, client: AsyncWebClient) -> None:
        self.client = client

    async def send(self, batch: Batch, done: Done) -> None:
        for i, (row, message) in enumerate(batch):
            if row.taken_over:
                continue
            try:
                response = await self.client.chat_postMessage(
                    channel=row.addresses[0],
                    text=message["text"],
                    blocks=message["blocks"],
                    unfurl_links=False,
                    unfurl_media=False,
                )
            except SlackApiError as exc:
                status = exc.response.status_code
                error = str(exc.response.get("error", "")) if exc.response.data else ""
                if status == 429 or error == "ratelimited":
                    # this post and the rest of the batch wait: posting on would only be
                    # refused again
                    wait = retry_after(exc.response.headers.get("Retry-After"))
                    waiting = Result(Outcome.WAIT, error="rate limited", retry_after=wait)
                    for j in range(i, len(batch)):
                        if not batch[j][0].taken_over:
                            await done(j, waiting)
                    return
                elif error in _SLACK_CONFIG:
                    raise ChannelDown(f"Slack refused: {error}", config=True) from exc
                elif error in _SLACK_PERMANENT:
                    await done(i, Result(Outcome.DEAD, error=f"Slack: {error}"))
                else:
                    await done(i, Result(Outcome.RETRY, error=f"Slack: {status} {error}".strip()))
                continue
            except (TimeoutError, OSError) as exc:  # no connection, or no answer in time
                raise ChannelDown(f"Slack unreachable: {_brief(exc)}") from exc
            except aiohttp.ClientError as exc:  # e.g. the connection dropped mid-answer
                await done(i, Result(Outcome.RETRY, error=f"Slack: {_brief(exc)}"))
                continue
            await done(i, Result(Outcome.SENT, reply=f"ts:{response.get('ts')}"))

    async def close(self) -> None:
        return None
