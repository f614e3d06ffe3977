"""The one ``Settings`` object: every environment variable of SPEC §4."""

from __future__ import annotations

import re
from email.utils import getaddresses, parseaddr
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from sqlalchemy.engine import URL, make_url

from bot import redaction, validation
from bot.errors import ConfigError, PncError
from bot.logs import LogFormat

SLACK_API_URL = "https://slack.com/api/"

#: an address the SMTP envelope can carry: ASCII, one "@", no spaces or brackets
_ADDRESS = re.compile(r"[!-~]+@[!-~]+")


def member_id(entry: str) -> str:
    """A Slack member id given by the configuration, written as the id (``U0123ABCD``) or a
    mention (``<@U0123ABCD|name>``); anything else is a ``ValueError`` naming the entry."""
    try:
        return validation.slack_user(entry)
    except PncError:
        raise ValueError(
            f"{validation.shown(entry.strip(), 40)!r} is not a Slack member id: write ids like "
            "U0123ABCD (a person's profile in Slack, ⋮, Copy member ID) or mentions like "
            "<@U0123ABCD>."
        ) from None


#: a Slack member id, normalised from an id or a mention
MemberId = Annotated[str, AfterValidator(member_id)]


class Settings(BaseSettings):
    """Read from the environment; tests pass values by field name."""

    model_config = SettingsConfigDict(
        env_file=None, extra="ignore", populate_by_name=True, frozen=True
    )

    database_url: SecretStr = Field(
        SecretStr("sqlite+aiosqlite:///var/pnc.db"), validation_alias="PNC_DATABASE_URL"
    )
    slack_bot_token: SecretStr | None = Field(None, validation_alias="SLACK_BOT_TOKEN")
    slack_signing_secret: SecretStr | None = Field(None, validation_alias="SLACK_SIGNING_SECRET")
    slack_app_token: SecretStr | None = Field(None, validation_alias="SLACK_APP_TOKEN")
    slack_api_url: str = Field(SLACK_API_URL, validation_alias="PNC_SLACK_API_URL")
    staff_channel: str | None = Field(None, validation_alias="PNC_STAFF_CHANNEL")
    smtp_url: SecretStr | None = Field(None, validation_alias="PNC_SMTP_URL")
    outbox_dir: Path = Field(Path("var/outbox"), validation_alias="PNC_OUTBOX_DIR")
    mail_from: str = Field("pnc-bot@localhost", validation_alias="PNC_MAIL_FROM")
    reply_to: str | None = Field(None, validation_alias="PNC_REPLY_TO")
    inspectorate_email: str | None = Field(None, validation_alias="PNC_INSPECTORATE_EMAIL")
    admins: Annotated[tuple[MemberId, ...], NoDecode] = Field((), validation_alias="PNC_ADMINS")
    timezone: str = Field("Asia/Ho_Chi_Minh", validation_alias="PNC_TIMEZONE")
    call_reminder_days: int = Field(3, ge=0, le=60, validation_alias="PNC_CALL_REMINDER_DAYS")
    readmission_reminder_days: int = Field(
        7, ge=1, le=90, validation_alias="PNC_READMISSION_REMINDER_DAYS"
    )
    config_path: Path | None = Field(None, validation_alias="PNC_CONFIG")
    #: how long a dispatcher holds a notice it is delivering; after that (a crashed replica)
    #: another one takes it over
    delivery_lease_seconds: int = Field(
        120, ge=5, le=3600, validation_alias="PNC_DELIVERY_LEASE_SECONDS"
    )
    #: plain lines, or one JSON object a line for log shippers (``--log-format`` overrides it)
    log_format: LogFormat = Field(LogFormat.plain, validation_alias="PNC_LOG_FORMAT")

    @field_validator("admins", mode="before")
    @classmethod
    def _split_admins(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(v.strip() for v in value.split(",") if v.strip())
        return value

    @field_validator("mail_from", "reply_to")
    @classmethod
    def _one_mailbox(cls, value: str | None, info: ValidationInfo) -> str | None:
        """One address, optionally with a display name; parsed again by ``sender``."""
        value = (value or "").strip()
        if not value and info.field_name == "reply_to":
            return None
        found = getaddresses([value])
        address = parseaddr(value)[1]
        if (
            len(found) != 1
            or "\r" in value
            or "\n" in value
            or not _ADDRESS.fullmatch(address)
            or address.count("@") != 1
            or any(c in address for c in '<>(),;:"[]\\')
        ):
            raise ValueError(
                f"{value[:100]!r} is not one email address: use pnc@example.org or "
                "Better Work PNC <pnc@example.org>"
            )
        try:  # the display name reaches every email's From or Reply-To
            validation.visible(value, "address")
        except PncError as exc:
            raise ValueError(exc.render()) from None
        return value

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r} (try Asia/Ho_Chi_Minh)") from exc
        return value

    @field_validator("database_url")
    @classmethod
    def _async_driver(cls, value: SecretStr) -> SecretStr:
        url = value.get_secret_value()
        try:
            parsed = make_url(url)
        except Exception as exc:
            raise ValueError("not a database URL (e.g. sqlite+aiosqlite:///var/pnc.db)") from exc
        if parsed.drivername not in ("sqlite+aiosqlite", "postgresql+asyncpg"):
            raise ValueError(
                f"driver {parsed.drivername!r} is not supported: use sqlite+aiosqlite:///… or "
                "postgresql+asyncpg://…"
            )
        if parsed.drivername == "postgresql+asyncpg" and parsed.query:
            return SecretStr(_asyncpg_url(url, parsed))
        return value

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def sender(self) -> tuple[str, str]:
        """``PNC_MAIL_FROM`` as (display name, address); the name may be empty."""
        return mailbox(self.mail_from)

    @property
    def reply_to_mailbox(self) -> tuple[str, str] | None:
        """``PNC_REPLY_TO`` as (display name, address), when set."""
        return mailbox(self.reply_to) if self.reply_to else None

    @property
    def mail_domain(self) -> str:
        """The domain of Message-IDs: the sender's address's."""
        return self.sender[1].rpartition("@")[2]

    @property
    def database_url_redacted(self) -> str:
        """The database URL with any password hidden (also one given as a query parameter),
        for logs and messages."""
        return redaction.url(
            make_url(self.database_url.get_secret_value()).render_as_string(hide_password=True)
        )

    @property
    def secrets(self) -> tuple[str, ...]:
        """Every secret value set: the Slack tokens and signing secret, and the passwords (and
        other secret-looking parameters) in the database and SMTP URLs; logs mask them."""
        found = [
            secret.get_secret_value()
            for secret in (self.slack_bot_token, self.slack_app_token, self.slack_signing_secret)
            if secret is not None
        ]
        for address in (self.database_url, self.smtp_url):
            if address is not None:
                found += redaction.url_secrets(address.get_secret_value())
        return tuple(dict.fromkeys(s for s in found if s))


