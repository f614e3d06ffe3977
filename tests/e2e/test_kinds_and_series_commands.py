"""Advisory and verification visits, and quarterly buyer-call series, end to end: through signed
HTTP requests to the bot's server, and through the installed ``pnc-bot`` (import, status, shell)
against SQLite and PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path

from store.db import Database
from tests.e2e.conftest import ASSESSOR, MANAGER, VIEWER, SlackClient
from tests.e2e.test_cli import import_examples, run
from tests.e2e.test_shell import shell

FAIL4 = "CO-01,CO-02,OS-01,WT-01"


async def test_visits_are_recorded_and_shown_uncounted_in_slack(
    client: SlackClient, people: None
) -> None:
    before = await client.command("status VN-1003", VIEWER)
    label = before.text.splitlines()[1]

    advisory = await client.command(f"assess VN-1003 2026-11-01 {FAIL4} advisory", ASSESSOR)
    assert "Recorded the advisory visit of *VN-1003" in advisory.text
    assert "Not counted (advisory visit)" in advisory.text
    assert f"Status now: {label}" in advisory.text  # unchanged

    amended = await client.command(
        "amend VN-1003 2026-11-01 verification it verified a progress report", MANAGER
    )
    assert "Amended the assessment of `VN-1003` on 2026-11-01" in amended.text
    history = await client.command("history VN-1003", VIEWER)
    assert "2026-11-01: 4 issues, not counted (verification visit)" in history.text
    status = await client.command("status VN-1003", VIEWER)
    assert status.text.splitlines()[1] == label

    wrong = await client.command(f"assess VN-1003 2026-11-02 {FAIL4} spot", ASSESSOR)
    assert "`SPOT` is not a public-reporting issue code" in wrong.text  # a code, not a kind


async def test_a_quarterly_series_of_buyer_calls_from_slack(
    client: SlackClient, people: None
) -> None:
    added = await client.command("calls add 2027-01-31 14:30 quarterly", MANAGER)
    assert added.text.startswith(
        "Quarterly buyer calls added: every 3 months on day 31 (the month's last day when it is "
        "shorter) at 14:30, from 2027-01-31. The next: 2027-01-31, 2027-04-30, 2027-07-31, "
        "2027-10-31."
    ), added.text
    listed = (await client.command("calls list", MANAGER)).text
    assert "*Quarterly buyer calls* — every 3 months on day 31" in listed
    assert "• 2027-04-30 14:30 — agenda and buyer lists 2027-04-27 14:30" in listed

    removed = await client.command("calls remove 2027-04-30", MANAGER)
    assert "Removed 1 buyer call on 2027-04-30" in removed.text
    listed = (await client.command("calls list", MANAGER)).text
    assert "2027-04-30" not in listed and "• 2028-01-31 14:30" in listed  # the series goes on

    ended = await client.command("calls remove 2027-07-31 series", MANAGER)
    assert ended.text == (
        "Ended the quarterly buyer calls from 2027-07-31 on: removed 3 calls (2027-07-31, "
        "2027-10-31, 2028-01-31); their reminders are cancelled. The earlier call stays: "
        "2027-01-31 14:30."
    )
    listed = (await client.command("calls list", MANAGER)).text
    assert "Quarterly" not in listed and "• 2027-01-31 14:30" in listed

    await client.command("calls add 2027-02-15", MANAGER)
    alone = await client.command("calls remove 2027-02-15 series", MANAGER)
    assert "The buyer call on 2027-02-15 is not part of a series." in alone.text
    nothing = await client.command("calls remove 2027-02-16 series", MANAGER)
    assert "There is no buyer call `2027-02-16`" in nothing.text
    monthly = await client.command("calls add 2027-03-01 monthly", MANAGER)
    assert "`monthly` is neither a time of day (HH:MM) nor `quarterly`" in monthly.text
    refused = await client.command("calls add 2027-03-01 quarterly", ASSESSOR)
    assert "`calls add` needs the manager role" in refused.text


def test_the_command_line_imports_visits_and_shows_them_uncounted(
    tmp_path: Path, db: Database
) -> None:
    env = {"PNC_DATABASE_URL": db.url.render_as_string(hide_password=False)}
    import_examples(tmp_path, env)
    before = json.loads(run("status", "VN-1003", "--json", cwd=tmp_path, env=env).stdout)
    path = tmp_path / "visits.csv"
    path.write_text(
        "factory_id,assessed_on,nc_issues,kind\n"
        f'VN-1003,2026-05-04,"{FAIL4}",advisory\n'
        f'VN-1003,2026-06-04,"{FAIL4}",Verification\n',
        encoding="utf-8",
    )
    out = run("import", "assessments", str(path), cwd=tmp_path, env=env).stdout
    assert out.startswith("assessments: 2 rows read; 2 added"), out
    status = json.loads(run("status", "VN-1003", "--json", cwd=tmp_path, env=env).stdout)
    assert (status["state"], status["streak"]) == (before["state"], before["streak"])
    visits = [a for a in status["assessments"] if a["assessed_on"] in ("2026-05-04", "2026-06-04")]
    assert [(a["kind"], a["counted"], a["not_counted"]) for a in visits] == [
        ("advisory", False, "kind_not_counted"),
        ("verification", False, "kind_not_counted"),
    ]
    text = run("status", "VN-1003", cwd=tmp_path, env=env).stdout
    assert "2026-06-04  4 issues  not counted (verification visit)" in text, text

    bad = tmp_path / "bad.csv"
    bad.write_text("factory_id,assessed_on,nc_issues,kind\nVN-1003,2026-07-04,none,spot\n")
    refused = run("import", "assessments", str(bad), cwd=tmp_path, env=env, ok=False)
    assert refused.returncode == 1
    assert "spot is not an assessment kind" in refused.stderr
    assert "regular, unannounced, advisory or verification" in refused.stderr


def test_the_shell_takes_visits_and_quarterly_calls(tmp_path: Path, db: Database) -> None:
    env = {"PNC_DATABASE_URL": db.url.render_as_string(hide_password=False)}
    import_examples(tmp_path, env)
    result = shell(
        [
            f"/pnc assess VN-1003 2026-11-03 {FAIL4} advisory",
            "/pnc history VN-1003",
            "/pnc calls add 2031-01-31 10:00 quarterly",
            "/pnc calls remove 2031-04-30",
            "/pnc calls list",
            "/pnc calls remove 2031-07-31 series",
            "/pnc calls list",
        ],
        tmp_path,
        env,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "Not counted (advisory visit)" in out
    assert "2026-11-03: 4 issues, not counted (advisory visit)" in out
    assert "The next: 2031-01-31, 2031-04-30, 2031-07-31, 2031-10-31." in out
    assert "Removed 1 buyer call on 2031-04-30" in out
    assert "• 2032-01-31 10:00" in out  # the series went on after the removal
    assert "Ended the quarterly buyer calls from 2031-07-31 on: removed 3 calls" in out
    assert out.rstrip().endswith("agenda and buyer lists 2031-01-28 10:00"), out[-400:]
    assert "Traceback" not in result.stderr
    status = json.loads(run("status", "VN-1003", "--json", cwd=tmp_path, env=env).stdout)
    (visit,) = [a for a in status["assessments"] if a["assessed_on"] == "2026-11-03"]
    assert (visit["kind"], visit["counted"]) == ("advisory", False)
