"""Masking secrets in whatever the bot shows: URLs (the password of the userinfo, query
parameters whose name says secret), Slack's tokens and response URLs, and known secret values.
Pure functions, and the one logging filter that applies them to every record."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from urllib.parse import quote, quote_plus, unquote_plus, urlsplit

MASK = "***"
#: a known secret shorter than this is masked only where its form gives it away (a password in
#: a URL, a ``password=`` parameter): masking two letters everywhere would garble the logs
MIN_SECRET_LENGTH = 4
#: loggers whose every URL is a credential: what slack_sdk's webhook client posts to is a
#: response URL or an incoming webhook
WEBHOOK_LOGGERS = ("slack_sdk.webhook",)

#: the name of a parameter or field whose value is a secret: one ending in a word that says
#: so (password, sslpassword, passwd, pwd, client_secret, token, sslkey, api_key, ticket…)
_SECRET_NAME = (
    r"[A-Za-z0-9_.-]*(?i:pass(?:word|wd|phrase)?|pwd|secret|token|key|ticket|credentials?)[0-9]*"
)
_SECRET_NAME_RE = re.compile(_SECRET_NAME)
#: where a value in a URL, a form or a Python/JSON literal ends (also percent-encoded: " & ')
_VALUE = r"(?:(?!%2[267])[^\s\"'\\&,;)}\]])+"
_USERINFO = re.compile(r"(\b[A-Za-z][A-Za-z0-9+.-]*://[^\s/?#:@'\"]*:)[^\s/?#'\"]+(?=@)")
_PARAMETER = re.compile(rf"(?<![A-Za-z0-9_.%-])({_SECRET_NAME}=)[^&\s'\",;#)}}\]]+")
_FIELD = re.compile(rf"(\\?[\"']{_SECRET_NAME}\\?[\"']\s*:\s*\\?[\"'])[^\"'\\]+")
_RESPONSE_URL = re.compile(rf"(response_url(?:[\s\"'\\:=+]|%(?:2[027]|3[AaDd]))+){_VALUE}")
_SLACK_HOOK = re.compile(rf"(hooks\.slack(?:-gov)?\.com(?:/|%2[Ff])){_VALUE}")
_TOKEN = re.compile(r"\b(xox[a-z](?:\.xox[a-z])?-|xapp-)[A-Za-z0-9-]+")
_ANY_URL = re.compile(r"(\b[A-Za-z][A-Za-z0-9+.-]*://[^\s/'\"]+/)[^\s\"'\\,;)}\]]+")


def is_secret_name(name: str) -> bool:
    """Whether a parameter so named holds a secret."""
    return _SECRET_NAME_RE.fullmatch(name) is not None


def url(value: str) -> str:
    """A URL to show: the userinfo's password and every secret-looking query parameter
    masked (``postgresql+asyncpg://pnc:***@db/pnc?password=***``)."""
    return _PARAMETER.sub(rf"\g<1>{MASK}", _USERINFO.sub(rf"\g<1>{MASK}", value))


def url_secrets(value: str) -> list[str]:
    """The secrets a URL carries (its password, its secret-looking query values), as written
    and decoded, to be masked wherever they turn up."""
    try:
        parts = urlsplit(value)
        password = parts.password
    except ValueError:
        return []
    found = [password] if password else []
    for name, _, written in (p.partition("=") for p in parts.query.split("&")):
        if written and is_secret_name(unquote_plus(name)):
            found.append(written)
    return list(dict.fromkeys(form for f in found for form in (unquote_plus(f), f)))


def text(value: str, secrets: Iterable[str] = (), *, all_urls: bool = False) -> str:
    """Free text (a log line, an error message) with every secret masked: the ``secrets``
    given (also percent-encoded), Slack tokens, response URLs (a ``response_url`` field in a
    form, JSON or Python literal; any ``hooks.slack.com`` URL), passwords in URLs and
    secret-looking parameters and fields. ``all_urls`` masks the path of every URL too."""
    for secret in sorted({s for s in secrets if len(s) >= MIN_SECRET_LENGTH}, key=len)[::-1]:
        for form in dict.fromkeys((secret, quote(secret, safe=""), quote_plus(secret))):
            value = value.replace(form, MASK)
    value = _RESPONSE_URL.sub(rf"\g<1>{MASK}", value)
    value = _SLACK_HOOK.sub(rf"\g<1>{MASK}", value)
    value = _TOKEN.sub(rf"\g<1>{MASK}", value)
    value = _FIELD.sub(rf"\g<1>{MASK}", value)
    if all_urls:
        value = _ANY_URL.sub(rf"\g<1>{MASK}", value)
    return url(value)


class Redactor(logging.Filter):
    """Masks secrets in a record as it is handled: the message with its arguments, the
    traceback and the stack. Put it on the handler: a logger's filters skip the records its
    children propagate."""

    _formatter = logging.Formatter()

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.secrets: tuple[str, ...] = ()
        self.add(secrets)

    def add(self, secrets: Iterable[str]) -> None:
        """Mask these values too."""
        self.secrets = tuple(dict.fromkeys([*self.secrets, *(s for s in secrets if s)]))

    def filter(self, record: logging.LogRecord) -> bool:
        every_url = record.name.startswith(WEBHOOK_LOGGERS)

        def clean(value: str) -> str:
            return text(value, self.secrets, all_urls=every_url)

        try:
            message = record.getMessage()
        except Exception:  # arguments that do not fit the message: show neither as is
            message = f"{record.msg} (its arguments did not fit and are not shown)"
        record.msg, record.args = clean(message), None
        if record.exc_info:
            record.exc_text = record.exc_text or self._formatter.formatException(record.exc_info)
            record.exc_info = None  # formatters show exc_text; none formats the original again
        if record.exc_text:
            record.exc_text = clean(record.exc_text)
        if record.stack_info:
            record.stack_info = clean(record.stack_info)
        return True


def install(handler: logging.Handler, secrets: Iterable[str] = ()) -> Redactor:
    """Put the ``Redactor`` on a handler (once), masking ``secrets`` too."""
    for existing in handler.filters:
        if isinstance(existing, Redactor):
            existing.add(secrets)
            return existing
    redactor = Redactor(secrets)
    handler.addFilter(redactor)
    return redactor
