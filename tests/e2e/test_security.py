"""Security, end to end: who may do what (every action × every role), hostile input through
every field a person can type or import, and secrets that must never leak — through the bot's
real HTTP server, signed requests, a fake Slack on loopback and a real database (SQLite and
PostgreSQL), and the installed ``pnc-bot serve`` as a process."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import hashlib
import hmac
import json
import re
import signal
import subprocess
import tempfile
import time
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import select, text

from bot import mail
from bot.countries import load_config
from bot.dispatcher import Dispatcher
from bot.errors import ImportRejected, PermissionDenied
from bot.roles import Actor, RoleLevel
from bot.settings import Settings
from bot.transports import FileTransport, SlackTransport
from bot.usecases import access, assessments, calls, imports, readmission, ztp
from bot.usecases.core import Core
from handlers import commands
from handlers.commands import parse
from store.db import Database
from store.models import AuditEntry, OutboxMessage, PncEvent
from tests.conftest import EXAMPLES
from tests.e2e.conftest import BOT_TOKEN, FakeSlack, Reply, SlackClient, settled
from tests.e2e.test_cli import PNC_BOT, environment
from tests.emails import parsed
from tests.fakes import SmtpServer, free_port

#: the manager from the start (PNC_ADMINS). Not U0ADMIN: here `<@U0ADMIN>` is only ever hostile
#: input, so a mention of it in anything the bot writes is an injection
CHIEF = "U0CHIEF"
STRANGER, VIEWER, ASSESSOR, MANAGER = "U0NOBODY", "U0VIEW", "U0ASSESS", "U0MGR"
#: lowest first: a command that succeeds may change what the next person finds
PEOPLE: tuple[tuple[str, RoleLevel | None], ...] = (
    (STRANGER, None),
    (VIEWER, RoleLevel.VIEWER),
    (ASSESSOR, RoleLevel.ASSESSOR),
    (MANAGER, RoleLevel.MANAGER),
)
FAIL4 = "CO-01,CO-02,OS-01,WT-01"
FORM = "application/x-www-form-urlencoded"
#: the tables a command changes; a refused command leaves every one as it was
DOMAIN_TABLES = (
    "factory",
    "buyer",
    "subscription",
    "assessment",
    "readmission",
    "buyer_call",
    "role",
    "outbox",
)


@pytest.fixture
def settings(database: Database) -> Settings:
    """The shared test settings, with ``CHIEF`` as the configured manager."""
    return Settings(
        database_url=database.url.render_as_string(hide_password=False),
        inspectorate_email="inspection@molisa.example",
        admins=CHIEF,
        staff_channel="C0STAFF",
    )


@pytest.fixture
async def people(core: Core) -> Actor:
    """The sample factories and buyers, and one person with each role; returns the chief."""
    chief = Actor(CHIEF, RoleLevel.MANAGER, "test")
    for kind in ("factories", "buyers", "subscriptions", "assessments"):
        await imports.run(core, kind, EXAMPLES / f"{kind}.csv", chief)
    for user, role in ((VIEWER, "viewer"), (ASSESSOR, "assessor"), (MANAGER, "manager")):
        await access.grant(core, chief, user, role)
    return chief


async def counts(db: Database) -> dict[str, int]:
    async with db.engine.connect() as conn:
        return {
            t: (await conn.execute(text(f"SELECT count(*) FROM {t}"))).scalar_one()
            for t in DOMAIN_TABLES
        }


async def audit_rows(
    core: Core, user: str | None = None, action: str | None = None
) -> list[AuditEntry]:
    await settled()  # reads' entries are written in batches (``read_audits``)
    async with core.db.transaction() as s:
        stmt = select(AuditEntry).order_by(AuditEntry.id)  # type: ignore[arg-type]
        if user is not None:
            stmt = stmt.where(AuditEntry.actor == user)
        if action is not None:
            stmt = stmt.where(AuditEntry.action == action)
        return list((await s.exec(stmt)).scalars().all())  # type: ignore[call-overload]


async def no_errors_audited(core: Core) -> None:
    rows = await audit_rows(core)
    errors = [(a.actor, a.subject, a.detail) for a in rows if a.outcome == "error"]
    assert errors == [], errors


def refused(reply: Reply) -> bool:
    return reply.text.startswith(":no_entry_sign:")


def cell(value: str) -> str:
    """A quoted CSV cell."""
    return '"' + value.replace('"', '""') + '"'


# --- 1. the role matrix ----------------------------------------------------------------------

#: the least role of every action: each Slack subcommand's, and the importer's
PERMISSIONS: dict[str, RoleLevel] = {
    **{action: p.role for action, p in commands.PERMISSIONS.items()},
    imports.IMPORT.action: imports.IMPORT.role,
}
#: a representative ``/pnc`` text for every action of ``PERMISSIONS``
ACTIONS: dict[str, str] = {
    "help": "help",
    "status": "status VN-1001",
    "history": "history VN-1001",
    "at-risk": "at-risk VN",
    "issues": "issues VN",
    "assess": "assess VN-1004 2026-10-01 none",
    "factory add": 'factory add VN-3001 "Matrix Garments" VN hr@matrix.example',
    "buyer add": 'buyer add B-MATRIX "Matrix Buyer" buying@matrix.example',
    "subscribe": "subscribe B-PAC VN-1004",
    "unsubscribe": "unsubscribe B-NORD VN-1004",
    "assessment amend": "amend VN-1001 2025-06-17 none typo",
    "assessment withdraw": "withdraw VN-1004 2025-11-05 duplicate visit",
    # Slack offers no import: the importer (pnc-bot import) is its only door
    "import": "import factories factories.csv",
    "readmission apply": "readmission apply VN-1001 https://drive.example/evidence",
    "readmission unannounced": "readmission unannounced VN-1001 2030-01-10",
    "readmission approve": "readmission approve VN-1001 all resolved",
    "readmission reject": "readmission reject VN-1001 root causes remain",
    "calls add": "calls add 2030-01-10",
    "calls list": "calls list",
    "calls remove": "calls remove 2030-02-10",
    "meeting held": "meeting held VN-1002 2026-11-15",
    "outbox": "outbox",
    "outbox retry": "outbox retry {notice}",
    "role grant": "role grant <@U0NEW|new> viewer",
    "role revoke": "role revoke <@U0OTHER>",
    "review": "review",
    "review release": "review release {event}",
    "review dismiss": "review dismiss {event} the warning was withdrawn",
    "inspectorate visit": "inspectorate visit VN-1001 2026-11-01",
    "readmission report": "readmission report VN-1001 https://drive.example/report",
    "referral send": "referral send VN-1002",
    # VN-1004's assessment of 2025-01-14 found OS-05
    "progress": "progress VN-1004 2026-11-01 fixed OS-05",
    "ztp": "ztp",
    "ztp open": "ztp open VN-1004 OS-01 exits locked during the night shift",
    "ztp update": "ztp update {case} investigating the inspectorate opened it",
}


def test_the_matrix_covers_every_action() -> None:
    assert set(ACTIONS) == set(PERMISSIONS)
    for action, line in ACTIONS.items():
        if action != "import":
            assert parse(line.format(notice=1, event=1, case=1)).action == action, line


async def prepare(action: str, core: Core, chief: Actor) -> dict[str, Any]:
    """What the action needs to find, so that the first person allowed succeeds."""
    if action in (
        "readmission unannounced",
        "readmission approve",
        "readmission reject",
        "readmission report",
    ):
        await readmission.apply(core, chief, "VN-1001", ["https://drive.example/e"])
    elif action in ("review release", "review dismiss"):
        return {"event": await held_event(core, chief)}
    elif action == "referral send":  # VN-1002 designated while no address was configured
        unaddressed = core.settings.model_copy(update={"inspectorate_email": None})
        before = dataclasses.replace(core, config=load_config(unaddressed))
        for day in ("2026-11-02", "2026-11-10"):
            await assessments.record(before, chief, "VN-1002", day, FAIL4)
    elif action == "ztp update":
        opened = await ztp.open_by_hand(core, chief, "VN-1004", "CL-01", "a child at the press")
        return {"case": opened.case.id}
    elif action == "calls remove":
        await calls.add(core, chief, "2030-02-10")
    elif action == "role revoke":
        await access.grant(core, chief, "U0OTHER", "viewer")
    elif action in ("meeting held", "outbox retry"):
        for day in ("2026-11-02", "2026-11-10"):  # VN-1002 is designated: notices, a meeting
            await assessments.record(core, chief, "VN-1002", day, FAIL4)
        async with core.db.transaction() as s:
            ids = (await s.exec(select(OutboxMessage.id))).scalars().all()  # type: ignore[call-overload]
        return {"notice": min(ids)}
    return {}


async def held_event(core: Core, chief: Actor) -> int:
    """An event held for review: VN-1002's second warning is told (its emails delivered), then
    the assessment behind it is corrected — what the corrected history gives rise to waits."""
    await assessments.record(core, chief, "VN-1002", "2026-11-02", FAIL4)
    dispatcher = Dispatcher.for_core(core, [FileTransport(Path(tempfile.mkdtemp()))])
    while await dispatcher.run_once():
        pass
    await assessments.amend(core, chief, "VN-1002", "2026-11-02", "typo", nc_issues="none")
    async with core.db.transaction() as s:
        held = select(PncEvent.id).where(PncEvent.notice == "held")  # type: ignore[arg-type]
        return int((await s.exec(held)).scalars().one())  # type: ignore[call-overload]


@pytest.mark.parametrize("action", sorted(PERMISSIONS))
async def test_role_matrix(
    action: str,
    client: SlackClient,
    core: Core,
    people: Actor,
    tmp_path: Path,
) -> None:
    """Refused with "needs the <role> role" exactly when the person's role is below the
    action's; a refusal writes nothing and is audited."""
    least = PERMISSIONS[action]
    if action == "import":
        await import_matrix(client, core, tmp_path)
        return
    line = ACTIONS[action].format(**await prepare(action, core, people))
    first_allowed = True
    for user, role in PEOPLE:
        before = await counts(core.db)
        audited = len(await audit_rows(core, user, "command"))
        reply = await client.command(line, user)
        below = role is None or role < least
        denied = f"`{action}` needs the {least.label} role" in reply.text
        assert denied == below, (user, reply.text)
        assert reply.payload.get("response_type") == "ephemeral"
        assert "Something went wrong" not in reply.text, (user, reply.text)
        entries = await audit_rows(core, user, "command")
        assert len(entries) == audited + 1  # every command, accepted or refused
        entry = entries[-1]
        assert (entry.action, entry.subject) == ("command", f"/pnc {line}")
        if below:
            assert refused(reply)
            assert await counts(core.db) == before, user
            assert entry.outcome == "refused"
            assert entry.detail["error"] == "permission_denied"
        else:
            assert entry.outcome in ("ok", "refused")
            if first_allowed:  # the representative text really does the action
                assert not refused(reply) and entry.outcome == "ok", (user, reply.text)
                first_allowed = False


