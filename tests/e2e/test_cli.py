"""The installed ``pnc-bot`` command, run as a user would: a separate process, in a folder that
is not the checkout, against SQLite (the embedded default) and PostgreSQL."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from store.db import Database
from tests.conftest import EXAMPLES

PNC_BOT = Path(sys.executable).with_name("pnc-bot")


def environment(extra: dict[str, str] | None = None) -> dict[str, str]:
    """This process's environment without any pnc-bot or Slack setting, plus ``extra``."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("PNC_", "SLACK_"))}
    return {**clean, **(extra or {})}


def run(
    *args: str, cwd: Path, env: dict[str, str] | None = None, ok: bool = True
) -> subprocess.CompletedProcess[str]:
    if not PNC_BOT.exists():
        pytest.fail(f"{PNC_BOT} is missing: install the project first (pip install '.[test]')")
    result = subprocess.run(
        [str(PNC_BOT), *args],
        cwd=cwd,
        env=environment(env),
        capture_output=True,
        text=True,
        timeout=120,
    )
    if ok and result.returncode != 0:
        raise AssertionError(f"pnc-bot {' '.join(args)} failed:\n{result.stderr}")
    return result


@pytest.fixture
def env(db: Database) -> dict[str, str]:
    """Point the command at this run's database (SQLite file or PostgreSQL)."""
    return {"PNC_DATABASE_URL": db.url.render_as_string(hide_password=False)}


def import_examples(cwd: Path, env: dict[str, str]) -> list[str]:
    return [
        run("import", kind, str(EXAMPLES / f"{kind}.csv"), cwd=cwd, env=env).stdout
        for kind in ("factories", "buyers", "subscriptions", "assessments")
    ]


#: what `pnc-bot status` has no use for (``bench/cli_startup.py``): the migrations, the
#: workers' parts, the progress bar, the re-evaluation (rules unchanged) and, on SQLite,
#: PostgreSQL's dialect and driver
NOT_FOR_STATUS = (
    "alembic",
    "aiohttp",
    "aiosmtplib",
    "slack_bolt",
    "slack_sdk",
    "prometheus_client",
    "rich",
    "bot.dispatcher",
    "bot.usecases.reevaluation",
    "sqlalchemy.dialects.postgresql",
    "asyncpg",
)


