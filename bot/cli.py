"""The ``pnc-bot`` command line (SPEC §4). Typer does not await coroutines: each command wraps
its work in ``asyncio.run``. Refusals print one clear message on stderr and exit with 1."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from collections.abc import Awaitable, Callable, Coroutine
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from sqlalchemy.exc import DBAPIError, OperationalError

from bot import redaction
from bot.bootstrap import Bot, bootstrap
from bot.countries import load_config
from bot.errors import ConfigError, PncError
from bot.render import render_text
from bot.roles import operator
from bot.settings import load_settings
from bot.usecases import imports, outbox_admin, reading, rules
from store import migrate

T = TypeVar("T")
log = logging.getLogger("pnc-bot")

app = typer.Typer(
    name="pnc-bot",
    help="Better Work persistent non-compliance (PNC) bot.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
app.add_typer(db_app, name="db")
outbox_app = typer.Typer(
    help="Notices waiting, retrying and dead; retry one; send what is due.",
    invoke_without_command=True,
)
app.add_typer(outbox_app, name="outbox")


class ImportKind(StrEnum):
    """What an import file holds (``bot.csvfile.KINDS``)."""

    factories = "factories"
    buyers = "buyers"
    subscriptions = "subscriptions"
    assessments = "assessments"


class LogLevel(StrEnum):
    debug = "debug"
    info = "info"
    warning = "warning"
    error = "error"


LogLevelOption = Annotated[
    LogLevel | None,
    typer.Option(
        "--log-level",
        case_sensitive=False,
        help="debug, info, warning or error (default: warning; info for serve).",
    ),
]


@app.callback()
def _main(ctx: typer.Context, log_level: LogLevelOption = None) -> None:
    ctx.obj = {"log_level": log_level}  # given before the command: serve respects it
    logging.basicConfig(stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    secrets = _known_secrets()
    for handler in logging.getLogger().handlers:  # on the handler: it sees every record
        redaction.install(handler, secrets)
    _set_log_level(log_level or LogLevel.warning)


def _known_secrets() -> tuple[str, ...]:
    """The settings' secret values, masked in logs and errors; none if the settings are
    invalid (the command then stops with a message that shows none)."""
    try:
        return load_settings().secrets
    except ConfigError:
        return ()


def _set_log_level(level: LogLevel) -> None:
    logging.getLogger().setLevel(level.value.upper())


def _fail(message: str, code: int = 1) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def _run(work: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine; refusals and unreachable databases become one line on stderr."""
    try:
        return asyncio.run(work())
    except PncError as exc:
        raise _fail(exc.render()) from None
    except (OperationalError, DBAPIError, OSError) as exc:
        try:
            where = load_settings().database_url_redacted
        except ConfigError:
            where = "PNC_DATABASE_URL"
        detail = getattr(exc, "orig", None) or exc
        # the driver's text may echo the URL or the password
        shown = redaction.text(f"{type(detail).__name__}: {detail}", _known_secrets())
        raise _fail(f"cannot use the database {where}: {shown}") from None