async def import_matrix(client: SlackClient, core: Core, tmp_path: Path) -> None:
    """The importer asks the same table; Slack has no import for anyone."""
    for user, _ in PEOPLE:
        reply = await client.command(ACTIONS["import"], user)
        assert "`import` is not a pnc-bot command" in reply.text
        assert (await audit_rows(core, user, "command"))[-1].outcome == "refused"
    csv = tmp_path / "factories.csv"
    csv.write_text("factory_id,name,country,emails\nVN-3002,Imported,VN,a@imported.example\n")
    for user, role in PEOPLE:
        before = await counts(core.db)
        actor = Actor(user, role, "cli")
        if role is None or role < PERMISSIONS["import"]:
            with pytest.raises(PermissionDenied, match="`import` needs the manager role"):
                await imports.run(core, "factories", csv, actor)
            assert await counts(core.db) == before
        else:
            assert (await imports.run(core, "factories", csv, actor)).added == 1


# --- 2. hostile input ------------------------------------------------------------------------

#: Slack markup that would ping everyone, impersonate a mention or hide a link
HOSTILE = ("<!channel>", "<!here>", "<@U0ADMIN>", "<https://evil.example|click>")
MARKUP = re.compile(r"<(?:!channel|!here|@U0ADMIN|https?://evil)", re.IGNORECASE)


def typed(raw: str) -> str:
    """What Slack sends for characters a person typed: ``&``, ``<`` and ``>`` as entities."""
    return raw.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


