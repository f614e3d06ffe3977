"""The outbox's retry rules (``bot.delivery``), pinned so that deliberate bugs fail (issue #16):
a notice is dead on exactly its ``max_attempts``-th failed attempt — not one later, not never —
and the wait before the next attempt doubles with each one, within ±25 % of jitter, capped at
``max_retry``, the first within a minute. Pure: no database.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.delivery import RetryPolicy, outcome_values
from bot.transports import Outcome, Result
from bot.vocabulary import OutboxStatus
from store.outbox import Claimed

PROPERTY = settings(database=None, deadline=None, max_examples=200)
NOW = datetime(2026, 11, 20, 3, 0, tzinfo=UTC)
FAILED = Result(Outcome.RETRY, error="451 4.3.0 try again later")
#: the wait before the next attempt, in seconds, after 1, 2, 3… failed attempts, without jitter,
#: for the default policy: 30 s doubled each time, capped at an hour
WAITS = [30, 60, 120, 240, 480, 960, 1920, 3600, 3600, 3600, 3600, 3600]


def claimed(attempts: int) -> Claimed:
    """A notice as claimed for its ``attempts``-th attempt (claiming counts the attempt)."""
    return Claimed(
        id=1,
        key="VN-1001/at_risk_warning/a9/email/factory",
        kind="at_risk_warning",
        channel="email",
        recipient_type="factory",
        recipient_id="VN-1001",
        recipient_name="Saigon Stitch Co.",
        addresses=["hr@saigonstitch.example"],
        delivered_to=[],
        language="vi",
        factory_id="VN-1001",
        event_id=1,
        payload={},
        message_id="<pnc.1@betterwork.example>",
        attempts=attempts,
        next_attempt_at=NOW,
        created_at=NOW,
    )


def after_failure(attempts: int, policy: RetryPolicy) -> dict[str, Any]:
    return outcome_values(claimed(attempts), FAILED, NOW, policy, random.Random(7))


def test_with_three_attempts_the_third_failure_is_dead_and_the_second_is_not() -> None:
    policy = RetryPolicy(max_attempts=3)
    assert after_failure(1, policy)["status"] == OutboxStatus.PENDING
    second = after_failure(2, policy)
    assert second["status"] == OutboxStatus.PENDING
    assert second["next_attempt_at"] > NOW
    third = after_failure(3, policy)
    assert third["status"] == OutboxStatus.DEAD
    assert third["last_error"] == "gave up after 3 attempts: 451 4.3.0 try again later"


@PROPERTY
@given(max_attempts=st.integers(1, 40))
def test_a_notice_that_always_fails_dies_on_exactly_its_last_attempt(max_attempts: int) -> None:
    policy = RetryPolicy(max_attempts=max_attempts)
    statuses = [after_failure(n, policy)["status"] for n in range(1, max_attempts + 1)]
    assert statuses == [OutboxStatus.PENDING] * (max_attempts - 1) + [OutboxStatus.DEAD]


@pytest.mark.parametrize("attempts", [11, 12, 50])
def test_a_notice_past_its_attempts_is_dead_however_it_got_there(attempts: int) -> None:
    assert after_failure(attempts, RetryPolicy())["status"] == OutboxStatus.DEAD


def test_a_notice_that_always_fails_is_not_retried_forever() -> None:
    policy = RetryPolicy()
    attempts = 1
    while after_failure(attempts, policy)["status"] == OutboxStatus.PENDING:
        attempts += 1
        assert attempts <= 1000, "a notice that always fails is retried forever"
    assert attempts == policy.max_attempts == 10


@PROPERTY
@given(seed=st.integers(0, 2**32))
def test_the_wait_doubles_with_each_attempt_within_the_jitter_up_to_an_hour(seed: int) -> None:
    policy = RetryPolicy()
    rng = random.Random(seed)
    for attempts, wait in enumerate(WAITS, start=1):
        seconds = policy.backoff(attempts, rng).total_seconds()
        assert 0.75 * wait <= seconds <= 1.25 * wait, (attempts, seconds)


@PROPERTY
@given(seed=st.integers(0, 2**32))
def test_the_first_retry_comes_within_a_minute(seed: int) -> None:
    assert RetryPolicy().backoff(1, random.Random(seed)).total_seconds() <= 60
    values = after_failure(1, RetryPolicy())
    assert NOW < values["next_attempt_at"] <= NOW + timedelta(minutes=1)


def test_the_wait_is_jittered_and_the_same_for_the_same_seed() -> None:
    policy = RetryPolicy()
    waits = {policy.backoff(4, random.Random(seed)) for seed in range(20)}
    assert len(waits) > 10
    assert policy.backoff(4, random.Random(3)) == policy.backoff(4, random.Random(3))


@pytest.mark.parametrize(("first", "cap"), [(10.0, 100.0), (60.0, 600.0)])
def test_the_policy_s_own_first_wait_and_cap_are_used(first: float, cap: float) -> None:
    policy = RetryPolicy(first_retry=first, max_retry=cap)
    for attempts in range(1, 12):
        wait = min(cap, first * 2 ** (attempts - 1))
        seconds = policy.backoff(attempts, random.Random(attempts)).total_seconds()
        assert 0.75 * wait <= seconds <= 1.25 * wait
