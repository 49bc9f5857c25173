"""One helper for every retry, resume and refetch loop: `Retrying`.

A `Retrying` owns one loop's attempts: how many failures it may absorb (its budget),
the pause before each new attempt (exponential backoff with jitter, or the server's
``Retry-After``), and the decision to give up. Callers never count attempts or sleep.

For a block retried on exceptions (stamina's shape)::

    async for attempt in policy.retrying(policy.refetches, on=IntegrityError):
        with attempt:
            await push_once()

or ``await retrying.call(push_once)``. Where a loop reacts to more than exceptions (a status
code, a session to recover), it asks and then waits::

    if not retries.allows(error):
        raise wrapped from error
    await retries.wait(error)

[`RetryPolicy`][aioras.RetryPolicy], the public configuration object, makes them
([`RetryPolicy.retrying`][aioras.RetryPolicy.retrying]). The engine knows no protocol: it sits at
the package root, below the transport (which reads ``Retry-After`` in `aioras._http.retry`) and
every other layer that retries.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from types import TracebackType
from typing import TypeVar

import anyio

__all__ = [
    "DEFAULT_RETRY",
    "NO_RETRY",
    "Attempt",
    "Backoff",
    "RetryPolicy",
    "Retrying",
]

logger = logging.getLogger(__name__)

T = TypeVar("T")
Retryable = type[BaseException] | tuple[type[BaseException], ...] | Callable[[BaseException], bool]
"""Which exceptions a `Retrying` absorbs: classes, or a predicate."""


@dataclass(frozen=True)
class Backoff:
    """The pause before retry ``n`` (from 0): ``first * 2**n``, capped, jittered.

    A random factor in ``[1 - jitter, 1 + jitter]`` spreads retries of many tasks apart.
    A server's ``Retry-After`` (capped at ``max_retry_after``) replaces the schedule, or with
    ``retry_after_floor`` only lengthens it (and the cap bounds both).
    """

    first: float = 0.25
    cap: float = 3.0
    jitter: float = 0.2
    max_retry_after: float = 60.0
    retry_after_floor: bool = False

    def delay(self, retry: int, retry_after: float | None = None) -> float:
        """Seconds to wait before retry number ``retry`` (0-based)."""
        if retry_after is not None and not self.retry_after_floor:
            return min(max(retry_after, 0.0), self.max_retry_after)
        # The exponent is bounded: an unlimited loop (a lock poll) must not overflow it.
        base: float = min(self.first * 2.0 ** min(retry, 64), self.cap)
        if self.jitter:
            base *= random.uniform(1 - self.jitter, 1 + self.jitter)
        if retry_after is not None:
            base = min(max(base, retry_after), self.max_retry_after)
        return base


def _retry_after_of(error: object) -> float | None:
    """The server's ``Retry-After`` an error carries (``TooManyRequests.retry_after``)."""
    value = getattr(error, "retry_after", None)
    return float(value) if isinstance(value, int | float) else None