#: each hostile markup as Slack's own (a real mention or link), then all of them typed
ALL_HOSTILE = "".join(HOSTILE)
VARIANTS = [(raw, raw) for raw in HOSTILE] + [(ALL_HOSTILE, typed(ALL_HOSTILE))]


def markup_in(value: Any) -> list[str]:
    dumped = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return MARKUP.findall(dumped)


async def deliver(core: Core, slack: FakeSlack, folder: Path) -> None:
    """Deliver every notice due, as the running bot would: emails to files, alerts to Slack."""
    client = AsyncWebClient(token=BOT_TOKEN, base_url=f"{slack.url}/api/")
    dispatcher = Dispatcher.for_core(core, [FileTransport(folder), SlackTransport(client)])
    while await dispatcher.run_once():
        pass


def staff_posts(slack: FakeSlack) -> list[dict[str, Any]]:
    return [c.body for c in slack.calls_to("chat.postMessage")]


#: every field a person types, with commands that take it ({h}) and show it back; whether each
#: hostile value must come back visibly escaped (some are consumed, not quoted)
FIELDS: dict[str, tuple[list[str], bool]] = {
    "factory name": (
        [
            'factory add VN-70{n} "{h}" VN hr@f{n}.example',
            "factory add VN-71{n} Acme {h} Ltd VN hr@g{n}.example",  # unquoted, several words
            f"assess VN-70{{n}} 2026-11-01 {FAIL4}",
            "status VN-70{n}",
            "history VN-71{n}",
        ],
        True,
    ),
    "buyer name": (
        [
            'buyer add B-EVIL{n} "{h}" buying@b{n}.example',
            "subscribe B-EVIL{n} VN-1002",
            "assess VN-1002 2026-11-{n:02d} {codes}",  # an event, whose alert lists the buyers
            "status VN-1002",
        ],
        True,
    ),
    "factory id": (
        [
            "status {h}",
            'factory add {h} "Name" VN a@b.example',
            "subscribe B-ACME {h}",
            "readmission approve {h}",
        ],
        True,
    ),
    "buyer id": (
        ["subscribe {h} VN-1001", 'buyer add {h} "Name" a@b.example', "unsubscribe {h} VN-1001"],
        True,
    ),
    "email": (
        [
            'factory add VN-72{n} "Name" VN x{h}@f.example',
            'buyer add B-MAIL{n} "Name" "a@b.example;{h}"',
            'buyer add B-MAIL{n} "Name" {h}',
        ],
        False,
    ),
    "issue code": (
        ["assess VN-1003 2026-11-{n:02d} CO-01,{h}", "amend VN-1002 2025-09-03 {h} typo"],
        True,
    ),
    "evidence link": (
        [
            "readmission apply VN-1001 https://drive.example/ok reports {h}",
            "readmission apply VN-1001 {h}",
            "status VN-1001",
            "history VN-1001",
        ],
        False,  # Slack's own link markup is how a link arrives: it is taken, not quoted
    ),
    "reason": (
        [
            "readmission apply VN-1001 https://drive.example/{n}",
            "readmission reject VN-1001 {h}",
            "assess VN-1004 2026-10-{n:02d} none",
            "withdraw VN-1004 2026-10-{n:02d} {h}",
            "amend VN-1002 2025-09-03 OS-01 {h}",
            "history VN-1004",
        ],
        True,
    ),
    "call date and time": (["calls add {h}", "calls add 2030-01-10 {h}", "calls remove {h}"], True),
    "role target": (["role grant {h} viewer", "role grant <@U0NEW> {h}", "role revoke {h}"], True),
    "country": (
        ["at-risk {h}", "issues {h}", 'factory add VN-73{n} "Name" {h} a@b.example'],
        True,
    ),
    "notice number": (["outbox retry {h}"], True),
    "command word": (["{h}", "readmission {h}", "calls {h}", "role {h}", "assess {h}"], True),
}


@pytest.mark.parametrize("field", list(FIELDS))
async def test_slack_markup_in_any_field_never_pings_or_links(
    field: str,
    client: SlackClient,
    slack: FakeSlack,
    core: Core,
    people: Actor,
    tmp_path: Path,
) -> None:
    """What a person types reaches replies and staff alerts as text (``&lt;!channel&gt;``),
    never as a ping, a mention or a link."""
    lines, echoed = FIELDS[field]
    for n, (raw, sent) in enumerate(VARIANTS, start=1):
        # a mention is how a person is named in `role grant`: the bot rightly names them back
        mention = field == "role target" and raw == "<@U0ADMIN>"
        seen = []
        for line in lines:
            command = line.format(h=sent, n=n, codes=FAIL4 if n % 2 else "none")
            reply = await client.command(command, MANAGER)
            assert "Something went wrong" not in reply.text, (command, reply.text)
            if not mention:
                assert markup_in(reply.payload) == [], (command, reply.text)
            seen.append(reply.text)
        if echoed and not mention:
            shown = " ".join(seen).lower()
            assert typed(raw).lower() in shown or typed(raw)[:20].lower() in shown, (raw, seen)
    await deliver(core, slack, tmp_path / "mail")
    posts = staff_posts(slack)
    assert markup_in(posts) == [], posts
    if field in ("factory name", "buyer name", "reason"):
        assert any("&lt;!channel&gt;" in p["text"] for p in posts)  # shown, as text
    await no_errors_audited(core)


