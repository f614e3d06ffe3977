"""Benchmark: the outbox dispatcher delivering 500 email notices to a local aiosmtpd, against
its baseline in the same run — raw aiosmtplib sending 500 similar pre-rendered messages on one
reused connection.

    python -m bench.dispatch_smtp [--notices 500] [--runs 5] [--server thread|process]

The SMTP server runs in a thread of the benchmark's own process (the default, as the tests
run it), or in a process of its own (``--server process``: as a real relay is, it then takes
no turns of this process's GIL from either side).

Goal (issue #7): the dispatcher's messages per second ≥ 0.8 × the baseline's. The dispatcher
does more per message: it renders the notice from its templates (text + HTML), sends it, and
records the outcome in the database before the next message — which is what lets a crash
duplicate at most the message in flight.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import aiosmtplib

from bot import mail, notices
from bot.countries import load_config
from bot.dispatcher import Dispatcher
from bot.settings import Settings
from bot.smtp_url import SmtpSettings
from bot.transports import SmtpTransport
from bot.usecases.core import Core
from bot.vocabulary import Channel
from store import migrate
from store.db import Database
from store.outbox import Claimed, add_notices
from tests.fakes import SmtpServer, free_port


def sample_notices(settings: Settings, count: int) -> list[notices.Notice]:
    country = load_config(settings).countries.country("VN")
    planned = []
    for n in range(count):
        factory = notices.Party(f"VN-{n:05d}", f"Factory {n}", (f"hr@f{n}.example",), "en")
        payload = {
            "k": 1,
            "assessed_on": "2026-06-17",
            "kind": "regular",
            "nc_issues": ["CO-01", "CO-02", "OS-01", "WT-01"],
        }
        rows, _ = notices.plan(
            f"{factory.id}/at_risk_warning/a{n}/k1",
            "at_risk_warning",
            payload,
            factory,
            country,
            [],
        )
        planned += [r for r in rows if r.channel == Channel.EMAIL]
    return planned


class _OwnProcess:
    """aiosmtpd in a process of its own, accepting and discarding every message."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"smtp://127.0.0.1:{self.port}?timeout=5"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        command = [sys.executable, "-m", "aiosmtpd", "-n", "-c", "aiosmtpd.handlers.Sink"]
        self._process = subprocess.Popen(
            [*command, "-l", f"127.0.0.1:{self.port}"], stdout=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                if time.monotonic() > deadline or self._process.poll() is not None:
                    raise RuntimeError("aiosmtpd did not start") from None
                time.sleep(0.05)

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.wait(10)
            self._process = None


Server = SmtpServer | _OwnProcess


async def baseline(smtp: Server, settings: Settings, count: int) -> float:
    """Raw aiosmtplib: the same kind of messages, rendered beforehand, one connection."""
    now = datetime.now(UTC)
    domain = settings.mail_domain
    messages = []
    for notice in sample_notices(settings, count):
        row = Claimed.of(notices.outbox_row(notice, now, domain))
        messages.append(mail.build(row, settings))
    client = aiosmtplib.SMTP(hostname="127.0.0.1", port=smtp.port)
    await client.connect()
    started = time.perf_counter()
    for message in messages:
        await client.send_message(message)
    elapsed = time.perf_counter() - started
    await client.quit()
    return count / elapsed


async def dispatcher(smtp: Server, settings: Settings, folder: Path, count: int) -> float:
    """The dispatcher: claim, render, send (two reused connections), record each outcome."""
    db = Database(f"sqlite+aiosqlite:///{folder}/bench.db")
    await migrate.upgrade(db)
    now = datetime.now(UTC)
    async with db.transaction(write=True) as s:
        await add_notices(
            s,
            [
                notices.outbox_row(n, now, settings.mail_domain)
                for n in sample_notices(settings, count)
            ],
        )
    transport = SmtpTransport(SmtpSettings.from_url(smtp.url))
    d = Dispatcher.for_core(Core(db, load_config(settings), settings), [transport])
    started = time.perf_counter()
    sent = 0
    while claimed := await d.run_once():
        sent += claimed
    elapsed = time.perf_counter() - started
    await d.close()
    await db.dispose()
    assert sent == count, sent
    return count / elapsed


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--notices", type=int, default=500)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--server", choices=("thread", "process"), default="thread")
    args = parser.parse_args()
    settings = Settings(
        database_url="sqlite+aiosqlite:///unused.db",
        config_path=None,
        mail_from="pnc-bot@betterwork.example.org",
    )
    smtp: Server = SmtpServer() if args.server == "thread" else _OwnProcess()
    smtp.start()
    work = Path(tempfile.mkdtemp(prefix="pnc-dispatch-bench-"))
    try:
        rows = []
        for run in range(1, args.runs + 1):
            raw = await baseline(smtp, settings, args.notices)
            folder = work / f"run{run}"
            folder.mkdir()
            ours = await dispatcher(smtp, settings, folder, args.notices)
            rows.append((raw, ours))
            print(
                f"run {run}: raw aiosmtplib {raw:.0f} msg/s  dispatcher {ours:.0f} msg/s  "
                f"ratio {ours / raw:.2f}"
            )
        raw = statistics.median(r for r, _ in rows)
        ours = statistics.median(o for _, o in rows)
        print(
            f"median of {args.runs}: raw {raw:.0f} msg/s  dispatcher {ours:.0f} msg/s  "
            f"ratio {ours / raw:.2f} (goal ≥ 0.80; SMTP server in its own {args.server})"
        )
    finally:
        smtp.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    asyncio.run(main())