#: what asyncpg takes from a PostgreSQL URL's query (SQLAlchemy hands each to ``connect``)
_ASYNCPG_OPTIONS = (
    "host",
    "port",
    "user",
    "password",
    "database",
    "passfile",
    "ssl",
    "target_session_attrs",
    "krbsrvname",
    "gsslib",
    "prepared_statement_cache_size",
)
_SSL_MODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")


def _asyncpg_url(written: str, url: URL) -> str:
    """A PostgreSQL URL's query checked for what asyncpg takes, libpq's ``sslmode`` (as the
    URLs of managed databases carry it) renamed asyncpg's ``ssl``; the rest of the URL stays as
    written (so are its secrets, which the logs mask as written). asyncpg would otherwise refuse
    an unknown option with a traceback, at the first connection. The messages name options and
    SSL modes, never a value that could be a secret."""
    query = dict(url.query)
    twice = sorted(name for name, value in query.items() if not isinstance(value, str))
    if twice:
        raise ValueError(f"{', '.join(twice)} given more than once in the URL's query")
    unknown = sorted(set(query) - {*_ASYNCPG_OPTIONS, "sslmode"})
    if unknown:
        raise ValueError(
            f"the URL's query has {', '.join(unknown)}, which asyncpg does not take; it takes "
            f"{', '.join(_ASYNCPG_OPTIONS)} (and sslmode, read as ssl)"
        )
    if "sslmode" in query:
        if "ssl" in query:
            raise ValueError("the URL's query gives both ssl and sslmode: keep one")
        query["ssl"] = query.pop("sslmode")
        base, _, options = written.partition("?")
        renamed = [
            "ssl" + part[len("sslmode") :] if part.split("=", 1)[0] == "sslmode" else part
            for part in options.split("&")
        ]
        written = f"{base}?{'&'.join(renamed)}"
    if "ssl" in query and query["ssl"] not in _SSL_MODES:
        raise ValueError(
            f"ssl={query['ssl']!r} is not an SSL mode: use one of {', '.join(_SSL_MODES)}"
        )
    return written


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment, with a ``ConfigError`` naming each bad variable."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err["loc"]) or "settings"
            problems.append(f"{where}: {err['msg']}")
        raise ConfigError(
            "Invalid configuration: " + "; ".join(problems),
            "Check the environment variables listed in the README.",
        ) from None


@lru_cache(maxsize=64)
def mailbox(value: str) -> tuple[str, str]:
    """A mailbox header's (display name, address), parsed once per value (every email asks for
    the sender's)."""
    return parseaddr(value)