async def test_slack_markup_imported_from_csv_never_pings_or_links(
    client: SlackClient,
    slack: FakeSlack,
    core: Core,
    people: Actor,
    tmp_path: Path,
) -> None:
    """Names imported from CSV (and the file's own name) reach status, history, the watch
    list, App Home and the staff alerts of an import with notices as text only."""
    names = [*HOSTILE, ALL_HOSTILE]
    factories = "".join(f"VN-74{n},{cell(x)},VN,hr@f{n}.example,,\n" for n, x in enumerate(names))
    buyers = "".join(f"B-CSV{n},{cell(x)},b{n}@b.example\n" for n, x in enumerate(names))
    subscriptions = "".join(f"B-CSV{n},VN-74{n}\n" for n in range(len(names)))
    assessments = "".join(
        f"VN-74{n},{day},{FAIL4.replace(',', ';')}\n"
        for n in range(len(names))
        for day in ("2026-10-01", "2026-11-01")
    )
    files = {
        "factories": "factory_id,name,country,emails,language,cycle_end\n" + factories,
        "buyers": "buyer_id,name,emails\n" + buyers,
        "subscriptions": "buyer_id,factory_id\n" + subscriptions,
        "assessments": "factory_id,assessed_on,nc_issues\n" + assessments,
    }
    for kind, content in files.items():
        path = tmp_path / f"{kind}-<!here>.csv"  # a file name is shown too (history: via …)
        path.write_text(content)
        await imports.run(core, kind, path, people, notify=kind == "assessments")
    replies = []
    for n in range(len(names)):
        for line in (f"status VN-74{n}", f"history VN-74{n}"):
            replies.append(await client.command(line, VIEWER))
    replies.append(await client.command("at-risk", VIEWER))
    for reply in replies:
        assert markup_in(reply.payload) == [], reply.text
    assert "&lt;!channel&gt;" in replies[0].text and "import:assessments-&lt;!here&gt;.csv" in (
        replies[1].text
    )
    assert "&lt;https://evil.example|click&gt;" in replies[-1].text
    assert await client.event({"type": "app_home_opened", "user": VIEWER, "tab": "home"}) == 200
    home = await slack.wait(lambda: slack.calls_to("views.publish"))
    assert markup_in(home[0].body) == [] and "&lt;@U0ADMIN&gt;" in json.dumps(home[0].body)
    await deliver(core, slack, tmp_path / "mail")
    posts = staff_posts(slack)
    assert len(posts) >= len(names)  # an at-risk alert for each factory
    assert markup_in(posts) == [], posts
    assert any("&lt;!here&gt;" in p["text"] for p in posts)


class Html(HTMLParser):
    """The elements, attributes and text of an HTML document."""

    def __init__(self, document: str) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.attributes: list[str] = []
        self.data: list[str] = []
        self.feed(document)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attributes += [name for name, _ in attrs]

    def handle_data(self, data: str) -> None:
        self.data.append(data)


async def emails_of(core: Core, factory_id: str) -> list[Any]:
    """Every email notice about a factory, as a mail client receives it from the dispatcher."""
    async with core.db.transaction() as s:
        stmt = select(OutboxMessage).where(
            OutboxMessage.factory_id == factory_id, OutboxMessage.channel == "email"
        )
        rows = (await s.exec(stmt)).scalars().all()  # type: ignore[call-overload]
    return [(row, parsed(mail.build(row, core.settings))) for row in rows]


HTML_NAME = "<script>alert(1)</script> & <img src=x onerror=alert(2)>"
HTML_BUYER = '<b onmouseover="alert(3)">Buyer</b><script>alert(4)</script>'
HTML_REASON = "<script>alert(5)</script><iframe src=https://evil.example>"


async def test_html_in_names_and_reasons_is_escaped_in_emails(
    client: SlackClient, core: Core, people: Actor, tmp_path: Path
) -> None:
    """A factory named in Slack and a buyer imported from CSV, both with HTML in their names, a
    rejection with HTML in its reason: every email's HTML part shows them as text."""
    added = await client.command(
        f'factory add VN-7777 "{typed(HTML_NAME)}" VN hr@h.example', MANAGER
    )
    assert "Registered factory" in added.text
    buyers = tmp_path / "buyers.csv"
    buyers.write_text(f"buyer_id,name,emails\nB-HTML,{cell(HTML_BUYER)},b@h.example\n")
    await imports.run(core, "buyers", buyers, people)
    assert "now subscribes" in (await client.command("subscribe B-HTML VN-7777", MANAGER)).text
    for day in ("2026-09-01", "2026-10-01", "2026-11-01"):  # warnings, then a designation
        await client.command(f"assess VN-7777 {day} {FAIL4}", MANAGER)
    await client.command("readmission apply VN-7777 https://drive.example/e", MANAGER)
    rejected = await client.command(f"readmission reject VN-7777 {typed(HTML_REASON)}", MANAGER)
    assert "rejected" in rejected.text
    built = await emails_of(core, "VN-7777")
    kinds = {row.kind for row, _ in built}
    assert {"at_risk_warning", "pnc_designated", "inspectorate_referral"} <= kinds
    assert "readmission_rejected" in kinds
    for row, message in built:
        html = message.get_body(("html",)).get_content()
        parsed = Html(html)
        assert not {"script", "img", "iframe", "b"} & set(parsed.tags), (row.kind, parsed.tags)
        assert not {"onerror", "onmouseover", "src"} & set(parsed.attributes), row.kind
        assert "<script" not in html.lower()
        shown = "".join(parsed.data)
        assert HTML_NAME in shown, row.kind  # as text, whole
        if row.recipient_type == "buyer":
            assert HTML_BUYER in shown
        if row.kind == "readmission_rejected":
            assert HTML_REASON in shown
        for name, value in message.items():
            assert "\r" not in str(value) and "\n" not in str(value), (name, value)


CRLF = "Acme\r\nBcc: x@evil.example"


CRLF_LINES = [
    (f'factory add VN-7780 "{CRLF}" VN hr@acme.example', "contains control characters"),
    (f'buyer add B-CRLF "{CRLF}" b@acme.example', "contains control characters"),
    ('factory add VN-7781 "Acme\rBcc: x@e.example" VN hr@acme.example', "control characters"),
    ('factory add VN-7782 "Acme\nBcc: x@e.example" VN hr@acme.example', "control characters"),
    (
        'factory add VN-7783 Acme VN "hr@acme.example\r\nBcc: x@evil.example"',
        "`Bcc:` is not a valid email address",
    ),
    (
        'buyer add B-CRLF Acme "b@acme.example\r\nBcc:x@evil.example"',
        "is not a valid email address",
    ),
    ("assess VN-1002 2026-11-01 CO-01\r\nBcc:x", "not a public-reporting issue code"),
    ('amend VN-1002 2025-09-03 OS-01 "typo\r\nBcc: x@evil.example"', "control characters"),
]


async def test_line_breaks_that_could_reach_an_email_header_are_refused(
    client: SlackClient, core: Core, people: Actor
) -> None:
    before = await counts(core.db)
    for line, expected in CRLF_LINES:
        reply = await client.command(line, MANAGER)
        assert refused(reply) and expected in reply.text, reply.text
        assert "\r" not in reply.text
        assert (await audit_rows(core, MANAGER, "command"))[-1].outcome == "refused"
    assert await counts(core.db) == before


