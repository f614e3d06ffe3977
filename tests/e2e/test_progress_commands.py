"""Progress Report One end to end (#13 §2, §3): ``/pnc assess … report <date>`` and
``/pnc progress …`` through signed HTTP requests to the real server, as the roles allowed and
not, with ``status`` showing each issue's state; and through the installed ``pnc-bot``: the
shell with piped ``/pnc`` lines, ``pnc-bot progress …`` and ``pnc-bot status … --json``."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

from sqlalchemy import select

from bot.usecases.core import Core
from store.db import Database
from store.models import Assessment, AuditEntry, Reminder
from tests.e2e.conftest import ASSESSOR, VIEWER, SlackClient
from tests.e2e.test_cli import import_examples, run
from tests.e2e.test_shell import shell
from tests.e2e.test_slack import submission

FAIL4 = "CO-01,CO-02,OS-01,WT-01"


async def test_an_assessment_with_its_report_date_then_the_progress_report_from_slack(
    client: SlackClient, core: Core, people: None
) -> None:
    early = await client.command(f"assess VN-1003 2026-11-10 {FAIL4} report 2026-11-09", ASSESSOR)
    assert "The report date 2026-11-09 is before the assessment (2026-11-10)" in early.text
    late = await client.command(f"assess VN-1003 2026-11-10 {FAIL4} report 2026-11-21", ASSESSOR)
    assert "The report date 2026-11-21 is in the future" in late.text
    malformed = await client.command(f"assess VN-1003 2026-11-10 {FAIL4} report 12/11", ASSESSOR)
    assert "is not a date (YYYY-MM-DD)" in malformed.text
    recorded = await client.command(
        f"assess VN-1003 2026-11-10 {FAIL4} unannounced report 2026-11-12", ASSESSOR
    )
    assert "At risk (1 of 3)" in recorded.text
    assert "Progress Report One is due on 2026-12-12" in recorded.text
    async with core.db.transaction() as s:
        (row,) = (
            await s.exec(select(Assessment).where(Assessment.assessed_on == date(2026, 11, 10)))
        ).scalars()
        kinds = (await s.exec(select(Reminder.kind, Reminder.subject))).all()
    assert str(row.report_on) == "2026-11-12" and row.kind == "unannounced"
    subject = f"assessment:{row.id}"
    assert sorted(tuple(k) for k in kinds if k[1] == subject) == [
        ("progress_due", subject),
        ("progress_overdue", subject),
    ]
    status = await client.command("status VN-1003", VIEWER)
    assert "*Remediation* of the assessment of 2026-11-10 (report of 2026-11-12)" in status.text
    assert "0 of 4 issues reported fixed, 0 verified" in status.text
    assert "Progress Report One: due 2026-12-12" in status.text
    assert "`/pnc progress VN-1003 YYYY-MM-DD fixed code,code,…|none`" in status.text

    denied = await client.command("progress VN-1003 2026-11-18 fixed CO-01", VIEWER)
    assert "`progress` needs the assessor role" in denied.text
    usage = await client.command("progress VN-1003 2026-11-18 CO-01", ASSESSOR)
    assert "/pnc progress &lt;factory&gt; &lt;YYYY-MM-DD&gt; fixed" in usage.text
    other = await client.command("progress VN-1003 2026-11-18 fixed CO-01,OS-02", ASSESSOR)
    assert "The assessment of `VN-1003` on 2026-11-10 did not find `OS-02`" in other.text
    future = await client.command("progress VN-1003 2026-11-21 fixed CO-01", ASSESSOR)
    assert "The progress report date 2026-11-21 is in the future" in future.text
    none_yet = await client.command("progress VN-1004 2026-11-18 fixed none", ASSESSOR)
    assert "answering the assessment of 2025-01-14: nothing reported fixed" in none_yet.text
    assert "A later assessment (2025-11-05) is the one tracked now" in none_yet.text
    done = await client.command("progress vn-1003 2026-11-18 fixed co-01 CO-02", ASSESSOR)
    assert (
        "Recorded the progress report of `VN-1003` (Mekong Apparel JSC) of 2026-11-18, answering "
        "the assessment of 2026-11-10: 2 issues reported fixed (`CO-01`, `CO-02`)"
    ) in done.text
    assert "Now: 2 of 4 issues reported fixed, 0 verified." in done.text
    twice = await client.command("progress VN-1003 2026-11-18 fixed none", ASSESSOR)
    assert "is already recorded" in twice.text
    after = await client.command("status VN-1003", VIEWER)
    assert "Progress Report One: received 2026-11-18 (due 2026-12-12)" in after.text
    assert "• `CO-01` " in after.text and ": *reported fixed 2026-11-18*" in (after.text)
    assert "• `WT-01` " in after.text and ": *open*" in after.text
    async with core.db.transaction() as s:
        statuses = (await s.exec(select(Reminder.status).where(Reminder.subject == subject))).all()
        audited = (
            await s.exec(select(AuditEntry.subject).where(AuditEntry.action == "progress.record"))
        ).all()
    assert sorted(str(x[0]) for x in statuses) == ["cancelled", "cancelled"]
    assert sorted(str(a[0]) for a in audited) == ["VN-1003", "VN-1004"]


async def test_the_form_takes_the_report_date_and_shows_its_refusal_under_it(
    client: SlackClient, core: Core, people: None
) -> None:
    form = submission(ASSESSOR, "VN-1003", "2026-11-10", FAIL4.split(","))
    values = form["view"]["state"]["values"]
    values["report"] = {"report": {"type": "datepicker", "selected_date": "2026-11-01"}}
    status, answer = await client.interaction(form)
    assert status == 200 and answer["response_action"] == "errors"
    assert "is before the assessment (2026-11-10)" in answer["errors"]["report"]
    values["report"]["report"]["selected_date"] = "2026-11-14"
    status, answer = await client.interaction(form)
    assert status == 200 and answer == {}
    async with core.db.transaction() as s:
        (row,) = (
            await s.exec(select(Assessment).where(Assessment.assessed_on == date(2026, 11, 10)))
        ).scalars()
    assert str(row.report_on) == "2026-11-14"
    status_reply = await client.command("status VN-1003", VIEWER)
    assert "Progress Report One: due 2026-12-14" in status_reply.text


def test_the_shell_and_the_command_line_record_a_progress_report(
    tmp_path: Path, db: Database
) -> None:
    env = {
        "PNC_DATABASE_URL": db.url.render_as_string(hide_password=False),
        "PNC_OUTBOX_DIR": str(tmp_path / "outbox"),
        "PNC_STAFF_CHANNEL": "C0STAFF",
    }
    import_examples(tmp_path, env)
    result = shell(
        [
            f"/pnc assess VN-1003 2026-11-10 {FAIL4} report 2026-11-12",
            "/pnc progress VN-1003 2026-11-18 fixed CO-01",
        ],
        tmp_path,
        env,
    )
    assert result.returncode == 0, result.stderr
    assert "Recorded the progress report of `VN-1003`" in result.stdout
    refused = run(
        "progress", "VN-1003", "2026-11-19", "fixed", "OS-02", cwd=tmp_path, env=env, ok=False
    )
    assert refused.returncode == 1
    assert "did not find `OS-02` (did you mean `OS-01`" in refused.stderr
    bad = run("progress", "VN-1003", "2026-11-19", "OS-01", cwd=tmp_path, env=env, ok=False)
    assert "Usage: `pnc-bot progress <factory> <YYYY-MM-DD> fixed" in bad.stderr
    out = run("progress", "VN-1003", "2026-11-19", "fixed", "CO-02,OS-01", cwd=tmp_path, env=env)
    assert (
        "Recorded the progress report of VN-1003 (Mekong Apparel JSC) of 2026-11-19, answering "
        "the assessment of 2026-11-10: 2 issues reported fixed (CO-02, OS-01)"
    ) in out.stdout
    assert "Now: 3 of 4 issues reported fixed, 0 verified." in out.stdout
    status = json.loads(run("status", "VN-1003", "--json", cwd=tmp_path, env=env).stdout)
    remediation = status["remediation"]
    assert remediation["assessment"]["assessed_on"] == "2026-11-10"
    assert remediation["assessment"]["report_on"] == "2026-11-12"
    assert remediation["progress_report"]["due_on"] == "2026-12-12"
    assert remediation["progress_report"]["state"] == "received"
    assert remediation["progress_report"]["reported_on"] == "2026-11-18"
    assert {i["code"]: i["state"] for i in remediation["issues"]} == {
        "CO-01": "reported_fixed",
        "CO-02": "reported_fixed",
        "OS-01": "reported_fixed",
        "WT-01": "open",
    }
    assert remediation["counts"]["reported"] == 3
    text = run("status", "VN-1003", cwd=tmp_path, env=env).stdout
    assert "Remediation of the assessment of 2026-11-10 (report of 2026-11-12)" in text
    assert "  WT-01    open" in text
