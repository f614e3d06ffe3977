"""Masking secrets wherever the bot shows a URL or writes a log line (``bot.redaction``): the
database URL in messages and ``repr``, and the one logging filter on the root handler."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from urllib.parse import quote, urlencode

import pytest
import typer

from bot import cli_run, redaction
from bot.settings import Settings
from store.db import Database

SECRET_PARAMETERS = [
    "password",
    "PASSWORD",
    "sslpassword",
    "passwd",
    "pwd",
    "client_secret",
    "token",
    "access_token",
    "sslkey",
    "api_key",
    "ticket",
]


@pytest.mark.parametrize("name", SECRET_PARAMETERS)
def test_url_masks_secret_looking_query_parameters(name: str) -> None:
    shown = redaction.url(f"postgresql+asyncpg://pnc@db:5432/pnc?sslmode=x&{name}=hunter2&a=b")
    assert "hunter2" not in shown
    assert shown == f"postgresql+asyncpg://pnc@db:5432/pnc?sslmode=x&{name}=***&a=b"


@pytest.mark.parametrize(
    ("given", "shown"),
    [
        ("postgresql+asyncpg://pnc:hunter2@db/pnc", "postgresql+asyncpg://pnc:***@db/pnc"),
        ("smtp://mailer:hun%40ter2@smtp.example:587", "smtp://mailer:***@smtp.example:587"),
        ("smtp://mailer:hun@ter2@smtp.example:587", "smtp://mailer:***@smtp.example:587"),
        ("postgresql+asyncpg://:hunter2@db/pnc", "postgresql+asyncpg://:***@db/pnc"),
        ("sqlite+aiosqlite:///var/pnc.db", "sqlite+aiosqlite:///var/pnc.db"),
        ("postgresql+asyncpg://pnc@db/pnc?application_name=x", None),
    ],
)
def test_url_masks_the_password_of_the_userinfo(given: str, shown: str | None) -> None:
    assert redaction.url(given) == (shown or given)


def test_url_secrets_are_the_password_and_the_secret_query_values() -> None:
    found = redaction.url_secrets("postgresql+asyncpg://u:p%40ss1@h/d?password=hunter2&x=open")
    assert set(found) == {"p@ss1", "p%40ss1", "hunter2"}
    assert redaction.url_secrets("not a url") == []


def test_database_url_redacted_masks_a_password_in_the_query() -> None:
    s = Settings(database_url="postgresql+asyncpg://pnc@db.internal:5432/pnc?password=hunter2")
    assert s.database_url_redacted == "postgresql+asyncpg://pnc@db.internal:5432/pnc?password=***"


def test_database_repr_masks_a_password_in_the_query() -> None:
    db = Database("postgresql+asyncpg://pnc:one@db.internal:5432/pnc?password=hunter2&ssl=x")
    assert "hunter2" not in repr(db) and "one" not in repr(db)
    assert (
        repr(db)
        == "Database('postgresql+asyncpg://pnc:***@db.internal:5432/pnc?password=***&ssl=x')"
    )


def test_settings_list_their_secrets() -> None:
    s = Settings(
        database_url="postgresql+asyncpg://pnc:db-pw@db/pnc?password=db-query-pw",
        smtp_url="smtp://mailer:smtp-pw@smtp.example:587",
        slack_bot_token="xoxb-1",
        slack_app_token="xapp-1",
        slack_signing_secret="signing",
    )
    assert set(s.secrets) >= {"db-pw", "db-query-pw", "smtp-pw", "xoxb-1", "xapp-1", "signing"}
    assert Settings().secrets == ()


# --- free text --------------------------------------------------------------------------------

RESPONSE_URL = "https://hooks.slack.com/commands/T0TEST/1234/AbCdEf"


@pytest.mark.parametrize(
    ("given", "shown"),
    [
        ("token: xoxb-123-456-abc", "token: xoxb-***"),
        ("xoxp-1-2 and xapp-1-A0-99-ff", "xoxp-*** and xapp-***"),
        ("refresh xoxe.xoxp-1-abc", "refresh xoxe.xoxp-***"),
        (f"url: {RESPONSE_URL}, body", "url: https://hooks.slack.com/***, body"),
        (
            f"body: {urlencode({'text': 'help', 'response_url': RESPONSE_URL})}",
            "body: text=help&response_url=***",
        ),
        (
            '{"response_url": "http://127.0.0.1:9/respond/1", "x": 1}',
            '{"response_url": "***", "x": 1}',
        ),
        ("{'response_url': 'http://127.0.0.1:9/respond/1'}", "{'response_url': '***'}"),
        (
            'data: \'{\\"response_url\\":\\"http://127.0.0.1:9/respond/1\\"}\'',
            'data: \'{\\"response_url\\":\\"***\\"}\'',
        ),
        (
            "payload=" + quote('{"response_url": "http://127.0.0.1:9/respond/1", "a": 1}'),
            "payload=" + quote('{"response_url": "') + "***" + quote('", "a": 1}'),
        ),
        ("'password': 'hunter2', 'user': 'pnc'", "'password': '***', 'user': 'pnc'"),
        ('{"client_secret": "hunter2"}', '{"client_secret": "***"}'),
        ("dsn host=db password=hunter2 user=pnc", "dsn host=db password=*** user=pnc"),
        ("connect to smtp://m:hunter2@smtp:25 failed", "connect to smtp://m:***@smtp:25 failed"),
        ("nothing secret here: https://slack.com/api/chat.postMessage", None),
    ],
)
def test_text_masks_tokens_response_urls_and_passwords(given: str, shown: str | None) -> None:
    assert redaction.text(given) == (shown or given)


def test_text_masks_the_secrets_given_also_percent_encoded() -> None:
    secrets = ["S3CRET/pw", "xy"]  # too short to mask everywhere: its structural forms only
    assert redaction.text("a S3CRET/pw b S3CRET%2Fpw c xy", secrets) == "a *** b *** c xy"


def test_text_can_mask_every_url() -> None:
    """What slack_sdk's webhook client posts to is always a credential (a response URL or an
    incoming webhook), whatever its host."""
    line = "Sending a request - url: http://127.0.0.1:9/respond/1?x=1, body: {}"
    assert redaction.text(line, all_urls=True) == (
        "Sending a request - url: http://127.0.0.1:9/***, body: {}"
    )


# --- the logging filter -------------------------------------------------------------------------


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    """A handler like the CLI's on a fresh logger tree, with the filter on the handler."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    redaction.install(handler, ["hunter2-signing"])
    redaction.install(handler, ["hunter2-smtp"])  # idempotent: one filter, both secrets
    root = logging.getLogger("redaction-test")
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    yield stream
    root.removeHandler(handler)
    assert sum(isinstance(f, redaction.Redactor) for f in handler.filters) == 1