async def test_line_breaks_in_csv_cells_are_refused(
    core: Core, people: Actor, tmp_path: Path
) -> None:
    files = {
        "factories": "factory_id,name,country,emails\n"
        f'VN-7790,"{CRLF}",VN,hr@acme.example\n'
        'VN-7791,Acme,VN,"hr@acme.example\r\nBcc: x@evil.example"\n'
        "VN-7792,Fine Factory,VN,fine@acme.example\n",
        "buyers": "buyer_id,name,emails\n"
        f'B-CRLF1,"{CRLF}",b@acme.example\n'
        'B-CRLF2,Acme,"b@acme.example\nBcc: x@evil.example"\n',
    }
    for kind, content in files.items():
        path = tmp_path / f"{kind}.csv"
        path.write_bytes(content.encode())
        before = await counts(core.db)
        with pytest.raises(ImportRejected) as caught:
            await imports.run(core, kind, path, people)
        assert await counts(core.db) == before  # the good row is not written either
        reasons = [reason for _, reason in caught.value.errors]
        assert len(reasons) == 2, reasons
        assert "control characters" in reasons[0]
        assert "Bcc: is not a valid email address" in reasons[1], reasons


async def test_a_line_break_between_words_is_only_a_space_in_headers(
    client: SlackClient, core: Core, people: Actor
) -> None:
    """Unquoted, a line break separates words: the name is stored on one line and the email
    headers carry no injected field."""
    reply = await client.command(f"factory add VN-7793 {CRLF} VN hr@acme.example en", MANAGER)
    assert "Registered factory `VN-7793` — Acme Bcc: x@evil.example" in reply.text
    await client.command(f"assess VN-7793 2026-11-01 {FAIL4}", MANAGER)
    built = await emails_of(core, "VN-7793")
    assert built
    for _, message in built:
        assert message["Bcc"] is None
        assert [a.addr_spec for a in message["To"].addresses] == ["hr@acme.example"]
        raw = message.as_bytes()
        assert b"\nBcc:" not in raw and b"\r\nBcc:" not in raw


SQL_NAMES = ("Robert'); DROP TABLE factory;--", "100% _cotton_ C:\\temp", "x' OR '1'='1")


async def test_sql_metacharacters_in_names_are_stored_and_shown_verbatim(
    client: SlackClient, core: Core, people: Actor, tmp_path: Path
) -> None:
    for n, name in enumerate(SQL_NAMES):
        reply = await client.command(f'factory add VN-780{n} "{name}" VN f{n}@sql.example', MANAGER)
        assert f"Registered factory `VN-780{n}` — {name} (Viet Nam)" in reply.text, reply.text
        assert f"*VN-780{n} — {name}*" in (await client.command(f"status VN-780{n}", VIEWER)).text
    buyers = tmp_path / "buyers.csv"
    buyers.write_text(
        "buyer_id,name,emails\n"
        + "".join(f"B-SQL{n},{cell(name)},b{n}@sql.example\n" for n, name in enumerate(SQL_NAMES))
    )
    assert (await imports.run(core, "buyers", buyers, people)).added == len(SQL_NAMES)
    async with core.db.engine.connect() as conn:
        factories = dict((await conn.execute(text("SELECT id, name FROM factory"))).all())
        stored = dict((await conn.execute(text("SELECT id, name FROM buyer"))).all())
    assert [factories[f"VN-780{n}"] for n in range(len(SQL_NAMES))] == list(SQL_NAMES)
    assert [stored[f"B-SQL{n}"] for n in range(len(SQL_NAMES))] == list(SQL_NAMES)
    assert len(factories) == 6 + len(SQL_NAMES)  # the table is still there, with all its rows
    await no_errors_audited(core)


#: ids as typed in Slack (inside double quotes: ``\\\\`` is one backslash)
SQL_IDS = ("VN-1001'--", "VN-1001;DROP", "VN-100%", "VN%", "VN-1001\\\\", "' OR '1'='1", "VN-1)")


async def test_sql_metacharacters_in_ids_are_refused(
    client: SlackClient, core: Core, people: Actor, tmp_path: Path
) -> None:
    before = await counts(core.db)
    for bad_id in SQL_IDS:
        for line in (
            f'status "{bad_id}"',
            f'factory add "{bad_id}" "Name" VN a@b.example',
            f'subscribe B-ACME "{bad_id}"',
            f'subscribe "{bad_id}" VN-1001',
        ):
            reply = await client.command(line, MANAGER)
            assert refused(reply) and "is not a valid" in reply.text, (line, reply.text)
    path = tmp_path / "factories.csv"
    cells = [cell(i.replace("\\\\", "\\")) for i in SQL_IDS]
    path.write_text(
        "factory_id,name,country,emails\n" + "".join(f"{c},Name,VN,a@b.example\n" for c in cells)
    )
    with pytest.raises(ImportRejected) as caught:
        await imports.run(core, "factories", path, people)
    assert len(caught.value.errors) == len(SQL_IDS)
    assert all("is not a valid factory id" in reason for _, reason in caught.value.errors)
    assert await counts(core.db) == before
    await no_errors_audited(core)


async def test_an_underscore_in_an_id_is_not_a_wildcard(client: SlackClient, people: Actor) -> None:
    reply = await client.command("status VN-100_", VIEWER)
    assert "There is no factory `VN-100_`" in reply.text
    reply = await client.command("subscribe B-ACM_ VN-1001", MANAGER)
    assert "There is no buyer `B-ACM_`" in reply.text