class Retrying:
    """One loop's attempts: its budget, its backoff, and when to give up.

    ``budget``: failures absorbed before giving up (retries, not counting the first try;
    None: no limit). ``on``: the exceptions that may be retried (classes or a predicate).
    ``pause=False``: retry at once (a refetch of content that failed verification).
    Each retry is logged at ``level`` (None: not at all), with the reason and the pause.
    """

    def __init__(
        self,
        budget: int | None,
        *,
        on: Retryable = Exception,
        backoff: Backoff = Backoff(),
        pause: bool = True,
        level: int | None = logging.DEBUG,
    ) -> None:
        self.budget = budget
        self.backoff = backoff
        self.pause = pause
        self.level = level
        self._on = on
        self._failures = 0
        self._mark = 0
        self._delay: float | None = None  # owed before the next iterated attempt
        self._done = False

    @property
    def failures(self) -> int:
        """Failures counted so far (since progress last renewed the budget)."""
        return self._failures

    def retryable(self, error: BaseException) -> bool:
        """True when ``error`` is of a kind this loop retries."""
        if isinstance(self._on, type | tuple):
            return isinstance(error, self._on)
        return self._on(error)

    def allows(self, error: BaseException | None = None) -> bool:
        """True when one more attempt may follow this failure (``error``, if one was raised).

        False for an error of a kind not retried, and once the budget is spent.
        """
        if error is not None and not self.retryable(error):
            return False
        return self.budget is None or self._failures < self.budget

    def advance(self, position: int) -> None:
        """Say where the work stands; a position past the last one given renews the budget.

        A resumable transfer that keeps moving forward is not failed merely because
        faults added up over its length.
        """
        if position > self._mark:
            self._failures = 0
        self._mark = position

    def _count(
        self,
        error: BaseException | None,
        note: str,
        retry_after: float | None,
        pause: bool = True,
    ) -> float:
        """Count one failure; return the pause before the next attempt, and log both."""
        pause = pause and self.pause
        if retry_after is None:
            retry_after = _retry_after_of(error)
        delay = self.backoff.delay(self._failures, retry_after) if pause else 0.0
        self._failures += 1
        if self.level is not None:
            limit = f" of {self.budget}" if self.budget is not None else ""
            after = f" in {delay:.2f}s" if pause else ""
            reason = note or error or "failed"
            logger.log(self.level, "%s; retry %d%s%s", reason, self._failures, limit, after)
        return delay

    async def wait(
        self,
        error: BaseException | None = None,
        *,
        note: str = "",
        retry_after: float | None = None,
    ) -> None:
        """Count one failure and pause before the next attempt.

        ``note`` (else ``error``) is logged; an error's ``retry_after`` (a 429's) is
        honoured unless ``retry_after`` is given. Ask `allows` first: this does not
        give up.
        """
        delay = self._count(error, note, retry_after)
        if self.pause:
            await anyio.sleep(delay)

    def failed(self, error: BaseException | None = None, *, note: str = "") -> None:
        """Count one failure that calls for no pause (the next attempt differs anyway)."""
        self._count(error, note, None, pause=False)

    def wait_blocking(
        self,
        error: BaseException | None = None,
        *,
        note: str = "",
        retry_after: float | None = None,
        sleep: Callable[[float], object] | None = None,
    ) -> None:
        """`wait` for synchronous code: the pause blocks the thread (``time.sleep``)."""
        delay = self._count(error, note, retry_after)
        if self.pause:
            (sleep or time.sleep)(delay)

    async def call(self, func: Callable[[], Awaitable[T]]) -> T:
        """Await ``func()`` until it succeeds; raise its last error when retries are spent."""
        while True:
            try:
                return await func()
            except Exception as error:
                if not self.allows(error):
                    raise
                await self.wait(error)

    def call_blocking(
        self, func: Callable[[], T], *, sleep: Callable[[float], object] | None = None
    ) -> T:
        """`call` for a synchronous ``func``; the pauses block the thread."""
        while True:
            try:
                return func()
            except Exception as error:
                if not self.allows(error):
                    raise
                self.wait_blocking(error, sleep=sleep)

    # Iterated as a plain iterator, not a generator: nothing is left suspended (and to be
    # finalised by the event loop) when the last error escapes the loop.
    def __aiter__(self) -> Retrying:
        return self

    async def __anext__(self) -> Attempt:
        if self._done:
            raise StopAsyncIteration
        delay, self._delay = self._delay, None
        if delay is not None:
            await anyio.sleep(delay)
        return Attempt(self)

    def __iter__(self) -> Retrying:
        return self

    def __next__(self) -> Attempt:
        if self._done:
            raise StopIteration
        delay, self._delay = self._delay, None
        if delay is not None:
            time.sleep(delay)
        return Attempt(self)

    def _settle(self, error: BaseException | None) -> bool:
        """End one iterated attempt: True to swallow ``error`` and go again."""
        if error is None:
            self._done = True
            return False
        if not isinstance(error, Exception) or not self.allows(error):
            return False
        delay = self._count(error, "", None)
        self._delay = delay if self.pause else None
        return True


