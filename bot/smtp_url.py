"""``PNC_SMTP_URL`` read into the settings of the SMTP transport: one clear ``ConfigError`` for
any URL that cannot be read, which never quotes the URL (its password may be in it)."""

from __future__ import annotations

import re
import urllib.parse
from dataclasses import dataclass, field

from bot.errors import ConfigError


@dataclass(frozen=True)
class SmtpSettings:
    hostname: str
    port: int
    username: str | None
    password: str | None = field(repr=False)
    use_tls: bool
    start_tls: bool | None
    timeout: float
    #: CA certificates to trust (a relay with a private CA); None: the system's
    cafile: str | None = None

    @classmethod
    def from_url(cls, url: str) -> SmtpSettings:
        """``smtp[s]://[user:pass@]host:port[?starttls=true&timeout=…&cafile=…]``. Options
        other than these three are refused: a typo (``startls``) must not quietly send a login
        unencrypted."""
        try:
            parts = urllib.parse.urlsplit(url)
            hostname, port = parts.hostname, parts.port
        except ValueError:  # an unclosed "[", a port out of range
            raise _unreadable("its host or port is malformed") from None
        if parts.scheme not in ("smtp", "smtps") or not hostname:
            raise _unreadable("it must start with smtp:// or smtps:// and name the server")
        query = urllib.parse.parse_qs(parts.query, keep_blank_values=True)
        choice = (query.get("starttls") or [""])[0].strip().lower()  # unsaid: if offered
        starttls = None if not choice else choice in ("true", "1", "yes")
        timeout, use_tls = (query.get("timeout") or ["30"])[0], parts.scheme == "smtps"
        if set(query) - {"starttls", "timeout", "cafile"}:  # a typo, or a password's tail
            raise _unreadable("it has an option other than starttls, timeout and cafile")
        if choice not in ("", "true", "1", "yes", "false", "0", "no") or (use_tls and starttls):
            raise _unreadable("starttls must be true or false, and not true with smtps://")
        if not re.fullmatch(r"[0-9]+(\.[0-9]*)?", timeout) or float(timeout) <= 0:
            raise _unreadable("its timeout is not a positive number of seconds")
        return cls(
            hostname=hostname,
            port=port or (465 if use_tls else 25),
            username=urllib.parse.unquote(parts.username) if parts.username else None,
            password=urllib.parse.unquote(parts.password) if parts.password else None,
            use_tls=use_tls,
            start_tls=starttls,
            timeout=float(timeout),
            cafile=query["cafile"][0] if query.get("cafile") else None,
        )


def _unreadable(problem: str) -> ConfigError:
    return ConfigError(
        f"PNC_SMTP_URL cannot be read: {problem}.",
        "Write smtp[s]://[user:pass@]host[:port][?starttls=true&timeout=<s>&cafile=<path>] ([::1] "
        "for an IPv6 host; %40 for @, and %-codes for : / ? # in a password), or unset it.",
    )