async def test_very_long_input_gets_a_clear_refusal(
    client: SlackClient, core: Core, people: Actor, tmp_path: Path
) -> None:
    before = await counts(core.db)
    cases = [
        ("status " + "A" * 4993, "The command is 5000 characters long. Use at most 4000."),
        (
            'factory add VN-7850 "' + "N" * 10_000 + '" VN a@b.example',
            "The command is 10037 characters long",
        ),
        (
            'factory add VN-7851 "' + "N" * 3000 + '" VN a@b.example',
            "The factory name is 3000 characters long. Use at most 200.",
        ),
        ('buyer add B-LONG "' + "N" * 3000 + '" a@b.example', "is 3000 characters long"),
        ("status " + "V" * 300, "is not a valid factory id"),
        ("factory add " + "V" * 300 + " Name VN a@b.example", "is not a valid factory id"),
        ("subscribe " + "B" * 300 + " VN-1001", "is not a valid buyer id"),
        ("readmission reject VN-1001 " + "r " * 1500, "The reason is 2999 characters long"),
        ("assess VN-1002 2026-11-01 " + "CO-01," * 700, "The command is"),
        ("calls add 2030-01-10 " + "x" * 300 + ":00", "is not a time of day"),
    ]
    for line, expected in cases:
        reply = await client.command(line, MANAGER)
        assert refused(reply) and expected in reply.text, (line[:40], reply.text[:300])
        assert len(reply.text) < 1000  # the input is not echoed whole
        entry = (await audit_rows(core, MANAGER, "command"))[-1]
        assert entry.outcome == "refused" and len(entry.subject or "") <= 200
    assert await counts(core.db) == before
    csv = tmp_path / "factories.csv"
    csv.write_text(
        "factory_id,name,country,emails\n"
        f"VN-7852,{'N' * 10_000},VN,a@b.example\n"
        f"{'V' * 300},Name,VN,a@b.example\n"
        f"VN-7853,Name,VN,{'m' * 300}@b.example\n"
    )
    with pytest.raises(ImportRejected) as caught:
        await imports.run(core, "factories", csv, people)
    reasons = [reason for _, reason in caught.value.errors]
    assert "The factory name is 10000 characters long. Use at most 200." in reasons[0]
    assert "is not a valid factory id" in reasons[1] and len(reasons[1]) < 300
    assert "is not a valid email address" in reasons[2]
    assert await counts(core.db) == before
    # a body larger than any Slack request is turned away before it is read
    _, body = client.command_body("status " + "A" * 2_000_000, MANAGER)
    assert (await client.post(body, FORM))[0] == 413
    await no_errors_audited(core)


async def command_with_bytes(client: SlackClient, line: str, user: str, raw: str) -> Reply:
    """``line`` with ``ZZRAWZZ`` replaced by percent-encoded bytes (``%FF``…) in the form."""
    n, body = client.command_body(line, user)
    status, answer, seconds = await client.post(body.replace("ZZRAWZZ", raw), FORM)
    assert status == 200, answer
    if answer.strip():
        return Reply(status, json.loads(answer), seconds)
    return Reply(status, await client.slack.wait(lambda: client.slack.responses.get(n)), seconds)


#: invalid UTF-8, an encoded lone surrogate, an overlong NUL, a code point beyond Unicode
NOT_UTF8 = ("%FF%FE", "%ED%B3%BF", "%C0%80", "%F4%90%80%80")


async def test_bytes_that_are_not_utf8_are_replaced_or_refused(
    client: SlackClient, core: Core, people: Actor
) -> None:
    for n, raw in enumerate(NOT_UTF8):
        added = await command_with_bytes(
            client, f'factory add VN-784{n} "Acme ZZRAWZZ Ltd" VN a@b.example', MANAGER, raw
        )
        assert "Something went wrong" not in added.text
        if not refused(added):
            async with core.db.engine.connect() as conn:
                name = (
                    await conn.execute(text(f"SELECT name FROM factory WHERE id = 'VN-784{n}'"))
                ).scalar_one()
            name.encode("utf-8")  # stored as valid text
            assert name.startswith("Acme ") and name.endswith(" Ltd")
        for line in ("status VN-ZZRAWZZ", "assess VN-1002 2026-11-01 CO-01,ZZRAWZZ"):
            reply = await command_with_bytes(client, line, MANAGER, raw)
            assert refused(reply), reply.text
    await no_errors_audited(core)
    assert len(await audit_rows(core, MANAGER, "command")) == 3 * len(NOT_UTF8)


async def test_bidirectional_and_invisible_characters_are_refused_and_nothing_is_stored(
    client: SlackClient, core: Core, people: Actor, tmp_path: Path
) -> None:
    name = "Acme\u202etxt.exe\u200d\u200bLtd\u2066"
    before = await counts(core.db)
    added = await client.command(f'factory add VN-7860 "{name}" VN a@b.example', MANAGER)
    assert refused(added), added.text
    assert "U+202E (RIGHT-TO-LEFT OVERRIDE) after `Acme` (and 3 more)" in added.text
    assert not any(c in added.text for c in "\u202e\u200d\u200b\u2066")
    for bad in ("VN-1001\u200b", "VN\u202e-1001", "VN-1001\u200d", "V\u0338N-1001", "ＶＮ-1001"):
        reply = await client.command(f"status {bad}", VIEWER)
        assert refused(reply) and "is not a valid factory id" in reply.text, reply.text
        assert not any(c in reply.text for c in "\u202e\u200d\u200b")
    csv = tmp_path / "buyers.csv"
    csv.write_text(
        f"buyer_id,name,emails\nB-BIDI,{name},b@bidi.example\nB\u202e-X,Name,b@bidi.example\n",
        encoding="utf-8",
    )
    with pytest.raises(ImportRejected, match="2 bad rows") as caught:
        await imports.run(core, "buyers", csv, people)
    assert "U+202E (RIGHT-TO-LEFT OVERRIDE)" in caught.value.render()
    assert await counts(core.db) == before
    await no_errors_audited(core)


async def test_csv_files_that_are_not_utf8_or_hold_nul_are_refused(
    core: Core, people: Actor, tmp_path: Path
) -> None:
    before = await counts(core.db)
    csv = tmp_path / "factories.csv"
    header = b"factory_id,name,country,emails\n"
    for bad in (b"Acme \xff\xfe Ltd", "Acme \udcff".encode("utf-8", "surrogatepass")):
        csv.write_bytes(header + b"VN-7870," + bad + b",VN,a@b.example\n")
        with pytest.raises(ImportRejected) as caught:
            await imports.run(core, "factories", csv, people)
        assert caught.value.errors == [(2, "not UTF-8 text: save the file as CSV UTF-8")]
    csv.write_bytes(header + b"VN-7872,Acme\x00Ltd,VN,a@b.example\nVN-78\x0073,Acme,VN,a@b.ex\n")
    with pytest.raises(ImportRejected) as caught:
        await imports.run(core, "factories", csv, people)
    reasons = [reason for _, reason in caught.value.errors]
    assert "control characters" in reasons[0] and "is not a valid factory id" in reasons[1]
    assert await counts(core.db) == before


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("outbox retry 12x", "is not a notice number"),
        ("outbox retry 4000", "There is no notice `#4000`"),
        ("calls add 2030-01-10 25:00", "is not a time of day"),
        ("outbox retry 2147483648", "There is no notice `#2147483648`"),
        pytest.param(
            "outbox retry 99999999999999999999",
            "There is no notice",
            id="notice-number-overflow",
        ),
        pytest.param(
            "calls add 2030-01-10 99999999999999999999:00",
            "is not a time of day",
            id="call-time-overflow",
        ),
    ],
)
async def test_numbers_out_of_range_get_a_clear_refusal(
    client: SlackClient,
    core: Core,
    people: Actor,
    line: str,
    expected: str,
) -> None:
    before = await counts(core.db)
    reply = await client.command(line, MANAGER)
    assert refused(reply) and expected in reply.text, reply.text
    assert await counts(core.db) == before
    await no_errors_audited(core)


