"""``pnc-bot shell``: the Slack handlers on a console, driven through stdin."""

from __future__ import annotations

import subprocess
from pathlib import Path

from bot.usecases import imports
from bot.usecases.core import Core
from store.db import Database
from tests.conftest import EXAMPLES, MANAGER
from tests.e2e.test_cli import PNC_BOT, environment, run


def shell(
    lines: list[str], cwd: Path, env: dict[str, str], *args: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(PNC_BOT), "shell", *args],
        input="\n".join(lines) + "\n",
        cwd=cwd,
        env=environment(env),
        capture_output=True,
        text=True,
        timeout=120,
    )


async def test_the_shell_runs_the_slack_commands_without_slack(
    tmp_path: Path, db: Database, core: Core
) -> None:
    for kind in ("factories", "buyers", "subscriptions", "assessments"):
        await imports.run(core, kind, EXAMPLES / f"{kind}.csv", MANAGER)
    env = {"PNC_DATABASE_URL": db.url.render_as_string(hide_password=False)}
    result = shell(
        [
            "/pnc status VN-1001",
            "/pnc assess VN-1002 2026-11-01 CO-01,CO-02,OS-01,WT-01",
            "/pnc assess",
            "hello",
            "/pnc status <!channel>",
        ],
        tmp_path,
        env,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "*Persistently non-compliant*" in out
    assert "Status now: *At risk (2 of 3)*" in out
    assert "In Slack a form opens here: Record an assessment" in out
    assert "Commands start with /pnc" in out
    assert "`<!channel>` is not a valid factory id" in out  # decoded for the console
    # the factory's email, in Vietnamese: its subject is shown as it reads, not RFC 2047 encoded
    assert "] Cảnh báo nguy cơ không tuân thủ kéo dài (2/3)" in out, out
    assert "=?utf-8?" not in out.lower()
    assert "Traceback" not in result.stderr
    status = run("status", "VN-1002", "--json", cwd=tmp_path, env=env).stdout
    assert '"submitted_by": "shell:' in status


def test_the_shell_can_act_as_a_slack_user(tmp_path: Path, db: Database) -> None:
    env = {
        "PNC_DATABASE_URL": db.url.render_as_string(hide_password=False),
        "PNC_ADMINS": "U0BOSS",
    }
    result = shell(["/pnc status VN-1001"], tmp_path, env, "--as", "U0STRANGER")
    assert "`status` needs the viewer role. A manager can grant it: @U0BOSS" in result.stdout
