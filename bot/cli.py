"""The ``pnc-bot`` command line (SPEC §4). Typer does not await coroutines: each command wraps
its work in ``asyncio.run``. Refusals print one clear message on stderr and exit with 1."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import typer

from bot import logs
from bot.bootstrap import Bot, bootstrap
from bot.cli_admin import outbox_app, review_app
from bot.cli_progress import progress as progress_command
from bot.cli_run import fail, known_secrets, run, with_bot
from bot.cli_ztp import ztp_app
from bot.countries import builtin_catalogue_notice, load_config
from bot.errors import ConfigError, PncError
from bot.logs import LogFormat
from bot.render import render_text
from bot.roles import operator
from bot.settings import load_settings
from bot.usecases import reading, referrals, rules
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
app.add_typer(outbox_app, name="outbox")
app.add_typer(review_app, name="review")
app.add_typer(ztp_app, name="ztp")
app.command("progress")(progress_command)


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


LogFormatOption = Annotated[
    LogFormat | None,
    typer.Option(
        "--log-format",
        case_sensitive=False,
        help="plain, or json: one JSON object a line (default: PNC_LOG_FORMAT, else plain).",
    ),
]


@app.callback()
def _main(
    ctx: typer.Context, log_level: LogLevelOption = None, log_format: LogFormatOption = None
) -> None:
    ctx.obj = {"log_level": log_level}  # given before the command: serve respects it
    logging.basicConfig(stream=sys.stderr, format=logs.PLAIN)
    _set_log_format(log_format)
    _set_log_level(log_level or LogLevel.warning)


def _set_log_level(level: LogLevel) -> None:
    logging.getLogger().setLevel(level.value.upper())


def _set_log_format(given: LogFormat | None) -> None:
    """The format given, else ``PNC_LOG_FORMAT``'s; secrets masked in either (on the
    handler: it sees every record)."""
    try:
        configured = load_settings().log_format
    except ConfigError:  # the command says what is wrong with the settings
        configured = LogFormat.plain
    logs.use(given or configured, known_secrets())


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply the database migrations, re-evaluate factories whose country's rules changed and
    send the referrals that waited for an Inspectorate address now configured (the bot also
    does this when it starts)."""

    async def work() -> str | None:
        bot = await bootstrap(upgrade=False)
        try:
            revision = await migrate.upgrade(bot.db)
            await rules.refresh(bot.core)
            await referrals.release_configured(bot.core)
            return revision
        finally:
            await bot.aclose()

    revision = run(work)
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

            from bot.usecases import imports  # only this command needs it

            return await imports.run(
                bot.core, kind.value, file, operator(), notify=notify, progress=step
            )

    report = run(lambda: with_bot(work))
    parts = [f"{report.added} added"]
    if report.kind in ("factories", "buyers"):
        parts.append(f"{report.updated} updated")
    parts.append(f"{report.unchanged} already present")
    line = f"{report.kind}: {report.rows} rows read; " + ", ".join(parts) + "."
    if report.kind == "assessments":
        sent = "to be notified" if report.notify else "recorded without notices"
        line += f" {report.events} events {sent}."
        if report.ztp_findings:
            n = report.ztp_findings
            found = f" {n} zero-tolerance finding{'' if n == 1 else 's'}"
            line += (
                f"{found}: cases opened and escalated."
                if report.notify
                else f"{found} recorded as {'a closed case' if n == 1 else 'closed cases'}, "
                "not escalated: open a case by hand "
                "(`pnc-bot ztp open`) where one is current."
            )
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
    view = run(lambda: with_bot(lambda bot: reading.status(bot.core, factory_id)))
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
    """The public-reporting issue catalogue in force; a line after it says when that is the
    built-in catalogue, not the official list (on stderr with --json, so the JSON stays valid)."""

    try:
        countries = load_config(load_settings()).countries
        the_country = countries.country(country) if country else countries.default
    except PncError as exc:
        raise fail(exc.render()) from None
    catalogue = the_country.catalogue
    notice = builtin_catalogue_notice([the_country]) if catalogue.builtin else None
    if as_json:
        rows = [
            {"code": i.code, "name": i.name, "name_vi": i.name_vi, "cluster": i.cluster}
            for i in catalogue
        ]
        typer.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        if notice:
            typer.echo(f"note: {notice}", err=True)
        return
    typer.echo(
        render_text("cli/issues.txt", country=the_country, clusters=catalogue.clusters()), nl=False
    )
    if notice:
        typer.echo(f"\nNote: {notice}")


@app.command()
def serve(
    ctx: typer.Context,
    port: Annotated[
        int, typer.Option(help="HTTP port (POST /slack/events, GET /healthz, /livez, /readyz).")
    ] = 3000,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "0.0.0.0",
    socket_mode: Annotated[
        bool, typer.Option("--socket-mode", help="Connect to Slack with SLACK_APP_TOKEN.")
    ] = False,
    metrics_port: Annotated[
        int | None,
        typer.Option(help="Serve GET /metrics (Prometheus) on this port; keep it private."),
    ] = None,
    metrics_host: Annotated[
        str, typer.Option(help="Address the metrics port listens on.")
    ] = "127.0.0.1",
    log_level: LogLevelOption = None,
    log_format: LogFormatOption = None,
) -> None:
    """Run the bot: Slack listeners, with the database migrated first. Stops on SIGTERM."""
    from bot.server import serve as run_server

    given = log_level or (ctx.find_root().obj or {}).get("log_level")
    _set_log_level(given or LogLevel.info)
    if log_format is not None:
        _set_log_format(log_format)
    metrics = (metrics_host, metrics_port) if metrics_port is not None else None
    run(
        lambda: run_server(
            load_settings(), host=host, port=port, socket_mode=socket_mode, metrics=metrics
        )
    )


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

    run(lambda: with_bot(work))


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

    folder = run(lambda: run_demo(write, out))
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
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(
        TextColumn("{task.description:>10}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        transient=True,
        console=Console(stderr=True),
    )


def main() -> None:
    try:
        app()
    except SystemExit as done:  # how Typer ends every command
        _leave(done.code)


def _leave(code: object) -> NoReturn:
    """End the process once the command is done (its output written, its database closed)
    without tearing the interpreter down: freeing every module's objects one by one took
    ~165 ms, a quarter of ``pnc-bot status`` (``bench/cli_startup.py``). With a tracer or a
    profiler on (coverage, cProfile, a debugger), Python's own exit runs, so they can write
    what they gathered."""
    if sys.gettrace() is not None or sys.getprofile() is not None:
        raise SystemExit(code)
    if code is None:
        status = 0
    elif isinstance(code, int):
        status = code
    else:  # ``sys.exit("message")``: the message on stderr, and 1, as Python does
        print(code, file=sys.stderr)
        status = 1
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        # a closed pipe: nothing more can be written anyway
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(status)