class Attempt:
    """One try of an iterated `Retrying`; use it as ``with attempt:``.

    Leaving the block normally ends the loop; a retryable error is swallowed (the loop
    pauses and goes again) while the budget lasts, and raised once it is spent.
    """

    def __init__(self, owner: Retrying) -> None:
        self._owner = owner
        self.number = owner.failures + 1
        """1 for the first try (counted since progress last renewed the budget)."""

    def __enter__(self) -> Attempt:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        return self._owner._settle(exc)


@dataclass(frozen=True)
class RetryPolicy:
    """When and how often aioras retries, resumes or restarts after a fault.

    **Per request** (the transport): connection errors, timeouts, a response body that
    breaks off, and the ``statuses`` (408, 429, 500, 502, 503, 504) are retried for requests
    that are idempotent and whose body can be replayed (GET, HEAD, DELETE, PUT of a
    manifest; never the PATCH or PUT of a blob upload), at most ``attempts`` times
    (default 5; retries, not counting the first try); a refused connection only once
    in a row, a server that hangs up without answering twice in a row (after another
    fault, such a failure still gets the rest of the budget).
    Never retried: TLS verification failures, a host name that does not resolve, TLS
    spoken to a plain http server, 401 after credentials were answered, 403, and other
    4xx. The delay before retry ``n`` (from 0) is ``backoff * 2**n`` (0.25 s doubling)
    capped at ``max_backoff`` (3 s), times a random factor in ``[1 - jitter, 1 + jitter]``
    (20 %); a ``Retry-After`` header replaces it, capped at ``max_retry_after`` (60 s).

    **Per transfer** (blob uploads and downloads, on top of the per-request retries): a
    transfer that breaks off is resumed or restarted (default ``resumes`` 5): a chunked
    upload asks the registry where it stands and continues, a monolithic upload restarts
    its session, a download continues with ``Range`` where the registry allows it. An
    upload gives up after ``resumes`` failures in a row with no bytes landed in between, or
    when it would need more than ``resumes`` fresh sessions; a download after ``resumes``
    breaks.
    Content that fails verification (digest or size) is fetched again from scratch at most
    ``refetches`` times (default 2) before [`IntegrityError`][aioras.exceptions.IntegrityError] is
    raised; bytes that fail verification are never kept.

    Worst case, a registry that stalls or trickles every request fails a call after about
    ``(attempts + 1) * timeout`` plus the backoffs (about 8 s); a transfer that keeps
    breaking off after ``(resumes + 1)`` times that.
    """

    attempts: int = 5
    backoff: float = 0.25
    max_backoff: float = 3.0
    jitter: float = 0.2
    max_retry_after: float = 60.0
    statuses: frozenset[int] = frozenset({408, 429, 500, 502, 503, 504})
    resumes: int = 5
    refetches: int = 2

    @property
    def schedule(self) -> Backoff:
        """The backoff these fields describe."""
        return Backoff(self.backoff, self.max_backoff, self.jitter, self.max_retry_after)

    def delay(self, retry: int, retry_after: float | None = None) -> float:
        """Seconds to wait before retry number ``retry`` (0-based)."""
        return self.schedule.delay(retry, retry_after)

    def retrying(
        self,
        budget: int,
        *,
        on: Retryable = Exception,
        pause: bool = True,
        level: int | None = logging.DEBUG,
    ) -> Retrying:
        """A `Retrying` with this policy's backoff and ``budget`` (``attempts``,
        ``resumes`` or ``refetches``); the other options as `Retrying` takes them."""
        return Retrying(budget, on=on, backoff=self.schedule, pause=pause, level=level)


DEFAULT_RETRY = RetryPolicy()
NO_RETRY = RetryPolicy(attempts=0)
