"""PostgreSQL goes away while the bot runs: commands in the gap get a plain "try again", and the
bot carries on by itself once the database is back."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.usecases.core import Core
from tests.conftest import BACKENDS
from tests.e2e.conftest import ASSESSOR, SlackClient

pytestmark = [
    pytest.mark.skipif("postgresql" not in BACKENDS, reason="PNC_TEST_BACKENDS excludes it"),
    pytest.mark.skipif(shutil.which("pg_ctlcluster") is None, reason="needs pg_ctlcluster"),
    pytest.mark.parametrize("database", ["postgresql"], indirect=True),
]


def cluster(action: str) -> None:
    version = sorted(p.name for p in Path("/etc/postgresql").iterdir())[-1]
    subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", action],
        check=True,
        capture_output=True,
        timeout=120,
    )


def wait_until_ready() -> None:
    deadline = time.monotonic() + 60
    while subprocess.run(["pg_isready", "-q", "-h", "127.0.0.1"]).returncode != 0:
        assert time.monotonic() < deadline, "PostgreSQL did not come back"
        time.sleep(0.2)


@pytest.fixture
def outage() -> Iterator[None]:
    """Stops PostgreSQL for the test's gap; it is always started again."""
    try:
        yield
    finally:
        if subprocess.run(["pg_isready", "-q", "-h", "127.0.0.1"]).returncode != 0:
            cluster("start")
        wait_until_ready()


async def test_the_bot_rides_out_a_database_restart(
    client: SlackClient, core: Core, people: None, outage: None
) -> None:
    before = await client.command("assess VN-1004 2026-10-01 none", ASSESSOR)
    assert "Recorded" in before.text
    cluster("stop")
    during = await client.command("status VN-1004", ASSESSOR)
    assert "cannot reach its database just now; nothing was saved. Try again" in during.text
    assert "Traceback" not in during.text
    cluster("start")
    wait_until_ready()
    after = await client.command("assess VN-1004 2026-10-02 none", ASSESSOR)
    assert "Recorded" in after.text  # reconnected by itself
    status = await client.command("status VN-1004", ASSESSOR)
    assert "2026-10-02" in status.text