def test_the_filter_masks_records_of_child_loggers_args_included(captured: io.StringIO) -> None:
    child = logging.getLogger("redaction-test.slack_sdk.web")
    child.debug("params: %s, json: %r", {"token": "xoxb-1-2"}, {"response_url": RESPONSE_URL})
    child.info("signing %s, smtp %s", "hunter2-signing", "hunter2-smtp")
    out = captured.getvalue()
    assert "xoxb-1-2" not in out and "AbCdEf" not in out and "hunter2" not in out, out
    assert "'token': '***'" in out and "'response_url': '***'" in out and "signing ***" in out


def test_the_filter_masks_tracebacks(captured: io.StringIO) -> None:
    log = logging.getLogger("redaction-test.child")
    try:
        raise ConnectionError(f"cannot reach postgresql://pnc:hunter2@db/pnc for {RESPONSE_URL}")
    except ConnectionError:
        log.exception("failed with %s", "hunter2-smtp")
    log.warning("where", stack_info=True, extra={"x": "hunter2-signing"})
    out = captured.getvalue()
    assert "Traceback" in out and "ConnectionError" in out
    assert "hunter2" not in out and "AbCdEf" not in out, out
    assert "postgresql://pnc:***@db/pnc" in out


def test_the_filter_masks_every_url_of_slack_sdks_webhook_client(captured: io.StringIO) -> None:
    (handler,) = logging.getLogger("redaction-test").handlers
    webhook = logging.getLogger("slack_sdk.webhook.async_client")
    webhook.addHandler(handler)
    try:
        webhook.warning("Sending a request - url: %s, body: {}", "http://127.0.0.1:9/respond/7")
    finally:
        webhook.removeHandler(handler)
    assert "url: http://127.0.0.1:9/***, body: {}" in captured.getvalue()


# --- the command line's database error ----------------------------------------------------------


def test_the_clis_database_error_scrubs_the_drivers_text(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The URL is shown masked, and so is whatever of it (or of its password) the driver's
    error repeats."""
    monkeypatch.setenv(
        "PNC_DATABASE_URL", "postgresql+asyncpg://pnc:hunter2-a@db/pnc?password=hunter2%2Db"
    )

    async def work() -> None:
        raise OSError("no route to postgresql://pnc:hunter2-a@db/pnc (hunter2-b, hunter2%2Db)")

    with pytest.raises(typer.Exit):
        cli_run.run(work)
    err = capsys.readouterr().err
    assert "hunter2" not in err, err
    assert err == (
        "error: cannot use the database postgresql+asyncpg://pnc:***@db/pnc?password=***: "
        "OSError: no route to postgresql://pnc:***@db/pnc (***, ***)\n"
    )


@pytest.mark.parametrize(
    "line",
    [
        "PRAGMA foreign_keys=ON",
        "passfile=/etc/pgpass keyfile=x.pem token_type=bearer",
        "{'keys': ['a'], 'tokens_left': 3}",
    ],
)
def test_text_leaves_parameters_that_only_look_alike(line: str) -> None:
    assert redaction.text(line) == line
