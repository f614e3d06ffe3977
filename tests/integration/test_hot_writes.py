"""The hot path's writes (``store.hot.HotPath.write``): the dispatcher records each delivery's
outcome there. On SQLite and PostgreSQL an outcome reads back exactly as the engine writes it,
a batch is all or nothing, and a notice another dispatcher took over is left alone; on SQLite a
write that meets another process's lock waits for it off the event loop's thread."""

from __future__ import annotations

import asyncio
import random
import sqlite3
import threading
import time

import pytest
from sqlalchemy import bindparam, insert, select, update

from bot.delivery import outcome_values
from bot.transports import Outcome, Result
from bot.usecases import assessments
from bot.usecases.core import Core
from bot.vocabulary import Channel, OutboxStatus
from store import outbox as store_outbox
from store.db import Database
from store.hot import Query
from store.models import CHANNELS, OUTBOX
from store.outbox import Claimed
from tests.conftest import ASSESSOR, FrozenClock
from tests.integration.helpers import FAIL4, dispatcher, outbox

COLUMNS = (
    "status",
    "attempts",
    "next_attempt_at",
    "sent_at",
    "last_error",
    "provider_reply",
    "lease_until",
    "claimed_by",
)


async def claimed(core: Core, count: int) -> tuple[list[Claimed], str]:
    """``count`` email notices of VN-1, claimed by a dispatcher (and its name)."""
    for day in ("2025-01-10", "2026-01-10"):
        await assessments.record(core, ASSESSOR, "VN-1", day, FAIL4)
    d = dispatcher(core)
    rows = await d.outbox.claim(Channel.EMAIL)
    assert len(rows) >= count
    return rows[:count], d.name


@pytest.mark.usefixtures("registered")
async def test_each_outcome_reads_back_as_the_engine_writes_it(
    core: Core, clock: FrozenClock
) -> None:
    rows, name = await claimed(core, 6)
    results = [
        Result(Outcome.SENT, reply="250 2.0.0 queued as 7F3"),
        Result(Outcome.RETRY, error="451 try later", accepted=(rows[2].addresses[0],)),
        Result(Outcome.WAIT, error="rate limited", retry_after=30),
    ]
    d = dispatcher(core)
    d.outbox.name = name
    policy, now = d.outbox.policy, clock()
    for (hot, engine), result in zip(zip(rows[::2], rows[1::2], strict=True), results, strict=True):
        values = outcome_values(hot, result, now, policy, random.Random(1))
        assert await store_outbox.record_now(core.db.hot, hot.id, name, values)
        values = outcome_values(engine, result, now, policy, random.Random(1))
        async with core.db.connection(write=True) as conn:
            assert await store_outbox.record(conn, engine.id, name, values)
    stored = {m.id: m for m in await outbox(core)}
    for (hot, engine), result in zip(zip(rows[::2], rows[1::2], strict=True), results, strict=True):
        mine, theirs = stored[hot.id], stored[engine.id]
        for column in COLUMNS:
            assert getattr(mine, column) == getattr(theirs, column), (result.outcome, column)
        assert mine.status != OutboxStatus.SENDING and mine.claimed_by is None
    sent = stored[rows[0].id]
    assert sent.sent_at == now and sent.sent_at.tzinfo is not None
    assert sent.delivered_to == list(rows[0].addresses)  # JSON, as the engine writes it
    retried = stored[rows[2].id]
    assert retried.delivered_to == [rows[2].addresses[0]]
    assert retried.addresses == list(rows[2].addresses[1:])


@pytest.mark.usefixtures("registered")
async def test_a_notice_another_dispatcher_took_over_is_left_alone(core: Core) -> None:
    (row,), name = await claimed(core, 1)
    async with core.db.connection(write=True) as conn:
        await conn.execute(update(OUTBOX).where(OUTBOX.c.id == row.id).values(claimed_by="d2"))
    policy = dispatcher(core).outbox.policy
    values = outcome_values(row, Result(Outcome.SENT), core.clock(), policy, random.Random(1))
    assert not await store_outbox.record_now(core.db.hot, row.id, name, values)
    (stored,) = [m for m in await outbox(core) if m.id == row.id]
    assert (stored.status, stored.claimed_by) == (OutboxStatus.SENDING, "d2")


ADD_CHANNEL = Query(
    "add_channel",
    insert(CHANNELS)
    .values(name=bindparam("name"), failures=0, alerted=False)
    .returning(CHANNELS.c.name),
)


async def channels(db: Database) -> list[str]:
    async with db.connection() as conn:
        return list((await conn.execute(select(CHANNELS.c.name))).scalars())


async def test_a_batch_is_all_or_nothing(db: Database) -> None:
    with pytest.raises(Exception, match=r"(?i)unique|duplicate"):
        await db.hot.write([(ADD_CHANNEL, {"name": "email"}), (ADD_CHANNEL, {"name": "email"})])
    assert await channels(db) == []
    assert await db.hot.write([(ADD_CHANNEL, {"name": "slack"})]) == [[("slack",)]]
    assert await channels(db) == ["slack"]


async def test_another_process_writing_makes_the_write_wait_off_the_loop(db: Database) -> None:
    if not db.is_sqlite:
        pytest.skip("SQLite's one write lock")
    other = sqlite3.connect(db.url.database or "", isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")  # another process, writing for half a second
    done = threading.Timer(0.5, lambda: other.execute("COMMIT"))
    done.start()
    ticks = 0

    async def ticking() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    ticker = asyncio.create_task(ticking())
    started = time.monotonic()
    try:
        assert await db.hot.write([(ADD_CHANNEL, {"name": "email"})]) == [[("email",)]]
    finally:
        ticker.cancel()
        done.join()
        other.close()
    assert time.monotonic() - started >= 0.4  # it waited for the lock…
    assert ticks >= 20  # …while the loop went on
    assert await channels(db) == ["email"]
    # and the next write, the lock free, runs on the loop's thread again
    assert await db.hot.write([(ADD_CHANNEL, {"name": "slack"})]) == [[("slack",)]]


@pytest.mark.usefixtures("registered")
async def test_an_outcome_meeting_another_writer_is_recorded_through_the_engine(
    core: Core, clock: FrozenClock
) -> None:
    """The fallback runs the same statement through SQLAlchemy's engine (whose parameters must
    be named apart from the columns)."""
    if not core.db.is_sqlite:
        pytest.skip("SQLite's one write lock")
    (row,), name = await claimed(core, 1)
    other = sqlite3.connect(
        core.db.url.database or "", isolation_level=None, check_same_thread=False
    )
    other.execute("BEGIN IMMEDIATE")
    done = threading.Timer(0.2, lambda: other.execute("COMMIT"))
    done.start()
    policy = dispatcher(core).outbox.policy
    values = outcome_values(row, Result(Outcome.SENT), clock(), policy, random.Random(1))
    try:
        assert await store_outbox.record_now(core.db.hot, row.id, name, values)
    finally:
        done.join()
        other.close()
    (stored,) = [m for m in await outbox(core) if m.id == row.id]
    assert (stored.status, stored.sent_at) == (OutboxStatus.SENT, clock())
