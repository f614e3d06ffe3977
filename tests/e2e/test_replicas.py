"""Three ``pnc-bot serve`` replicas on one PostgreSQL database, one SMTP server, one fake Slack:
hundreds of signed assessments spread over all three, and one replica killed (SIGKILL) in the
middle. Every expected notice and reminder must arrive; none twice, apart from the messages in
flight at the kill; and every factory's state must be what the rules say."""

from __future__ import annotations

import asyncio
import itertools
import json
import signal
import subprocess
import time
import urllib.parse
from collections import Counter
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from typing import Any

import aiohttp
import pytest
from slack_sdk.signature import SignatureVerifier
from sqlalchemy import func, select

from bot import policy
from bot.usecases import reading, registry
from bot.usecases.core import Core
from store.db import Database
from store.models import OutboxMessage, Reminder
from tests.conftest import BACKENDS, MANAGER
from tests.e2e.test_cli import PNC_BOT, environment
from tests.e2e.test_serve import free_port
from tests.fakes import FakeSlack, SmtpServer

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif("postgresql" not in BACKENDS, reason="PNC_TEST_BACKENDS excludes it"),
    # replicas share one PostgreSQL database: this test runs on that backend only
    pytest.mark.parametrize("database", ["postgresql"], indirect=True),
]

SECRET = "replica-signing-secret"
SUBMITTER = "U0SUBMIT"  # a manager through PNC_ADMINS
FACTORIES = 60
FAIL, PASS = "CO-01,CO-02,OS-01,WT-01", "OS-02"
#: each factory's five assessments, by pattern: warnings, stops, designations, nothing
PATTERNS = [
    [FAIL, FAIL, FAIL, PASS, PASS],  # 1 of 3, 2 of 3, designated, then counted no more
    [FAIL, PASS, FAIL, FAIL, PASS],  # warned, stopped, warned twice, stopped
    [PASS, PASS, PASS, PASS, PASS],  # never at risk
    [FAIL, FAIL, PASS, FAIL, FAIL],  # 2 of 3, stopped, 2 of 3 again
]
DAYS = [date(2021, 3, 1), date(2022, 3, 1), date(2023, 3, 1), date(2024, 3, 1), date(2025, 3, 1)]


def factory_id(n: int) -> str:
    return f"VN-{3000 + n}"


def buyers_of(n: int) -> list[str]:
    return [f"B-{n % 4}", f"B-{(n + 1) % 4}"]


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
async def slack() -> Any:
    fake = FakeSlack()
    await fake.start()
    yield fake
    await fake.stop()


