"""The one retry helper: budget, backoff with jitter, Retry-After, and when it gives up."""

from __future__ import annotations

import logging

import anyio
import pytest

from aioras import RetryPolicy
from aioras import _retry as retry_module
from aioras._retry import Backoff, Retrying
from aioras.exceptions import DigestMismatch, NotFoundError, ServerError, TooManyRequests


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The pauses taken, instead of taking them."""
    slept: list[float] = []

    async def fake_sleep(delay: float) -> None:
        slept.append(delay)

    monkeypatch.setattr(retry_module.anyio, "sleep", fake_sleep)
    monkeypatch.setattr(retry_module.time, "sleep", slept.append)
    return slept


class Flaky:
    """Raises the given errors in turn, then returns "ok"."""

    def __init__(self, errors: list[Exception]) -> None:
        self.errors = errors
        self.calls = 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "ok"


def test_backoff_doubles_and_is_capped() -> None:
    schedule = Backoff(first=0.25, cap=3.0, jitter=0.0)
    assert [schedule.delay(n) for n in range(6)] == [0.25, 0.5, 1.0, 2.0, 3.0, 3.0]


def test_jitter_stays_within_its_bounds() -> None:
    schedule = Backoff(first=1.0, cap=8.0, jitter=0.2)
    delays = [schedule.delay(2) for _ in range(500)]
    assert all(3.2 <= d <= 4.8 for d in delays)
    assert len(set(delays)) > 1  # jittered, not one fixed value


def test_retry_after_replaces_the_schedule_up_to_its_cap() -> None:
    schedule = Backoff(first=0.25, cap=3.0, max_retry_after=10.0)
    assert schedule.delay(0, 7.0) == 7.0
    assert schedule.delay(0, 1000.0) == 10.0
    assert schedule.delay(4, 0.0) == 0.0
    assert schedule.delay(0, -5.0) == 0.0


def test_retry_after_as_floor_only_lengthens_the_pause() -> None:
    schedule = Backoff(
        first=2.0, cap=30.0, jitter=0.0, max_retry_after=30.0, retry_after_floor=True
    )
    assert schedule.delay(0, 7.0) == 7.0
    assert schedule.delay(2, 1.0) == 8.0
    assert schedule.delay(0, 1000.0) == 30.0


def test_policy_delay_is_the_policy_schedule() -> None:
    policy = RetryPolicy(backoff=0.5, max_backoff=1.0, jitter=0.0, max_retry_after=5.0)
    assert [policy.delay(n) for n in range(3)] == [0.5, 1.0, 1.0]
    assert policy.delay(0, 9.0) == 5.0


@pytest.mark.anyio
async def test_call_retries_until_success_pausing_on_the_schedule(sleeps: list[float]) -> None:
    flaky = Flaky([ServerError("a", status_code=503), ServerError("b", status_code=503)])
    retrying = Retrying(3, backoff=Backoff(first=1.0, cap=10.0, jitter=0.0))
    assert await retrying.call(flaky) == "ok"
    assert flaky.calls == 3
    assert sleeps == [1.0, 2.0]


@pytest.mark.anyio
async def test_non_retryable_error_is_raised_at_once(sleeps: list[float]) -> None:
    flaky = Flaky([NotFoundError("gone", status_code=404)])
    with pytest.raises(NotFoundError):
        await Retrying(5, on=ServerError).call(flaky)
    assert flaky.calls == 1
    assert sleeps == []


@pytest.mark.anyio
async def test_exhausted_attempts_raise_the_last_error(sleeps: list[float]) -> None:
    errors: list[Exception] = [ServerError(f"e{i}", status_code=500) for i in range(3)]
    flaky = Flaky(list(errors))
    with pytest.raises(ServerError) as raised:
        await Retrying(2, backoff=Backoff(jitter=0.0)).call(flaky)
    assert raised.value is errors[-1]
    assert flaky.calls == 3
    assert len(sleeps) == 2


@pytest.mark.anyio
async def test_a_429_retry_after_is_honoured_and_capped(sleeps: list[float]) -> None:
    flaky = Flaky(
        [
            TooManyRequests("slow", status_code=429, retry_after=4),
            TooManyRequests("slow", status_code=429, retry_after=1000),
        ]
    )
    retrying = Retrying(5, backoff=Backoff(first=0.1, jitter=0.0, max_retry_after=30.0))
    assert await retrying.call(flaky) == "ok"
    assert sleeps == [4.0, 30.0]


@pytest.mark.anyio
async def test_iterated_attempts_swallow_retryable_errors_then_stop(
    sleeps: list[float],
) -> None:
    flaky = Flaky([DigestMismatch(expected="sha256:a", actual="sha256:b")])
    numbers = []
    async for attempt in Retrying(2, on=DigestMismatch, pause=False):
        with attempt:
            numbers.append(attempt.number)
            await flaky()
    assert numbers == [1, 2]
    assert sleeps == []


@pytest.mark.anyio
async def test_iterated_attempts_raise_once_the_budget_is_spent(sleeps: list[float]) -> None:
    tries = 0

    async def loop() -> None:
        nonlocal tries
        async for attempt in Retrying(1, backoff=Backoff(first=0.5, jitter=0.0)):
            with attempt:
                tries += 1
                raise ServerError("again", status_code=502)

    with pytest.raises(ServerError, match="again"):
        await loop()
    assert tries == 2
    assert sleeps == [0.5]


def test_blocking_iteration_pauses_with_time_sleep(sleeps: list[float]) -> None:
    tries = 0
    for attempt in Retrying(3, backoff=Backoff(first=0.2, jitter=0.0)):
        with attempt:
            tries += 1
            if tries < 3:
                raise OSError("busy")
    assert tries == 3
    assert sleeps == [0.2, 0.4]


@pytest.mark.anyio
async def test_cancellation_is_never_retried() -> None:
    tries = 0
    with anyio.move_on_after(0.05):
        async for attempt in Retrying(None, on=lambda e: True, backoff=Backoff(first=0.01)):
            with attempt:
                tries += 1
                await anyio.sleep(10)
    assert tries == 1


def test_progress_renews_the_budget_and_standing_still_spends_it() -> None:
    retrying = Retrying(2, pause=False, level=None)
    retrying.advance(0)
    for _ in range(2):
        assert retrying.allows()
        retrying.wait_blocking()
    assert not retrying.allows()
    retrying.advance(0)  # no bytes landed: still spent
    assert not retrying.allows()
    retrying.advance(100)  # bytes landed since the last failure: a whole budget again
    assert retrying.allows()
    assert retrying.failures == 0


def test_zero_budget_never_retries() -> None:
    assert not Retrying(0).allows(ServerError("x", status_code=500))
    assert not RetryPolicy(attempts=0).retrying(0).allows()


def test_each_retry_is_logged_with_its_reason_and_pause(
    caplog: pytest.LogCaptureFixture, sleeps: list[float]
) -> None:
    caplog.set_level(logging.INFO, logger="aioras")
    retrying = Retrying(3, backoff=Backoff(first=0.5, jitter=0.0), level=logging.INFO)
    retrying.wait_blocking(note="download of x broke off at byte 7")
    assert caplog.messages == ["download of x broke off at byte 7; retry 1 of 3 in 0.50s"]