def test_status_imports_only_what_it_needs(
    tmp_path: Path, env: dict[str, str], db: Database
) -> None:
    """Every command starts a Python process: what it imports is most of what it takes."""
    if not db.is_sqlite:
        pytest.skip("the embedded default")
    import_examples(tmp_path, env)
    probe = (
        "import sys\n"
        "from bot.cli import app\n"
        "sys.argv = ['pnc-bot', 'status', 'VN-1001']\n"
        "try:\n    app()\nexcept SystemExit:\n    pass\n"
        f"print([m for m in {NOT_FOR_STATUS!r} if m in sys.modules], file=sys.stderr)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=tmp_path,
        env=environment(env),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "Persistently non-compliant" in result.stdout, result.stderr
    assert result.stderr.strip().splitlines()[-1] == "[]", result.stderr


def test_import_then_status_json(tmp_path: Path, env: dict[str, str]) -> None:
    out = import_examples(tmp_path, env)
    assert out[0].startswith("factories: 6 rows read; 6 added")
    assert "events recorded without notices" in out[3]
    status = json.loads(run("status", "vn-1001", "--json", cwd=tmp_path, env=env).stdout)
    assert {k: status[k] for k in ("factory_id", "country", "state", "label", "streak")} == {
        "factory_id": "VN-1001",
        "country": "VN",
        "state": "pnc",
        "label": "Persistently non-compliant",
        "streak": 3,
    }
    assert (status["threshold"], status["consecutive"]) == (4, 3)
    first = status["assessments"][0]
    assert set(first) >= {"assessed_on", "nc_count", "nc_issues", "counted"}
    assert (first["assessed_on"], first["nc_count"], first["counted"]) == ("2023-04-12", 5, True)
    again = import_examples(tmp_path, env)
    assert all(" 0 added" in line for line in again)


def test_status_text_shows_label_issues_consequences_and_buyers(
    tmp_path: Path, env: dict[str, str]
) -> None:
    import_examples(tmp_path, env)
    text = run("status", "VN-1001", cwd=tmp_path, env=env).stdout
    assert "State: Persistently non-compliant" in text
    assert "CO-02  Overtime not paid at the legal rate" in text
    assert "No more factory visits for the rest of the current cycle (it ends 2027-06-30)" in text
    assert "Subscribing buyers: Acme Outfitters, Nordic Wear AB" in text
    at_risk = run("status", "VN-1002", cwd=tmp_path, env=env).stdout
    assert "State: At risk (1 of 3)" in at_risk


def test_refusals_exit_1_with_one_clear_message(tmp_path: Path, env: dict[str, str]) -> None:
    import_examples(tmp_path, env)
    missing = run("status", "VN-1010", cwd=tmp_path, env=env, ok=False)
    assert missing.returncode == 1
    assert "There is no factory `VN-1010`. Did you mean `VN-1001`" in missing.stderr
    assert "Traceback" not in missing.stderr
    bad = tmp_path / "bad.csv"
    bad.write_bytes(b"factory_id,assessed_on,nc_issues\nVN-1001,2030-01-01,CO-01\nVN-1003,x,none\n")
    rejected = run("import", "assessments", str(bad), cwd=tmp_path, env=env, ok=False)
    assert rejected.returncode == 1
    assert "2 bad rows out of 2; nothing was imported" in rejected.stderr
    assert "line 2:" in rejected.stderr and "line 3:" in rejected.stderr


def test_issues_catalogue(tmp_path: Path) -> None:
    rows = json.loads(run("issues", "--json", cwd=tmp_path).stdout)
    assert {"code", "name", "cluster"} <= set(rows[0])
    assert len({r["cluster"] for r in rows}) == 8
    text = run("issues", "VN", cwd=tmp_path).stdout
    assert "Working Time" in text and "WT-01" in text
    assert run("issues", "XX", cwd=tmp_path, ok=False).returncode == 1


def test_embedded_default_needs_no_configuration(tmp_path: Path) -> None:
    """With nothing set, the bot keeps its database in ./var (SQLite)."""
    assert "database at revision" in run("db", "upgrade", cwd=tmp_path).stdout
    run("import", "factories", str(EXAMPLES / "factories.csv"), cwd=tmp_path)
    assert (tmp_path / "var" / "pnc.db").exists()
    assert json.loads(run("status", "KH-2001", "--json", cwd=tmp_path).stdout)["state"] == (
        "not_covered"
    )


def test_an_unreachable_database_is_reported_without_its_password(tmp_path: Path) -> None:
    url = "postgresql+asyncpg://pnc:s3cret-pw@127.0.0.1:9/pnc"
    result = run("status", "VN-1", cwd=tmp_path, env={"PNC_DATABASE_URL": url}, ok=False)
    assert result.returncode == 1
    assert "cannot use the database postgresql+asyncpg://pnc:***@127.0.0.1:9/pnc" in result.stderr
    assert "s3cret-pw" not in result.stderr + result.stdout
    assert "Traceback" not in result.stderr


def test_bad_configuration_names_the_variable(tmp_path: Path) -> None:
    result = run("issues", cwd=tmp_path, env={"PNC_TIMEZONE": "Mars/Olympus"}, ok=False)
    assert result.returncode == 1
    assert "PNC_TIMEZONE" in result.stderr and "unknown time zone" in result.stderr


def test_an_unknown_log_level_is_refused_with_the_choices(tmp_path: Path) -> None:
    result = run("--log-level", "verbose", "issues", cwd=tmp_path, ok=False)
    assert result.returncode == 2
    shown = " ".join(re.sub(r"[│╭╮╰╯─]", " ", result.stderr).split())  # out of its box
    assert "'verbose' is not one of 'debug', 'info', 'warning', 'error'" in shown, shown
    assert "Traceback" not in result.stderr
    assert "WT-01" in run("--log-level", "ERROR", "issues", cwd=tmp_path).stdout


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def served_log(cwd: Path, *args: str) -> str:
    """What ``pnc-bot <args>`` (a serve command) logs until it has answered a health check and
    stopped on SIGTERM."""
    port = _free_port()
    command = [str(arg).replace("{port}", str(port)) for arg in args]
    env = environment({"SLACK_BOT_TOKEN": "xoxb-x", "SLACK_SIGNING_SECRET": "s3cr3t-signing"})
    process = subprocess.Popen(
        [str(PNC_BOT), *command], cwd=cwd, env=env, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline, healthy = time.monotonic() + 30, False
        while time.monotonic() < deadline and not healthy and process.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2):
                    healthy = True
            except OSError:
                time.sleep(0.2)
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
    assert healthy and process.returncode == 0, stderr
    return stderr


def test_serve_logs_at_info_unless_a_level_is_given(tmp_path: Path) -> None:
    listening = "INFO bot.server: pnc-bot"
    serve = ("serve", "--host", "127.0.0.1", "--port", "{port}")
    assert listening in served_log(tmp_path, *serve)
    assert listening in served_log(
        tmp_path, "--log-level", "warning", *serve, "--log-level", "info"
    )
    for quiet in (("--log-level", "error", *serve), (*serve, "--log-level", "error")):
        log = served_log(tmp_path, *quiet)
        assert "INFO" not in log and "WARNING" not in log, (quiet, log)


def test_an_import_under_notified_events_names_the_factories_to_review(
    tmp_path: Path, env: dict[str, str]
) -> None:
    env = {**env, "PNC_OUTBOX_DIR": str(tmp_path / "outbox")}
    factories = tmp_path / "factories.csv"
    factories.write_text("factory_id,name,country,emails\nVN-7,Hue Sewing,VN,a@hue.example\n")
    failing = tmp_path / "failing.csv"
    failing.write_text(
        "factory_id,assessed_on,nc_issues\n"
        "VN-7,2024-01-10,CO-01;CO-02;OS-01;WT-01\nVN-7,2025-01-10,CO-01;CO-02;OS-01;WT-01\n"
    )
    late = tmp_path / "late.csv"
    late.write_text("factory_id,assessed_on,nc_issues\nVN-7,2024-06-01,none\n")
    run("import", "factories", str(factories), cwd=tmp_path, env=env)
    run("import", "assessments", str(failing), "--notify", cwd=tmp_path, env=env)
    run("outbox", "send", cwd=tmp_path, env=env)  # the warnings reach the factory
    out = run("import", "assessments", str(late), cwd=tmp_path, env=env).stdout
    assert "The history of 1 factories changed under events already notified" in out
    assert "staff must review them (`pnc-bot status ID`): VN-7." in out


async def test_outbox_retry_dead_sends_every_dead_notice_again_or_refuses_with_the_usage(
    tmp_path: Path, env: dict[str, str], db: Database
) -> None:
    from sqlalchemy import update

    from store.models import OUTBOX

    env = {**env, "PNC_OUTBOX_DIR": str(tmp_path / "outbox")}
    factories = tmp_path / "factories.csv"
    factories.write_text("factory_id,name,country,emails\nVN-7,Hue Sewing,VN,a@hue.example\n")
    failing = tmp_path / "failing.csv"
    failing.write_text(
        "factory_id,assessed_on,nc_issues\nVN-7,2024-01-10,CO-01;CO-02;OS-01;WT-01\n"
    )
    run("import", "factories", str(factories), cwd=tmp_path, env=env)
    run("import", "assessments", str(failing), "--notify", cwd=tmp_path, env=env)
    async with db.transaction(write=True) as s:  # as if every delivery had failed for good
        await (await s.connection()).execute(
            update(OUTBOX).values(status="dead", last_error="550 5.7.1 denied")
        )
    refused = run("outbox", "retry", "dead", "at_risk_warnin", cwd=tmp_path, env=env, ok=False)
    assert refused.returncode == 1
    assert "not a notice kind" in refused.stderr and "`at_risk_warning`" in refused.stderr
    assert "pnc-bot outbox retry <notice number> | dead [kind] [factory]" in refused.stderr
    out = run("outbox", "retry", "dead", "at_risk_warning", "vn-7", cwd=tmp_path, env=env).stdout
    assert out.startswith("1 dead notice (at_risk_warning) about VN-7 is due again")
    again = run("outbox", "retry", "dead", cwd=tmp_path, env=env).stdout
    assert again.startswith("0 dead notices: nothing to send again")
    listed = json.loads(run("outbox", "list", "--json", cwd=tmp_path, env=env).stdout)
    assert listed["counts"]["dead"] == 0
    one = run("outbox", "retry", "1", cwd=tmp_path, env=env).stdout
    assert re.fullmatch(r"notice #1 \(at_risk_warning to Hue Sewing\) is due again\n", one)
    nothing = run("outbox", "retry", cwd=tmp_path, env=env, ok=False)
    assert nothing.returncode == 1 and "Give the notice's number" in nothing.stderr


def test_a_port_in_use_is_refused_as_such_not_as_the_database(tmp_path: Path) -> None:
    """``serve --port`` on a port another program holds: one line saying so, exit 1; the
    database is not blamed, and nothing is left running."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        secrets = {"SLACK_BOT_TOKEN": "xoxb-x", "SLACK_SIGNING_SECRET": "s3cr3t-signing"}
        result = run(
            "serve", "--host", "127.0.0.1", "--port", str(port), cwd=tmp_path, env=secrets, ok=False
        )
    assert result.returncode == 1, result.stderr
    assert f"Cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "--port" in result.stderr
    assert "database" not in result.stderr
    assert "Traceback" not in result.stderr and "s3cr3t-signing" not in result.stderr