NUL_LINES = [
    ('factory add VN-7880 "Acme\x00Ltd" VN a@b.example', "contains control characters"),
    ("status VN-1001\x00", "is not a valid factory id"),
    ('buyer add B-NUL "Acme" a@b.example\x00', "is not a valid email address"),
    ("assess VN-1002 2026-11-01 CO-01\x00", "is not a public-reporting issue code"),
]


async def test_nul_characters_are_refused_and_the_refusal_audited(
    client: SlackClient, core: Core, people: Actor
) -> None:
    before = await counts(core.db)
    for line, expected in NUL_LINES:
        reply = await client.command(line, MANAGER)
        assert refused(reply) and expected in reply.text, reply.text
        assert "\x00" not in reply.text
    assert await counts(core.db) == before
    entries = await audit_rows(core, MANAGER, "command")
    assert [e.outcome for e in entries] == ["refused"] * len(NUL_LINES)


async def test_control_characters_in_links_are_refused(
    client: SlackClient, core: Core, people: Actor
) -> None:
    before = await counts(core.db)
    for link in ("https://drive.example/\x1b[2J\x1b[31mOK", "https://drive.example/a\x07b"):
        for line in (
            f"readmission apply VN-1001 {link}",
            f"readmission apply VN-1001 https://drive.example/e reports {link}",
        ):
            reply = await client.command(line, ASSESSOR)
            assert refused(reply) and "is not a link" in reply.text, reply.text
    assert await counts(core.db) == before


def submission(user: str, factory: str) -> dict[str, Any]:
    """The assessment form as Slack submits it (JSON: any string, lone surrogates too)."""
    values = {
        "factory": {"factory": {"type": "plain_text_input", "value": factory}},
        "day": {"day": {"type": "datepicker", "selected_date": "2026-11-03"}},
        "issues": {"issues": {"type": "multi_static_select", "selected_options": []}},
        "kind": {"kind": {"type": "static_select", "selected_option": {"value": "regular"}}},
    }
    return {
        "type": "view_submission",
        "team": {"id": "T0TEST"},
        "user": {"id": user, "team_id": "T0TEST"},
        "api_app_id": "A0PNC",
        "trigger_id": "trigger.view",
        "view": {
            "id": "V0FORM",
            "type": "modal",
            "callback_id": "pnc_assess",
            "private_metadata": json.dumps({"channel": "C0STAFF", "country": "VN"}),
            "state": {"values": values},
        },
    }


async def test_the_form_refuses_odd_characters_and_audits_the_refusal(
    client: SlackClient, core: Core, people: Actor
) -> None:
    for factory in ("VN-1003\u202e", "<!channel>", "VN-1003'--", "V" * 300):
        status, answer = await client.interaction(submission(ASSESSOR, factory))
        assert status == 200 and answer["response_action"] == "errors"
        assert "is not a valid factory id" in answer["errors"]["factory"]  # plain text
    entries = await audit_rows(core, ASSESSOR, "command")
    assert [e.outcome for e in entries] == ["refused"] * 4


async def test_a_lone_surrogate_in_the_form_is_refused_and_audited(
    client: SlackClient, core: Core, people: Actor
) -> None:
    status, answer = await client.interaction(submission(ASSESSOR, "VN-1003\udcff"))
    assert status == 200 and answer["response_action"] == "errors"
    assert "is not a valid factory id" in answer["errors"]["factory"]
    entries = await audit_rows(core, ASSESSOR, "command")
    assert [e.outcome for e in entries] == ["refused"]


async def test_the_shell_refuses_a_name_that_is_not_utf8(
    db: Database, core: Core, tmp_path: Path
) -> None:
    env = environment({"PNC_DATABASE_URL": db.url.render_as_string(hide_password=False)})
    process = await asyncio.create_subprocess_exec(
        str(PNC_BOT),
        "shell",
        cwd=tmp_path,
        env=env,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(
        process.communicate(b'/pnc factory add VN-7890 "Acme \xff Ltd" VN a@b.example\n'), 60
    )
    assert process.returncode == 0, err
    assert "Something went wrong" not in out.decode(errors="replace")
    assert b"Traceback" not in err
    entries = await audit_rows(core, action="command")
    assert [e.outcome for e in entries] in (["ok"], ["refused"])


async def test_a_body_that_is_not_utf8_is_turned_away_without_a_server_error(
    client: SlackClient, people: Actor
) -> None:
    _, body = client.command_body("status VN-1001 ZZRAWZZ", MANAGER)
    raw = body.encode().replace(b"ZZRAWZZ", b"\xff\xfe")
    stamp = str(int(time.time()))
    mac = hmac.new(client.secret.encode(), f"v0:{stamp}:".encode() + raw, hashlib.sha256)
    for signature in ("v0=" + mac.hexdigest(), "v0=" + "0" * 64):
        headers = {
            "Content-Type": FORM,
            "X-Slack-Request-Timestamp": stamp,
            "X-Slack-Signature": signature,
        }
        async with client.session.post(
            f"{client.base}/slack/events", data=raw, headers=headers
        ) as response:
            assert response.status in (400, 401), response.status


# --- 3. secrets ------------------------------------------------------------------------------

TOKEN = "xoxb-SECRET-TOKEN-1234"
SIGNING = "SECRET-SIGNING-5678"
SMTP_PASSWORD = "SECRET-SMTP-PASSWORD"
DB_PASSWORD = "SECRET-DB-PASSWORD"


def leaks(*places: Any) -> list[str]:
    """The secrets (as such, or base64-encoded as in an SMTP AUTH exchange) found anywhere."""
    secrets = [TOKEN, SIGNING, SMTP_PASSWORD, DB_PASSWORD]
    encoded = [f"\0pnc\0{SMTP_PASSWORD}", SMTP_PASSWORD, TOKEN, SIGNING, DB_PASSWORD]
    forms = secrets + [base64.b64encode(s.encode()).decode() for s in encoded]
    forms.append("SECRET-")  # any part of any of them
    text_of = [p if isinstance(p, str) else json.dumps(p, default=str) for p in places]
    return [f for f in forms for t in text_of if f in t]


async def table_dump(db: Database, *tables: str) -> str:
    async with db.engine.connect() as conn:
        return "\n".join(
            [repr((await conn.execute(text(f"SELECT * FROM {t}"))).all()) for t in tables]
        )


async def wait_until(check: Any, within: float = 30.0) -> Any:
    deadline = time.monotonic() + within
    while not (found := await check()):
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.1)
    return found


