"""``pnc-bot demo``: the whole story on a throwaway database, through the same handlers as Slack.

Nothing is configured and nothing in the environment is read: the database is SQLite in a
temporary folder that is deleted at the end, emails are written as ``.eml`` files (with their
HTML alongside) into the folder the demo names, and what would be posted to the staff channel
is printed. The demo's clock starts today at 10:00 in Viet Nam, whatever the hour it runs at
(reminders fall due at the start of a working day, and the story waits for them by whole
days), runs at the real pace from there, and moves forward where the story waits for a
reminder.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from importlib import resources
from pathlib import Path
from zoneinfo import ZoneInfo

from pydantic_settings import BaseSettings, PydanticBaseSettingsSource

from bot.bootstrap import Bot, bootstrap
from bot.countries import Config, load_config
from bot.errors import InvalidInput
from bot.roles import Actor, RoleLevel
from bot.settings import Settings
from bot.usecases import assessments, imports, review, rules
from handlers.shell import ConsoleSession

STAFF_CHANNEL = "C0PNCSTAFF"
MANAGER = "U0DEMO"


#: the demo's time zone, and the hour of the day its story starts at
TIMEZONE = ZoneInfo("Asia/Ho_Chi_Minh")
STARTS_AT = time(10, 0)


class DemoClock:
    """Real time from ``STARTS_AT`` today in ``TIMEZONE``, moved forward when the story skips
    ahead."""

    def __init__(self, now: datetime | None = None) -> None:
        now = now or datetime.now(UTC)
        start = datetime.combine(now.astimezone(TIMEZONE).date(), STARTS_AT, tzinfo=TIMEZONE)
        self.offset = start - now

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def skip(self, days: int) -> None:
        self.offset += timedelta(days=days)


@dataclass(frozen=True)
class Step:
    say: str = ""
    #: a ``/pnc`` line; ``{pnc_designated}`` (any event kind) stands for the number of the
    #: first event of that kind held for review
    command: str = ""
    skip_days: int = 0
    #: the config file now says this (``PNC_CONFIG``), and the bot starts again
    config: str = ""


#: what the config file says when the story enables Cambodia
CAMBODIA = """[countries.KH]
pnc_enabled = true
inspectorate_emails = ["inspection@mlvt.example.gov.kh"]
"""
#: Phnom Penh Textiles' assessments, recorded before Cambodia was covered: days ago, issues
CAMBODIAN_HISTORY = (
    (700, "CO-01,CO-02,OS-01,WT-01,WT-02"),
    (340, "CO-01,CO-02,OS-01,WT-01"),
    (40, "CO-02,OS-01,OS-03,WT-01"),
)


def story(today: date) -> list[Step]:
    """The script: dates are relative to the day the demo runs."""

    def ago(days: int) -> str:
        return (today - timedelta(days=days)).isoformat()

    def ahead(days: int) -> str:
        return (today + timedelta(days=days)).isoformat()

    fails = "CO-01,CO-02,OS-01,WT-01,FA-01"
    return [
        Step(
            "Six sample factories, three buyers and their subscriptions are loaded. You are a "
            "programme manager in Viet Nam. What can pnc-bot do?",
            "/pnc help",
        ),
        Step(
            "Saigon Stitch Co. (VN-1001) is assessed: 5 publicly reported issues are found "
            "out of compliance — one more than the threshold. The factory (in Vietnamese, "
            "with English below), each subscribing buyer and the staff channel are told.",
            f"/pnc assess VN-1001 {ago(730)} {fails}",
        ),
        Step(
            "A year later the next assessment finds 4 again: at risk, 2 of 3.",
            f"/pnc assess VN-1001 {ago(365)} CO-02,OS-01,OS-03,WT-01",
        ),
        Step(
            "Hanoi Knitwear Ltd. (VN-1002) fails one assessment…",
            f"/pnc assess VN-1002 {ago(300)} CO-03,OS-01,OS-05,WT-01",
        ),
        Step(
            "…and improves: 2 issues in the next one. The process towards designation stops.",
            f"/pnc assess VN-1002 {ago(60)} OS-02,WT-01",
        ),
        Step(
            "Saigon Stitch fails a third assessment in a row: it is designated persistently "
            "non-compliant. The Labour Inspectorate receives the referral with the issues that "
            "were the basis; staff get an urgent alert.",
            f"/pnc assess VN-1001 {ago(30)} CO-02,OS-01,WT-01,WT-02,CH-01,FL-03",
        ),
        Step("Anyone on staff can see where a factory stands.", "/pnc status VN-1001"),
        Step(
            "That assessment also found FL-03, overtime forced under threat of penalty: a "
            "zero-tolerance issue. A case opened at once, whatever the count: staff got an "
            "urgent alert (the authorities are emailed where ztp_emails is configured; here it "
            "is not, and the alert says so). The factory is not emailed. Staff record progress "
            "before the 48-hour and 72-hour deadlines, or are reminded.",
            "/pnc ztp",
        ),
        Step("", "/pnc ztp update 1 investigating DOLISA opened an investigation"),
        Step("", "/pnc at-risk"),
        Step(
            "The quarterly call with buyer partners is the day after tomorrow: the agenda goes "
            "to the staff channel and each buyer gets the list of its own factories at risk.",
            f"/pnc calls add {ahead(2)} 15:00",
        ),
        Step(
            "Saigon Stitch applies for readmission with its evidence and its improvement "
            "reports to the Inspectorate. Managers are told, and reminded until they decide.",
            "/pnc readmission apply VN-1001 https://drive.example.org/saigon-stitch/evidence "
            "reports https://drive.example.org/saigon-stitch/inspectorate-report",
        ),
        Step(
            "A manager schedules an unannounced verification visit (the factory is not told).",
            f"/pnc readmission unannounced VN-1001 {ahead(8)}",
        ),
        Step(
            "A week goes by: the review is still open, the visit is tomorrow, and the meeting "
            "with buyers and national stakeholders has not been held yet.",
            skip_days=7,
        ),
        Step(
            "The next day, the visit finds one issue. It is recorded and shown to the "
            "reviewer; it does not count towards a new streak.",
            f"/pnc assess VN-1001 {ahead(8)} OS-02 unannounced",
            skip_days=1,
        ),
        Step(
            "The stakeholder meeting took place last week.",
            f"/pnc meeting held VN-1001 {ahead(4)}",
        ),
        Step(
            "The manager approves the readmission: the factory and its buyers are told.",
            "/pnc readmission approve VN-1001 All issues and their root causes are resolved",
        ),
        Step("", "/pnc history VN-1001"),
        Step(
            "Phnom Penh Textiles (KH-2001) is in Cambodia, where the framework did not apply: "
            "its last three assessments failed, and nobody was told.",
            "/pnc status KH-2001",
        ),
        Step(
            "Cambodia adopts the framework: the operator enables it in the config file "
            "([countries.KH] pnc_enabled = true) and restarts pnc-bot. Phnom Penh Textiles is "
            "now persistently non-compliant under the rules — but nobody is told of a rules "
            "change on its own: staff get an alert, and the new events wait for review.",
            config=CAMBODIA,
        ),
        Step("A manager looks at what is held.", "/pnc review"),
        Step(
            "The designation stands: the manager releases it. The factory, its buyer, the "
            "Labour Inspectorate and staff are told now, as if it had just happened, and the "
            "meeting with buyers and national stakeholders is tracked.",
            "/pnc review release {pnc_designated}",
        ),
        Step("Every notice went out; none is waiting or dead.", "/pnc outbox"),
    ]


class _DemoSettings(Settings):
    """Settings from the values given only: no ``PNC_*`` or ``SLACK_*`` variable is read."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)


