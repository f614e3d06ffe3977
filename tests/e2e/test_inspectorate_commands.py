"""The Labour Inspectorate's commands end to end (#12): ``/pnc referral send``,
``/pnc inspectorate visit`` and ``/pnc readmission report`` through signed HTTP requests to the
real server, as the roles allowed and not; and through the installed ``pnc-bot``: the shell with
piped ``/pnc`` lines, and ``pnc-bot status VN-… --json`` showing the referral's log."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import select

from bot.countries import load_config
from bot.settings import Settings
from bot.usecases import assessments
from bot.usecases.core import Core
from store.db import Database
from store.models import AuditEntry, OutboxMessage
from tests.conftest import ASSESSOR as ASSESSOR_ACTOR
from tests.conftest import FrozenClock
from tests.e2e.conftest import ASSESSOR, MANAGER, VIEWER, SlackClient
from tests.e2e.test_cli import import_examples, run
from tests.e2e.test_shell import shell

FAIL4 = "CO-01,CO-02,OS-01,WT-01"
INSPECTION = "inspection@molisa.example"
REPORT = "https://drive.example/vn-1001/improvement-report.pdf"


async def commands_audited(core: Core, user: str) -> list[tuple[str, str]]:
    async with core.db.transaction() as s:
        stmt = (
            select(AuditEntry.subject, AuditEntry.outcome)
            .where(AuditEntry.actor == user, AuditEntry.action == "command")
            .order_by(AuditEntry.id)
        )
        return [(str(subject), str(outcome)) for subject, outcome in (await s.exec(stmt)).all()]


async def test_a_manager_sends_a_held_referral_from_slack(
    client: SlackClient,
    core: Core,
    people: None,
    db: Database,
    settings: Settings,
    clock: FrozenClock,
) -> None:
    for user in (VIEWER, ASSESSOR):
        refused = await client.command("referral send VN-1002", user)
        assert "`referral send` needs the manager role" in refused.text
    # imported designations notified nobody: no referral waits
    nothing = await client.command("referral send VN-1001", MANAGER)
    assert "No referral of `VN-1001` to the Labour Inspectorate is waiting" in nothing.text
    # VN-1002 designated by a process that had no Inspectorate address (an import elsewhere)
    bare = settings.model_copy(update={"inspectorate_email": None})
    elsewhere = Core(db, load_config(bare), bare, clock)
    for day in ("2026-10-01", "2026-11-01"):
        await assessments.record(elsewhere, ASSESSOR_ACTOR, "VN-1002", day, FAIL4)
    waiting = await client.command("status VN-1002", VIEWER)
    assert "Referral of the designation of 2026-11-01: _waiting for an Inspectorate address_" in (
        waiting.text
    )
    # the server has the address: a manager sends it
    sent = await client.command("referral send vn-1002", MANAGER)
    assert (
        f"The referral of `VN-1002` (Hanoi Knitwear Ltd.) to the Labour Inspectorate goes out "
        f"now, to {INSPECTION}"
    ) in sent.text
    async with core.db.transaction() as s:
        (row,) = (
            await s.exec(select(OutboxMessage).where(OutboxMessage.kind == "inspectorate_referral"))
        ).scalars()
    assert row.status == "pending" and row.addresses == [INSPECTION]
    shown = await client.command("status VN-1002", VIEWER)
    assert f"Referral of the designation of 2026-11-01: waiting to be sent to {INSPECTION}" in (
        shown.text
    )
    again = await client.command("referral send VN-1002", MANAGER)
    assert "No referral of `VN-1002`" in again.text
    assert await commands_audited(core, MANAGER) == [
        ("/pnc referral send VN-1001", "refused"),
        ("/pnc referral send vn-1002", "ok"),
        ("/pnc referral send VN-1002", "refused"),
    ]
    assert await commands_audited(core, ASSESSOR) == [("/pnc referral send VN-1002", "refused")]


async def test_visits_and_reports_from_slack_hold_the_approval_until_each_has_its_report(
    client: SlackClient, core: Core, people: None
) -> None:
    refused = await client.command("inspectorate visit VN-1001 2026-11-01", VIEWER)
    assert "`inspectorate visit` needs the assessor role" in refused.text
    recorded = await client.command("inspectorate visit VN-1001 2026-11-01", ASSESSOR)
    assert (
        "Recorded the Labour Inspectorate's visit to `VN-1001` (Saigon Stitch Co.) on 2026-11-01"
    ) in recorded.text
    assert "approved only once the report is added" in recorded.text
    twice = await client.command("inspectorate visit VN-1001 2026-11-01", ASSESSOR)
    assert "is already recorded" in twice.text
    future = await client.command("inspectorate visit VN-1001 2026-11-21", ASSESSOR)
    assert "The visit date 2026-11-21 is in the future" in future.text
    unknown = await client.command("inspectorate visit VN-1010 2026-11-01", ASSESSOR)
    assert "There is no factory `VN-1010`" in unknown.text
    early = await client.command(f"readmission report VN-1001 {REPORT}", ASSESSOR)
    assert "has no readmission application under review" in early.text
    applied = await client.command(
        "readmission apply VN-1001 https://drive.example/vn-1001/evidence", ASSESSOR
    )
    assert "Readmission under review" in applied.text
    waits = await client.command("readmission approve VN-1001", MANAGER)
    assert "has no improvement report for the Labour Inspectorate's visit of 2026-11-01" in (
        waits.text
    )
    assert "`readmission report VN-1001 &lt;link&gt;`" in waits.text
    denied = await client.command(f"readmission report VN-1001 {REPORT}", VIEWER)
    assert "`readmission report` needs the assessor role" in denied.text
    bad = await client.command("readmission report VN-1001 report.pdf", ASSESSOR)
    assert "is not a link to the Inspectorate improvement report" in bad.text
    added = await client.command(f"readmission report VN-1001 <{REPORT}|the report>", ASSESSOR)
    assert f"Added the improvement report {REPORT}" in added.text
    assert "it answers the Labour Inspectorate's visit of 2026-11-01" in added.text
    history = await client.command("history VN-1001", VIEWER)
    assert f"• Visit of 2026-11-01: improvement report {REPORT}" in history.text
    approved = await client.command("readmission approve VN-1001 all resolved", MANAGER)
    assert "Readmission of `VN-1001` approved" in approved.text
    assert await commands_audited(core, VIEWER) == [
        ("/pnc inspectorate visit VN-1001 2026-11-01", "refused"),
        (f"/pnc readmission report VN-1001 {REPORT}", "refused"),
        ("/pnc history VN-1001", "ok"),
    ]
    async with core.db.transaction() as s:
        actions = (
            await s.exec(
                select(AuditEntry.action).where(
                    AuditEntry.action.in_(("inspectorate.visit", "readmission.report"))
                )
            )
        ).all()
    assert sorted(tuple(a) for a in actions) == [("inspectorate.visit",), ("readmission.report",)]


def test_the_shell_records_visits_and_reports_and_status_json_logs_the_referral(
    tmp_path: Path, db: Database
) -> None:
    env = {
        "PNC_DATABASE_URL": db.url.render_as_string(hide_password=False),
        "PNC_OUTBOX_DIR": str(tmp_path / "outbox"),
        "PNC_STAFF_CHANNEL": "C0STAFF",
    }
    import_examples(tmp_path, env)
    lines = [
        "/pnc assess VN-1002 2026-10-01 CO-01,CO-02,OS-01,WT-01",
        "/pnc assess VN-1002 2026-11-01 CO-01,CO-02,OS-01,WT-01",
        "/pnc referral send VN-1002",
        "/pnc inspectorate visit VN-1002 2026-11-15",
        "/pnc readmission apply VN-1002 https://drive.example/vn-1002/evidence",
        "/pnc readmission approve VN-1002",
        "/pnc readmission report VN-1002 https://drive.example/vn-1002/report.pdf",
        "/pnc readmission approve VN-1002",
    ]
    result = shell(lines, tmp_path, env)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "Traceback" not in result.stderr
    assert "the Labour Inspectorate (referral, waiting)" in out
    assert "`/pnc referral send VN-1002`" in out
    assert "No Labour Inspectorate address is configured for Viet Nam" in out
    assert "Recorded the Labour Inspectorate's visit to `VN-1002`" in out
    assert "has no improvement report for the Labour Inspectorate's visit of 2026-11-15" in out
    assert "it answers the Labour Inspectorate's visit of 2026-11-15" in out
    assert "Readmission of `VN-1002` approved" in out
    # as someone with no role, the same lines are refused
    stranger = shell(
        ["/pnc inspectorate visit VN-1002 2026-11-16", "/pnc referral send VN-1002"],
        tmp_path,
        env,
        "--as",
        "U0STRANGER",
    )
    assert "`inspectorate visit` needs the assessor role" in stranger.stdout
    assert "`referral send` needs the manager role" in stranger.stdout

    status = json.loads(run("status", "VN-1002", "--json", cwd=tmp_path, env=env).stdout)
    (referral,) = status["referrals"]
    assert referral["status"] == "held" and referral["delivered"] is False
    assert referral["designated_on"] == "2026-11-01" and referral["addresses"] == []
    assert referral["sent_at"] is None and referral["language"] == "vi"
    (visit,) = status["inspectorate_visits"]
    assert visit["visited_on"] == "2026-11-15"
    assert visit["report"] == "https://drive.example/vn-1002/report.pdf"
    text = run("status", "VN-1002", cwd=tmp_path, env=env).stdout
    assert "referral of the designation of 2026-11-01: waiting for an Inspectorate address" in text

    # the address configured: the next start sends it
    configured = {**env, "PNC_INSPECTORATE_EMAIL": INSPECTION}
    run("outbox", "send", cwd=tmp_path, env=configured)
    status = json.loads(run("status", "VN-1002", "--json", cwd=tmp_path, env=configured).stdout)
    (referral,) = status["referrals"]
    assert referral["status"] == "sent" and referral["delivered"] is True
    assert referral["addresses"] == [INSPECTION] and referral["sent_at"] is not None
    emls = [p.read_text(encoding="utf-8") for p in (tmp_path / "outbox").glob("*.eml")]
    assert sum("PNC-Notice: inspectorate_referral" in m for m in emls) == 1
