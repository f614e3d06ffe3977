"""The history chart in ``status`` end to end (#13): ``/pnc status`` through signed HTTP requests
to the real server, and ``pnc-bot status`` through the installed command, show a factory's
latest assessments as a one-line sparkline with its words beside it — every count, the
threshold and whether each assessment failed, passed or did not count, so that a screen reader
says all the picture shows. A factory the framework does not cover has no chart."""

from __future__ import annotations

from pathlib import Path

from tests.e2e.conftest import VIEWER, SlackClient
from tests.e2e.test_cli import env, import_examples, run

__all__ = ["env"]  # the command line's database, a fixture

#: the sample VN-1001 (bot/data/examples): three failing assessments
DESIGNATED = "▇▆█  5 → 4 → 6 issues — threshold 4; 3 assessments, oldest first: fails, fails, fails"
#: the sample VN-1005: two assessments before public reporting began, then one that passes
BEFORE = "before public reporting began"
EARLY = (
    f"··▄  4 → 5 → 2 issues — threshold 4; 3 assessments, oldest first: not counted ({BEFORE}), "
    f"not counted ({BEFORE}), passes"
)


async def test_slack_status_shows_the_sparkline_with_its_words(
    client: SlackClient, people: None
) -> None:
    designated = await client.command("status VN-1001", VIEWER)
    assert f"*History:* {DESIGNATED}" in designated.text
    early = await client.command("status vn-1005", VIEWER)
    assert f"*History:* {EARLY}" in early.text
    # the chart comes before the assessments it sums up
    assert designated.text.index("*History:*") < designated.text.index("*Last assessments*")
    uncovered = await client.command("status KH-2001", VIEWER)
    assert "Not covered by the PNC framework" in uncovered.text
    assert "History:" not in uncovered.text


def test_cli_status_shows_the_sparkline_with_its_words(tmp_path: Path, env: dict[str, str]) -> None:
    import_examples(tmp_path, env)
    text = run("status", "VN-1001", cwd=tmp_path, env=env).stdout
    assert f"\nHistory: {DESIGNATED}\n" in text
    assert text.index("History:") < text.index("Last assessments")
    assert f"History: {EARLY}" in run("status", "VN-1005", cwd=tmp_path, env=env).stdout
    assert "History:" not in run("status", "KH-2001", cwd=tmp_path, env=env).stdout