def _settings(database: Path, outbox: Path) -> Settings:
    """Everything explicit or the default: the environment (a production database, SMTP, a
    bad value) is never used."""
    return _DemoSettings(
        database_url=f"sqlite+aiosqlite:///{database}",
        smtp_url=None,
        outbox_dir=outbox,
        staff_channel=STAFF_CHANNEL,
        inspectorate_email="inspection@dolisa.example.gov.vn",
        mail_from="pnc-bot@betterwork.example.org",
        reply_to=None,
        admins=(MANAGER,),
        config_path=None,
        slack_bot_token=None,
        slack_signing_secret=None,
        slack_app_token=None,
        timezone=TIMEZONE.key,
        call_reminder_days=3,
        readmission_reminder_days=7,
    )


def output_folder(wanted: Path | None) -> Path:
    if wanted is not None:
        return wanted
    base = Path.cwd() / f"pnc-demo-{datetime.now().strftime('%Y%m%d-%H%M%S')}"
    folder, n = base, 1
    while folder.exists():
        n += 1
        folder = base.with_name(f"{base.name}-{n}")
    return folder


def writable_folder(folder: Path) -> Path:
    """``folder``, created if need be; refused if the emails could not be written there."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise InvalidInput(
            f"Cannot write the emails to {folder}: {exc.strerror or exc}.",
            "Give a folder you can write to with --out.",
        ) from None
    return folder


async def run_demo(write: Callable[[str], None], out: Path | None = None) -> Path:
    """Play the story; returns the folder with the emails. Refused before anything is played
    if the emails could not be written."""
    outbox = writable_folder(output_folder(out))
    scratch = Path(tempfile.mkdtemp(prefix="pnc-demo-db-"))
    clock = DemoClock()
    bot: Bot | None = None
    try:
        bot = await bootstrap(
            _settings(scratch / "pnc.db", outbox), clock=clock, catalogue_notice=False
        )
        manager = Actor(MANAGER, RoleLevel.MANAGER, "demo")
        examples = resources.files("bot").joinpath("data", "examples")
        for kind in ("factories", "buyers", "subscriptions"):
            with resources.as_file(examples.joinpath(f"{kind}.csv")) as path:
                await imports.run(bot.core, kind, path, manager)
        today = bot.core.today()
        for before, issues in CAMBODIAN_HISTORY:  # while Cambodia is not covered: no notice
            day = (today - timedelta(days=before)).isoformat()
            await assessments.record(bot.core, manager, "KH-2001", day, issues)
        async with ConsoleSession(bot, write=write, operator=manager) as session:
            number = 0
            for step in story(today):
                if step.say:
                    number += 1
                    write(f"── {number}. {step.say}")
                if step.skip_days:
                    clock.skip(step.skip_days)
                    days = "1 day" if step.skip_days == 1 else f"{step.skip_days} days"
                    write(f"   (the demo's clock moves {days} ahead)")
                    await session.deliver()
                if step.config:
                    bot.config = bot.core.config = _configured(bot, scratch, step.config)
                    await rules.refresh(bot.core)  # as at every start
                    write("   (pnc-bot starts again with the new config file)")
                    await session.deliver()
                if step.command:
                    command = await _numbered(bot, manager, step.command)
                    write(f"you › {command}")
                    await session.command(command)
    finally:
        if bot is not None:
            await bot.aclose()
        shutil.rmtree(scratch, ignore_errors=True)
    return outbox


def _configured(bot: Bot, folder: Path, text: str) -> Config:
    """The configuration the bot reads from a config file saying ``text``."""
    path = folder / "pnc.toml"
    path.write_text(text, encoding="utf-8")
    return load_config(bot.settings.model_copy(update={"config_path": path}))


async def _numbered(bot: Bot, actor: Actor, command: str) -> str:
    """``command`` with ``{kind}`` replaced by the number of the first such held event."""
    if "{" not in command:
        return command
    held = (await review.pending(bot.core, actor)).events
    return command.format_map({e.kind: e.id for e in reversed(held)})
