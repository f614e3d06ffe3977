"""``pnc-bot demo``: the first command a new user runs."""

from __future__ import annotations

import email
import email.policy
import re
import subprocess
import time
from pathlib import Path

from tests.e2e.test_cli import PNC_BOT, environment


def test_the_demo_tells_the_whole_story_and_leaves_only_its_emails(tmp_path: Path) -> None:
    # a configured production database must never be touched by the demo
    env = environment(
        {
            "PNC_DATABASE_URL": "postgresql+asyncpg://prod:secret@127.0.0.1:9/prod",
            "PNC_SMTP_URL": "smtp://127.0.0.1:9",
        }
    )
    started = time.monotonic()
    result = subprocess.run(
        [str(PNC_BOT), "demo"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    assert elapsed < 15
    out = result.stdout
    for moment in (
        "At risk (1 of 3)",
        "At risk (2 of 3)",
        "process_stopped",
        "*Persistently non-compliant*",
        "inspectorate_referral",
        "Quarterly buyer call",
        "Readmission under review",
        "Unannounced verification visit tomorrow",
        "Readmission of `VN-1001` approved",
        "0 waiting, 0 retrying, 0 dead",
    ):
        assert moment in out, moment
    # Cambodia enabled part-way through: held for review, then one event released
    held = out.index("*Rules changed — review needed*: Cambodia")
    listed = out.index("you › /pnc review\n", held)
    released = re.search(r"you › /pnc review release (\d+)\n", out[listed:])
    assert released is not None and f"*#{released[1]}* `KH-2001`" in out[listed:]
    after = out[listed + released.end() :]
    assert after.startswith(f"\nReleased #{released[1]}: the designation")
    assert "inspection@mlvt.example.gov.kh" in after and "*Urgent*" in after
    assert "Traceback" not in result.stderr and "secret" not in out + result.stderr
    # the reminder of the visit comes the day before the visit, as its text says
    found = re.search(r"visit tomorrow\*, (\d{4}-\d{2}-\d{2})", out)
    assert found is not None
    before, after = out[: found.start()], out[found.end() :]
    assert f"/pnc readmission unannounced VN-1001 {found[1]}" in before
    assert "moves 7 days ahead" in before and "moves 1 day ahead" in after
    # the steps that say something are numbered 1, 2, 3, … without gaps
    numbers = [int(n) for n in re.findall(r"^── (\d+)\. ", out, re.MULTILINE)]
    assert numbers == list(range(1, len(numbers) + 1)) and len(numbers) >= 10, numbers
    (folder,) = [p for p in tmp_path.iterdir()]  # nothing else left behind (no ./var)
    assert folder.name.startswith("pnc-demo-") and str(folder) in out
    emls = sorted(folder.glob("*.eml"))
    assert len(emls) == len(list(folder.glob("*.html"))) >= 15
    kinds = set()
    for path in emls:
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        kinds.add(str(message["PNC-Notice"]))
        assert message.get_content_type() == "multipart/alternative"
    assert kinds >= {
        "at_risk_warning",
        "process_stopped",
        "pnc_designated",
        "inspectorate_referral",
        "buyer_call_reminder",
        "readmission_applied",
        "readmission_approved",
    }


def demo(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(PNC_BOT), "demo", *args],
        cwd=cwd,
        env=environment(env),
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_demo_reads_no_setting_from_the_environment(tmp_path: Path) -> None:
    bad = {
        "PNC_DELIVERY_LEASE_SECONDS": "1",
        "PNC_TIMEZONE": "Mars/Olympus",
        "PNC_CALL_REMINDER_DAYS": "soon",
        "PNC_STAFF_CHANNEL": "C0PRODUCTION",
        "PNC_ADMINS": "U0PRODUCTION",
        "PNC_SLACK_API_URL": "http://127.0.0.1:9/api/",
    }
    result = demo("--out", str(tmp_path / "emails"), cwd=tmp_path, env=bad)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert "[posted to C0PNCSTAFF]" in result.stdout and "PRODUCTION" not in result.stdout
    assert len(list((tmp_path / "emails").glob("*.eml"))) >= 15


def test_a_folder_the_emails_cannot_go_to_is_refused_before_the_story(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("")
    for out in (tmp_path / "a-file" / "emails", Path("/proc/pnc-demo")):
        result = demo("--out", str(out), cwd=tmp_path, env={})
        assert result.returncode == 1, (out, result.stdout)
        assert result.stderr.startswith(f"error: Cannot write the emails to {out}: "), result.stderr
        assert "Give a folder you can write to with --out." in result.stderr
        assert result.stdout == ""  # nothing played, no "Done. 0 emails"
    assert [p.name for p in tmp_path.iterdir()] == ["a-file"]