async def _with_bot(use: Callable[[Bot], Awaitable[T]]) -> T:
    bot = await bootstrap()
    try:
        return await use(bot)
    finally:
        await bot.aclose()


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply the database migrations and re-evaluate factories whose country's rules changed
    (the bot also does this when it starts)."""

    async def work() -> str | None:
        bot = await bootstrap(upgrade=False)
        try:
            revision = await migrate.upgrade(bot.db)
            await rules.refresh(bot.core)
            return revision
        finally:
            await bot.aclose()

    revision = _run(work)
    typer.echo(f"database at revision {revision}")


@app.command("import")
def import_(
    kind: Annotated[ImportKind, typer.Argument(help="What the file holds.")],
    file: Annotated[Path, typer.Argument(help="CSV file with a header row.")],
    notify: Annotated[
        bool, typer.Option("--notify", help="Send the notices the imported history gives rise to.")
    ] = False,
) -> None:
    """Bulk-load a CSV file: checked whole first, nothing written if any row is bad."""

    async def work(bot: Bot) -> Any:
        with _progress() as bar:
            tasks: dict[str, Any] = {}

            def step(phase: str, done: int, total: int) -> None:
                if bar is None:
                    return
                if phase not in tasks:
                    tasks[phase] = bar.add_task(phase, total=total or None)
                bar.update(tasks[phase], completed=done, total=total or None)

            return await imports.run(
                bot.core, kind.value, file, operator(), notify=notify, progress=step
            )

    report = _run(lambda: _with_bot(work))
    parts = [f"{report.added} added"]
    if report.kind in ("factories", "buyers"):
        parts.append(f"{report.updated} updated")
    parts.append(f"{report.unchanged} already present")
    line = f"{report.kind}: {report.rows} rows read; " + ", ".join(parts) + "."
    if report.kind == "assessments":
        sent = "to be notified" if report.notify else "recorded without notices"
        line += f" {report.events} events {sent}."
        if report.contradicted:
            shown = ", ".join(report.to_review[:10])
            more = report.contradicted - min(report.contradicted, 10)
            line += (
                f" The history of {report.contradicted} factories changed under events already"
                f" notified: staff must review them (`pnc-bot status ID`): {shown}"
                + (f" and {more} more." if more else ".")
            )
    typer.echo(line)


@app.command()
def status(
    factory_id: Annotated[str, typer.Argument(help="Factory id, e.g. VN-1001.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    last: Annotated[int, typer.Option(help="How many assessments to show.")] = 5,
) -> None:
    """A factory's PNC status, as Slack shows it."""
    view = _run(lambda: _with_bot(lambda bot: reading.status(bot.core, factory_id)))
    if as_json:
        typer.echo(json.dumps(view.to_json(), ensure_ascii=False, indent=2))
    else:
        text = render_text("cli/status.txt", v=view, shown=view.latest(last))
        typer.echo(text, nl=False)


@app.command()
def issues(
    country: Annotated[str | None, typer.Argument(help="Country code, e.g. VN.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON list.")] = False,
) -> None:
    """The public-reporting issue catalogue in force."""

    try:
        countries = load_config(load_settings()).countries
        the_country = countries.country(country) if country else countries.default
    except PncError as exc:
        raise _fail(exc.render()) from None
    catalogue = the_country.catalogue
    if as_json:
        rows = [
            {"code": i.code, "name": i.name, "name_vi": i.name_vi, "cluster": i.cluster}
            for i in catalogue
        ]
        typer.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    typer.echo(
        render_text("cli/issues.txt", country=the_country, clusters=catalogue.clusters()), nl=False
    )


@app.command()
def serve(
    ctx: typer.Context,
    port: Annotated[int, typer.Option(help="HTTP port (POST /slack/events, GET /healthz).")] = 3000,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "0.0.0.0",
    socket_mode: Annotated[
        bool, typer.Option("--socket-mode", help="Connect to Slack with SLACK_APP_TOKEN.")
    ] = False,
    log_level: LogLevelOption = None,
) -> None:
    """Run the bot: Slack listeners, with the database migrated first. Stops on SIGTERM."""
    from bot.server import serve as run_server

    given = log_level or (ctx.find_root().obj or {}).get("log_level")
    _set_log_level(given or LogLevel.info)
    _run(lambda: run_server(load_settings(), host=host, port=port, socket_mode=socket_mode))


@app.command()
def shell(
    as_user: Annotated[
        str | None,
        typer.Option(
            "--as", help="Act as this Slack user id (with their role); default: you, as a manager."
        ),
    ] = None,
) -> None:
    """The Slack commands on this console: type /pnc … lines (or pipe them in)."""
    from handlers.shell import PROMPT, run_shell

    interactive = sys.stdin.isatty()

    async def read_line() -> str | None:
        if interactive:
            try:
                return await asyncio.to_thread(input, PROMPT)
            except EOFError:
                return None
        line = await asyncio.to_thread(sys.stdin.readline)
        return line or None

    def write(text: str) -> None:
        typer.echo(text)
        typer.echo()

    async def work(bot: Bot) -> int:
        if interactive:
            typer.echo("pnc-bot shell — type /pnc help, or exit to leave.")
        return await run_shell(
            bot, user_id=as_user, operator=operator("shell"), read_line=read_line, write=write
        )

    _run(lambda: _with_bot(work))