async def test_serve_never_shows_a_secret(
    db: Database, core: Core, slack: FakeSlack, tmp_path: Path
) -> None:
    """``pnc-bot serve`` at debug level with every secret set, SMTP refusing the login: none of
    them in its output, its answers, Slack, the health check or the database."""
    chief = Actor(CHIEF, RoleLevel.MANAGER, "test")
    for kind in ("factories", "buyers", "subscriptions", "assessments"):
        await imports.run(core, kind, EXAMPLES / f"{kind}.csv", chief)
    url = db.url.set(password=DB_PASSWORD) if db.is_postgresql else db.url  # trust: ignored
    smtp = SmtpServer(password="right")
    smtp.start()
    port = free_port()
    env = environment(
        {
            "SLACK_BOT_TOKEN": TOKEN,
            "SLACK_SIGNING_SECRET": SIGNING,
            "PNC_SMTP_URL": f"smtp://pnc:{SMTP_PASSWORD}@127.0.0.1:{smtp.port}?timeout=5",
            "PNC_DATABASE_URL": url.render_as_string(hide_password=False),
            "PNC_SLACK_API_URL": f"{slack.url}/api/",
            "PNC_ADMINS": CHIEF,
            "PNC_STAFF_CHANNEL": "C0STAFF",
            "PNC_INSPECTORATE_EMAIL": "inspection@molisa.example",
            "PNC_OUTBOX_DIR": str(tmp_path / "outbox"),
        }
    )
    process = await asyncio.create_subprocess_exec(
        str(PNC_BOT),
        "--log-level",
        "debug",
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        cwd=tmp_path,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None and process.stderr is not None
    stdout, stderr = (asyncio.create_task(s.read()) for s in (process.stdout, process.stderr))
    base = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as session:

            async def healthy() -> str | None:
                try:
                    async with session.get(f"{base}/healthz") as response:
                        return await response.text() if response.status == 200 else None
                except aiohttp.ClientError:
                    assert process.returncode is None, "pnc-bot serve stopped"
                    return None

            health = await wait_until(healthy)
            client = SlackClient(base, slack, session, secret=SIGNING)
            status = await client.command("status VN-1001", CHIEF)
            assert "*Persistently non-compliant*" in status.text
            _, body = client.command_body("status VN-1001", CHIEF)
            forged = [
                await client.post(body, FORM, secret="not-the-secret"),
                await client.post(body, FORM, timestamp=int(time.time()) - 600),
                await client.post(body, FORM, signature="v0=" + "0" * 64),
            ]
            assert [f[0] for f in forged] == [401, 401, 401]
            day = (datetime.now(UTC) - timedelta(days=3)).date().isoformat()
            assessed = await client.command(f"assess VN-1002 {day} {FAIL4}", CHIEF)
            assert "At risk (2 of 3)" in assessed.text  # notices: factory, buyer, staff
            refusal = await client.command("outbox retry 0", CHIEF)
            outbox = await client.command("outbox", CHIEF)

            async def smtp_refused() -> str:
                dump = await table_dump(db, "delivery_channel")
                return dump if "SMTP login refused" in dump else ""

            await wait_until(smtp_refused)  # the dispatcher tried, and paused email
            await slack.wait(
                lambda: [p for p in staff_posts(slack) if "delivery paused" in p["text"]]
            )
            assert "SMTP login refused" in (await client.command("outbox", CHIEF)).text
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), 30)
        finally:
            if process.returncode is None:
                process.kill()
            smtp.stop()
    out, err = (await stdout).decode(), (await stderr).decode()
    assert process.returncode == 0, err[-3000:]
    assert "SMTP login refused" in err  # the configuration fault is logged…
    assert smtp.received == []
    rows = await table_dump(db, "outbox", "delivery_channel", "audit")
    found = leaks(
        out,
        err,
        health,
        [c.body for c in slack.calls],
        slack.responses,
        [f[1] for f in forged],
        [r.payload for r in (status, assessed, refusal, outbox)],
        rows,
    )
    assert found == [], found  # …and no secret anywhere


@pytest.mark.parametrize(
    ("args", "database_url"),
    [
        (("status", "VN-1001"), "postgresql+asyncpg://pnc:{pw}@127.0.0.1:{port}/pnc"),
        (("serve", "--port", "0"), "postgresql+asyncpg://pnc:{pw}@127.0.0.1:{port}/pnc"),
        (("status", "VN-1001"), "mysql+aiomysql://pnc:{pw}@127.0.0.1:{port}/pnc"),
    ],
    ids=["status", "serve", "unsupported-driver"],
)
def test_a_database_that_cannot_be_used_is_named_without_its_password(
    tmp_path: Path, args: tuple[str, ...], database_url: str
) -> None:
    env = environment(
        {
            "PNC_DATABASE_URL": database_url.format(pw=DB_PASSWORD, port=free_port()),
            "SLACK_BOT_TOKEN": TOKEN,
            "SLACK_SIGNING_SECRET": SIGNING,
            "PNC_SMTP_URL": f"smtp://pnc:{SMTP_PASSWORD}@127.0.0.1:{free_port()}",
        }
    )
    result = subprocess.run(
        [str(PNC_BOT), "--log-level", "debug", *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1, result.stderr
    assert result.stderr.strip(), "says what is wrong"
    assert leaks(result.stdout, result.stderr) == [], result.stderr
