"""The log's format — plain lines (the default) or one JSON object a line for log shippers
(``--log-format json``, ``PNC_LOG_FORMAT``) — and what a request tells every line logged while
it is served: its id, the person, the subcommand and the factory.

The request's fields are context variables: set by the server and the access middleware, they
follow the request into the tasks it starts (Bolt's listeners) and nowhere else. Secrets are
masked in both formats by the one ``bot.redaction.Redactor`` on the handler; the JSON format
masks the request's fields with it too.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
from collections.abc import Iterable
from contextvars import ContextVar
from datetime import UTC, datetime
from enum import StrEnum

from bot import redaction

#: the plain format, as it has always been
PLAIN = "%(levelname)s %(name)s: %(message)s"
#: the key of the Bolt context carrying the id the server gave a request
REQUEST_ID = "pnc_request_id"
#: a request id taken from the load balancer (``X-Request-Id``) when it looks like one
_GIVEN_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")


class LogFormat(StrEnum):
    plain = "plain"
    json = "json"


#: the fields a request gives its log lines, in the order JSON shows them
FIELDS = ("request_id", "user", "subcommand", "factory")
_CONTEXT: dict[str, ContextVar[str | None]] = {
    name: ContextVar(f"pnc_log_{name}", default=None) for name in FIELDS
}
#: the format in use (``use``)
_in_use = LogFormat.plain


def new_request(request_id: str | None = None) -> str:
    """Start a request's fields: the id given (if it looks like one) or a new one; the other
    fields are cleared. Returns the id."""
    if request_id is None or not _GIVEN_ID.fullmatch(request_id):
        request_id = secrets.token_hex(8)
    _CONTEXT["request_id"].set(request_id)
    for name in FIELDS[1:]:
        _CONTEXT[name].set(None)
    return request_id


def bind(
    *, user: str | None = None, subcommand: str | None = None, factory: str | None = None
) -> None:
    """Add what is known about the request being served (``None`` leaves a field as it is)."""
    for name, value in (("user", user), ("subcommand", subcommand), ("factory", factory)):
        if value is not None:
            _CONTEXT[name].set(str(value)[:100])


def request_fields() -> dict[str, str]:
    """The fields set for the request being served."""
    return {name: value for name in FIELDS if (value := _CONTEXT[name].get()) is not None}


class JsonFormatter(logging.Formatter):
    """One JSON object a line: ``time`` (UTC, ISO 8601), ``level``, ``logger``, ``message``,
    the request's fields where known, and ``exception`` (the traceback) when there is one."""

    def __init__(self, redactor: redaction.Redactor | None = None) -> None:
        super().__init__()
        self.redactor = redactor

    def format(self, record: logging.LogRecord) -> str:
        when = datetime.fromtimestamp(record.created, UTC)
        line: dict[str, str] = {
            "time": when.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        secrets_ = self.redactor.secrets if self.redactor is not None else ()
        for name, value in request_fields().items():
            line[name] = redaction.text(value, secrets_)
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line["exception"] = record.exc_text
        if record.stack_info:
            line["stack"] = record.stack_info
        return json.dumps(line, ensure_ascii=False)


def use(format: LogFormat, secrets: Iterable[str] = ()) -> None:
    """Write the root logger's records in ``format``, every secret masked (the ``Redactor``
    on each handler, installed once). With JSON, Python's warnings become log records too, so
    that every line is an object."""
    global _in_use
    _in_use, secrets = format, tuple(secrets)
    for handler in logging.getLogger().handlers:
        redactor = redaction.install(handler, secrets)
        if format == LogFormat.json:
            handler.setFormatter(JsonFormatter(redactor))
        else:
            handler.setFormatter(logging.Formatter(PLAIN))
    logging.captureWarnings(format == LogFormat.json)
    # Alembic, imported only when needed, says at info which of its plugins it set up
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)


def in_use() -> LogFormat:
    """The format the log is written in."""
    return _in_use