@outbox_app.callback()
def outbox_default(ctx: typer.Context) -> None:
    """With no subcommand: the list."""
    if ctx.invoked_subcommand is None:
        outbox_list(as_json=False)


@outbox_app.command("list")
def outbox_list(
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Notices waiting, retrying and dead, and paused channels."""
    view = _run(lambda: _with_bot(lambda bot: outbox_admin.overview(bot.core, limit=100)))
    if as_json:
        typer.echo(json.dumps(view.to_json(), indent=2))
    else:
        typer.echo(render_text("cli/outbox.txt", o=view, tz=load_settings().tz), nl=False)


@outbox_app.command("retry")
def outbox_retry(
    words: Annotated[
        list[str] | None,
        typer.Argument(
            help="A notice's number, or `dead` for every dead notice, optionally narrowed by a "
            "notice kind and a factory (e.g. `dead at_risk_warning VN-1001`).",
            metavar="NUMBER | dead [KIND] [FACTORY]",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Send a dead or waiting notice again, or every dead one (they are sent by `serve` or
    `outbox send`); the words are read as `/pnc outbox retry` reads them."""
    from handlers.parse import outbox_retry as grammar

    try:
        args = grammar(words or [], "pnc-bot outbox retry <notice number> | dead [kind] [factory]")
    except PncError as exc:
        raise _fail(exc.render()) from None

    async def work(bot: Bot) -> str:
        if args["notice"] is None:
            revived = await outbox_admin.retry_dead(
                bot.core, operator(), args["kind"], args["factory"]
            )
            return render_text("cli/outbox_retry.txt", revived=revived, line=None)
        line = await outbox_admin.retry(bot.core, operator(), args["notice"])
        return render_text("cli/outbox_retry.txt", revived=None, line=line)

    typer.echo(_run(lambda: _with_bot(work)), nl=False)


@outbox_app.command("send")
def outbox_send() -> None:
    """Deliver every notice that is due now, then exit (no Slack: staff alerts stay queued
    unless SLACK_BOT_TOKEN is set)."""

    async def work(bot: Bot) -> int:
        from slack_sdk.web.async_client import AsyncWebClient

        from bot.bootstrap import build_dispatcher

        token = bot.settings.slack_bot_token
        slack = (
            AsyncWebClient(token=token.get_secret_value(), base_url=bot.settings.slack_api_url)
            if token
            else None
        )
        dispatcher = build_dispatcher(bot, slack)
        total = 0
        try:
            while claimed := await dispatcher.run_once():
                total += claimed
        finally:
            await dispatcher.close()
        return total

    total = _run(lambda: _with_bot(work))
    typer.echo(f"{total} notices handled; see `pnc-bot outbox` for any still waiting")


@app.command()
def demo(
    out: Annotated[
        Path | None, typer.Option(help="Folder for the emails (default: ./pnc-demo-<time>).")
    ] = None,
) -> None:
    """The whole story — warnings, a designation, a buyer call, a readmission — on a throwaway
    database, through the same handlers as Slack. Needs no configuration."""
    from bot.demo import run_demo

    def write(text: str) -> None:
        typer.echo(text)
        typer.echo()

    folder = _run(lambda: run_demo(write, out))
    emails = sorted(folder.glob("*.eml")) if folder.exists() else []
    typer.echo(
        f"Done. {len(emails)} emails were written to {folder}/ as .eml files (open them in a "
        "mail program), each with its HTML alongside (open it in a browser)."
    )


class _NoProgress:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def _progress() -> Any:
    """A progress bar on stderr when a person is watching; nothing in scripts and tests."""
    if not sys.stderr.isatty():
        return _NoProgress()
    return Progress(
        TextColumn("{task.description:>10}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        transient=True,
        console=Console(stderr=True),
    )


def main() -> None:
    app()