def start_replica(port: int, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [str(PNC_BOT), "--log-level", "info", "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


async def wait_healthy(port: int) -> None:
    deadline = time.monotonic() + 60
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            try:
                async with session.get(f"http://127.0.0.1:{port}/healthz") as r:
                    if r.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.2)
    raise AssertionError(f"replica on {port} did not start")


class Client:
    """Sends signed commands to the replicas, round robin; a command that gets no reply (its
    replica died) is sent again to the next one, as a person would retry in Slack."""

    def __init__(self, ports: list[int], slack: FakeSlack, session: aiohttp.ClientSession):
        self.ports = ports
        self.dead: set[int] = set()
        self.slack = slack
        self.session = session
        self.turn = itertools.count()
        self.numbers = itertools.count(1)
        self.verifier = SignatureVerifier(SECRET)
        self.retries = 0

    async def command(self, text: str) -> str:
        for _ in range(12):
            live = [p for p in self.ports if p not in self.dead]
            port = live[next(self.turn) % len(live)]
            n = str(next(self.numbers))
            body = urllib.parse.urlencode(
                {
                    "command": "/pnc",
                    "text": text,
                    "user_id": SUBMITTER,
                    "team_id": "T0",
                    "channel_id": "C0",
                    "api_app_id": "A0",
                    "trigger_id": f"t.{n}",
                    "response_url": f"{self.slack.url}/respond/{n}",
                }
            )
            stamp = str(int(time.time()))
            headers = {
                "Content-Type": "application/x-www-form-urlencoded",
                "X-Slack-Request-Timestamp": stamp,
                "X-Slack-Signature": self.verifier.generate_signature(timestamp=stamp, body=body),
            }
            try:
                async with self.session.post(
                    f"http://127.0.0.1:{port}/slack/events",
                    data=body,
                    headers=headers,
                    timeout=aiohttp.ClientTimeout(total=10),
                ) as response:
                    answer = await response.text()
                if answer.strip():
                    return str(json.loads(answer).get("text", ""))
                reply = await self.slack.wait(lambda n=n: self.slack.responses.get(n), 10)
                return str(reply.get("text", ""))
            except (aiohttp.ClientError, AssertionError, TimeoutError):
                self.retries += 1  # no answer: the replica died under this request
        raise AssertionError(f"no replica answered {text!r}")


async def test_three_replicas_one_killed_nothing_lost_nothing_twice(
    db: Database, core: Core, smtp: SmtpServer, slack: FakeSlack
) -> None:
    for b in range(4):
        await registry.add_buyer(core, MANAGER, f"B-{b}", f"Buyer {b}", f"sourcing@b{b}.example")
    for n in range(FACTORIES):
        await registry.add_factory(
            core, MANAGER, factory_id(n), f"Factory {n}", "VN", f"hr@f{n}.example", "en"
        )
        for buyer in buyers_of(n):
            await registry.subscribe(core, MANAGER, buyer, factory_id(n))

    env = environment(
        {
            "PNC_DATABASE_URL": db.url.render_as_string(hide_password=False),
            "SLACK_BOT_TOKEN": "xoxb-replicas",
            "SLACK_SIGNING_SECRET": SECRET,
            "PNC_SLACK_API_URL": f"{slack.url}/api/",
            "PNC_SMTP_URL": smtp.url,
            "PNC_STAFF_CHANNEL": "C0STAFF",
            "PNC_ADMINS": SUBMITTER,
            "PNC_INSPECTORATE_EMAIL": "inspection@molisa.example",
            "PNC_DELIVERY_LEASE_SECONDS": "5",
        }
    )
    ports = [free_port() for _ in range(3)]
    replicas = [start_replica(port, env) for port in ports]
    try:
        await asyncio.gather(*(wait_healthy(p) for p in ports))
        async with aiohttp.ClientSession() as session:
            client = Client(ports, slack, session)
            done = Counter[str]()
            gate = asyncio.Semaphore(20)
            total = FACTORIES * len(DAYS)

            async def factory_history(n: int) -> None:
                async with gate:
                    for day, codes in zip(DAYS, PATTERNS[n % 4], strict=True):
                        text = await client.command(f"assess {factory_id(n)} {day} {codes}")
                        ok = "Recorded" in text or "already has an assessment" in text
                        assert ok, text
                        done["assessments"] += 1
                        if done["assessments"] >= total * 0.4:
                            halfway.set()

            halfway = asyncio.Event()

            async def kill_in_the_middle() -> None:
                await halfway.wait()
                replicas[1].send_signal(signal.SIGKILL)
                client.dead.add(ports[1])
                done["killed_at"] = done["assessments"]

            started = time.monotonic()
            await asyncio.gather(
                kill_in_the_middle(), *(factory_history(n) for n in range(FACTORIES))
            )
            sending_seconds = time.monotonic() - started
            call_day = (datetime.now() + timedelta(days=2)).date()
            assert "Buyer call added" in await client.command(f"calls add {call_day} 15:00")

        # every notice and the call's reminder delivered: nothing waiting, nothing in a claim
        deadline = time.monotonic() + 120
        while True:
            async with core.db.transaction() as s:
                open_rows = (
                    await s.exec(
                        select(func.count())
                        .select_from(OutboxMessage)
                        .where(OutboxMessage.status.in_(("pending", "sending")))
                    )
                ).scalar_one()
                reminder = (
                    await s.exec(select(Reminder.status).where(Reminder.kind == "buyer_call"))
                ).scalar_one()
            if open_rows == 0 and reminder == "done":
                break
            assert time.monotonic() < deadline, f"{open_rows} notices still open"
            await asyncio.sleep(0.5)
        drained_seconds = time.monotonic() - started
    finally:
        stopping = time.monotonic()
        for process in replicas:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        stop_seconds = []
        for process in replicas:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
            stop_seconds.append(time.monotonic() - stopping)
            if process.returncode not in (0, -signal.SIGKILL) or stop_seconds[-1] > 10:
                _, log = process.communicate()
                print(
                    f"replica stopped after {stop_seconds[-1]:.1f}s, rc {process.returncode}:"
                    f"\n{log[-3000:]}"
                )

    # what the rules say, factory by factory
    expected_emails: Counter[tuple[str, str, str]] = Counter()
    expected_staff: Counter[tuple[str, str]] = Counter()
    for n in range(FACTORIES):
        fid = factory_id(n)
        history = [
            policy.AssessmentRecord(i, day, frozenset(codes.split(",")))
            for i, (day, codes) in enumerate(zip(DAYS, PATTERNS[n % 4], strict=True))
        ]
        evaluation = policy.evaluate(policy.Rules(), fid, history)
        view = await reading.status(core, fid)
        assert (view.state, view.label) == (evaluation.state.value, evaluation.label), fid
        for event in evaluation.events:
            kind = event.kind.value
            expected_emails[(kind, fid, f"hr@f{n}.example")] += 1
            for buyer in buyers_of(n):
                expected_emails[
                    (kind, fid, f"sourcing@{buyer.lower().replace('-', '')}.example")
                ] += 1
            if kind == "pnc_designated":
                expected_emails[("inspectorate_referral", fid, "inspection@molisa.example")] += 1
            expected_staff[(kind, fid)] += 1

    received: Counter[tuple[str, str, str]] = Counter()
    calls: Counter[str] = Counter()
    for m in smtp.received:
        kind = str(m.message["PNC-Notice"])
        if kind == "buyer_call_reminder":
            calls[m.recipients[0]] += 1
            continue
        for recipient in m.recipients:
            received[(kind, str(m.message["PNC-Factory"]), recipient)] += 1
    ids = Counter(m.message_id for m in smtp.received)
    duplicated = sum(c - 1 for c in ids.values() if c > 1)

    assert set(received) == set(expected_emails)  # every expected notice arrived ...
    extra = sum((received - expected_emails).values())
    assert extra == duplicated <= 2  # ... and only what was in flight at the kill came twice
    # the buyer call: each buyer with a factory at risk or designated got its list, once
    watched = {
        factory_id(n)
        for n in range(FACTORIES)
        if PATTERNS[n % 4][-1] == FAIL or PATTERNS[n % 4][:3] == [FAIL] * 3
    }
    listed = {
        f"sourcing@{b.lower().replace('-', '')}.example"
        for n in range(FACTORIES)
        if factory_id(n) in watched
        for b in buyers_of(n)
    }
    assert dict(calls) == dict.fromkeys(listed, 1)
    posts = [c.body["text"] for c in slack.calls_to("chat.postMessage")]
    assert sum("buyer call" in text for text in posts) == 1  # the agenda, once
    # staff alerts: every event's, per factory; at most one more (in flight at the kill)
    ids_in_text = [factory_id(n) for n in range(FACTORIES)]
    per_factory = Counter(
        fid
        for text in posts
        if "buyer call" not in text
        for fid in ids_in_text
        if f"`{fid}`" in text
    )
    wanted = Counter({fid: 0 for fid in ids_in_text})
    for (_, fid), count in expected_staff.items():
        wanted[fid] += count
    assert all(per_factory[fid] >= count for fid, count in wanted.items())
    assert sum((per_factory - wanted).values()) <= 1
    print(
        f"\n{total} assessments over 3 replicas ({client.retries} resent after the kill at "
        f"{done['killed_at']}); sent in {sending_seconds:.1f}s, all delivered "
        f"{drained_seconds:.1f}s after the start; {len(smtp.received)} emails, "
        f"{duplicated} duplicate(s) by Message-ID; replicas stopped in "
        f"{max(stop_seconds):.1f}s"
    )
    assert max(stop_seconds) < 15  # SIGTERM stops a replica promptly, work in hand finished
