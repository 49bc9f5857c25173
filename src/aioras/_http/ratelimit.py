"""Politeness per registry host: an adaptive in-flight limit, shared pauses, quota headers.

The transport asks a `HostPacer` before every request it sends and tells it how each
one ended, in one place, so every call on one [`AsyncRegistry`][aioras.registry.AsyncRegistry] (a
mirror's many tasks included) shares it. No fixed request rate applies by default: registries that
mind say so (``429``, ``Retry-After``, quota headers), and aioras listens. Per host:

- **An adaptive limit on requests in flight** (`AdaptiveLimit`, AIMD). A request is
  in flight from the moment it is sent until its answer's headers arrive (a blob body then
  streams outside the window; ``max_transfers`` bounds those). The window starts at
  `INITIAL_WINDOW` and, until the host first shows strain, grows by one per clean
  answer (doubling each round trip); after that by one per window's worth of clean answers.
  It only grows while it is what holds requests back, up to `MAX_WINDOW`. A
  ``429``, ``503``, ``504``, a timeout or a connection reset halves it (to 1 at least),
  once per round trip: answers to requests sent before the last cut do not cut again.
- **A pace learned from a 429.** A window bounds requests in flight, not a rate: against
  a registry counting requests a second, a window of one still goes as fast as the round
  trip allows. So a ``429`` also sets a pace: `PACE_FACTOR` times the rate of clean
  answers the host gave over the second before it (the rate it was accepting; requests of
  that second answered clean after the 429 count too), or times the pace already set,
  whichever is lower. Requests then go at that pace, which probes upward by
  `PACE_PROBE` requests a second per clean answer (2 % a second while the pace is
  what holds requests back), ten times slower between `PACE_PLATEAU` times the
  accepted rate and that rate (each return to the limit costs a ``Retry-After``), and is
  dropped once it reaches `PACE_RELEASE` times it: the registry stopped minding.
- **A pause shared by the host.** A ``429`` with ``Retry-After`` holds back every task
  sending to that host until the time is up, not only the task that got it; the requests
  then resume at the pace, not as a burst. The time counts from the answer, or, for a
  request sent before the cut its episode began with, from when it was sent: an answer
  held up (a streamed upload body waiting on another host's pause) extends nothing.
- **Docker Hub's quota headers** (``ratelimit-remaining: <n>;w=<seconds>`` with
  ``ratelimit-limit``), read from any answer (a manifest HEAD carries them and spends no
  quota): when at most ``reserve`` requests are left, the host is paused for the time one
  request's worth of quota takes to come back (``window / limit``), capped at
  ``max_pause``.
- **A fixed rate, opt-in** ([`RateLimits`][aioras.RateLimits] ``rate`` or ``hosts``): a token
  bucket, for a registry that publishes a rate it wants kept.

A request to a host with no pause, pace or fixed rate engaged costs a few counter updates
and two clock reads: no lock, no wait. The pacer also counts the requests sent per host and
method, for reports.
"""

from __future__ import annotations

import ipaddress
import logging
import math
import time
from collections import Counter, deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

import anyio

from .retry import parse_retry_after

__all__ = [
    "INITIAL_WINDOW",
    "MAX_WINDOW",
    "PACE_FACTOR",
    "PACE_PLATEAU",
    "PACE_PROBE",
    "PACE_RELEASE",
    "AdaptiveLimit",
    "HostPacer",
    "RateLimits",
    "Ticket",
    "parse_quota",
]

logger = logging.getLogger(__name__)

# Requests in flight per host before any answer is back. At 20 ms each way, 50 pulls started
# at once send 50 manifest GETs. With 32, the other 18 waited for the first answers: one
# round trip on new connections (~100 ms at 20 ms each way), and the last manifest of the
# 50 came back at 495 ms instead of 216 ms (the WAN bench's pull, traced). 64 covers such a
# burst; a registry that sheds load at its first answers sees at most 64, then half.
INITIAL_WINDOW = 64
MAX_WINDOW = 256
# A learned pace: 0.9 x the accepted rate; +0.02 req/s per clean answer (2 %/s while the pace
# holds requests back), a tenth of that from 0.95 x up to the accepted rate; off at 4 x.
# Against 50 requests/s with Retry-After: 1 (tests/integration/test_politeness.py, 20 ms
# each way): probing at 2 %/s up to the limit met it every 4-5 s, each time a second's pause,
# and took 1.36 x the time the rule allows; with the slow band near the limit, 1.19 x
# (1.4 % of requests answered 429).
PACE_FACTOR = 0.9
PACE_PROBE = 0.02
PACE_PLATEAU = 0.95
PACE_RELEASE = 4.0
_MIN_PACE = 1.0
_PACE_BURST = 0.1


@dataclass(frozen=True)
class RateLimits:
    """How aioras paces the requests it sends to each registry host.

    By default no fixed rate applies (``rate=None``); every host gets the adaptive limit
    of `aioras._http.ratelimit` (``adaptive=True``): requests in flight are bounded by
    a window that grows while answers are clean and shrinks on ``429``, ``503``, timeouts
    and resets, a ``429`` sets a pace learned from the rate the host was accepting, and
    ``Retry-After`` pauses the whole host.

    ``rate``: a fixed rate in requests a second for every host that is not loopback (None:
    none), ``burst``: requests that may go at once before the rate applies. ``hosts``
    sets both for named hosts (``{"registry-1.docker.io": (5.0, 10)}``; a rate of None
    lifts it); loopback hosts (``localhost``, ``127.0.0.0/8``, ``::1``) get no fixed rate
    unless named there. ``reserve``: the quota left (Docker Hub's ``ratelimit-remaining``)
    at which the host is paused; ``max_pause``: the longest pause, in seconds, one answer
    can impose. ``adaptive=False`` turns the adaptive limit off (pauses and fixed rates
    still apply).
    """

    rate: float | None = None
    burst: int = 20
    hosts: Mapping[str, tuple[float | None, int]] = field(default_factory=dict)
    reserve: int = 1
    max_pause: float = 60.0
    adaptive: bool = True

    def __post_init__(self) -> None:
        for host, (rate, burst) in {"*": (self.rate, self.burst), **self.hosts}.items():
            if rate is not None and rate <= 0:
                raise ValueError(f"rate for {host} must be above 0, got {rate}")
            if burst < 1:
                raise ValueError(f"burst for {host} must be at least 1, got {burst}")
        if self.max_pause < 0:
            raise ValueError(f"max_pause must be 0 or more, got {self.max_pause}")

    def for_host(self, host: str) -> tuple[float | None, int]:
        """The fixed (rate, burst) that applies to ``host`` (``name[:port]``)."""
        if host in self.hosts:
            return self.hosts[host]
        if _is_loopback(host):
            return None, self.burst
        return self.rate, self.burst


def _is_loopback(host: str) -> bool:
    if host.startswith("["):  # [v6]:port
        name = host[1 : host.find("]")]
    else:
        name = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def parse_quota(value: str | None) -> tuple[int, float | None] | None:
    """``"<n>;w=<seconds>"`` (Docker Hub's quota header) as (n, window), or None."""
    if not value:
        return None
    head, *params = value.split(";")
    try:
        count = int(head.strip())
    except ValueError:
        return None
    window = None
    for param in params:
        key, _, raw = param.partition("=")
        if key.strip().lower() == "w":
            try:
                window = float(raw.strip())
            except ValueError:
                window = None
    return count, window


class AdaptiveLimit:
    """One host's AIMD window on requests in flight, and the pace a ``429`` teaches.

    The rule is the module docstring's. `acquire` takes a slot (waiting, in order,
    while the window is full); every slot taken is given back once, by `release`,
    after which `clean`, `throttled` or `congested` tell the limit what
    the answer was. Times are ``time.monotonic()`` seconds; ``sent`` is when the request
    went, so that answers to requests sent before a cut do not cut again.
    """

    def __init__(self, window: int = INITIAL_WINDOW) -> None:
        self.window = float(window)
        self.in_flight = 0
        self.pace: float | None = None
        """Requests a second learned from a 429, or None."""
        self._peak = 0.0  # the rate the host accepted when it last answered 429
        self._slow_start = True
        self._cut_at = -math.inf
        self._measured = -math.inf  # when the pace was last measured
        self._resumed_at = -math.inf
        self._waiters: deque[anyio.Event] = deque()
        # Clean answers counted per whole second: this one and the one before.
        self._second = 0
        self._this = 0
        self._last = 0

    async def acquire(self) -> None:
        """Take a slot in the window, waiting for one (first come, first served)."""
        if self.in_flight < self.window and not self._waiters:
            self.in_flight += 1
            return
        event = anyio.Event()
        self._waiters.append(event)
        try:
            await event.wait()
        except BaseException:
            if event.is_set():  # the slot was handed over as the wait was cancelled
                self.release()
            else:
                self._waiters.remove(event)
            raise

    def release(self) -> None:
        """Give a slot back (the answer's headers came, or the request failed)."""
        self.in_flight -= 1
        self._wake()

    def _wake(self) -> None:
        while self._waiters and self.in_flight < self.window:
            self.in_flight += 1
            self._waiters.popleft().set()

    def clean(self, sent: float, now: float) -> None:
        """An answer that shows no strain: grow the window (if full) and the pace."""
        second = int(now)
        if second != self._second:
            self._last = self._this if second == self._second + 1 else 0
            self._this, self._second = 0, second
        self._this += 1
        if self._waiters or self.in_flight + 1 >= self.window:
            step = 1.0 if self._slow_start else 1.0 / self.window
            self.window = min(MAX_WINDOW, self.window + step)
            self._wake()
        if self.pace is None:
            return
        if self._measured - 1.0 <= sent < self._measured:
            # Sent within the second measured, answered after the 429: accepted too. (At
            # 20 ms each way, a third of what a host accepted can still be on its way back.)
            self._peak += 1
            self.pace += PACE_FACTOR
        elif self.pace < PACE_PLATEAU * self._peak or self.pace > self._peak:
            self.pace += PACE_PROBE
            if self.pace >= self._peak * PACE_RELEASE:
                logger.debug("pace lifted at %.1f requests/s", self.pace)
                self.pace = None
        else:
            # Near the rate the 429 came at: every return there costs a Retry-After.
            self.pace += PACE_PROBE / 10

    def reacted(self, sent: float) -> bool:
        """True when a request sent at ``sent`` went before the last cut (reacted to)."""
        return sent < self._cut_at

    def congested(self, sent: float, now: float) -> bool:
        """A ``503``, a timeout or a reset: halve the window, once per round trip.

        Returns False when the request went before the last cut (already reacted to).
        """
        if self.reacted(sent):
            return False
        self._cut_at = now
        self._slow_start = False
        self.window = max(1.0, self.window / 2)
        return True

    def throttled(self, sent: float, now: float) -> None:
        """A ``429``: cut the window, and pace at what the host was accepting."""
        if not self.congested(sent, now):
            return
        if self.pace is not None and now - 1.0 < self._resumed_at:
            # The second before was partly a pause: no honest rate in it; keep what was learned.
            base = self.pace
        else:
            # Requests of that second still on their way back add to it as they come clean
            # (clean): a 429 read before any clean answer still learns the rate.
            accepted = self._accepted(now)
            base = accepted if self.pace is None else min(accepted, self.pace)
            self._measured = now
        self._peak = base
        self.pace = max(_MIN_PACE, base * PACE_FACTOR)
        logger.debug("paced at %.1f requests/s after a 429", self.pace)

    def paused(self, until: float) -> None:
        """The host is paused until ``until``: no rate is measured across the pause."""
        self._resumed_at = max(self._resumed_at, until)

    def _accepted(self, now: float) -> float:
        """Clean answers over the second before ``now`` (a sliding-window estimate)."""
        second = int(now)
        if second == self._second:
            return self._this + self._last * (1.0 - (now - second))
        if second == self._second + 1:
            return self._this * (1.0 - (now - second))
        return 0.0


class _Host:
    """One host's politeness state, for one event loop."""

    def __init__(self, name: str, rate: float | None, burst: int, adaptive: bool) -> None:
        self.name = name
        self.rate, self.burst = rate, burst
        self.limit = AdaptiveLimit() if adaptive else None
        self.tokens = float(burst)
        self.stamp = time.monotonic()
        self.paused_until = 0.0
        self.lock = anyio.Lock()

    def _pace(self) -> tuple[float | None, int]:
        """The rate and burst holding requests now: the fixed one, the learned one, both."""
        learned = self.limit.pace if self.limit is not None else None
        if learned is None:
            return self.rate, self.burst
        if self.rate is not None and self.rate <= learned:
            return self.rate, self.burst
        # A tenth of a second's worth may go at once: a task woken late catches up instead
        # of the pace losing what the event loop's lateness cost (sending at 0.9 x the pace).
        return learned, max(1, int(learned * _PACE_BURST))

    async def gate(self) -> None:
        """Wait out the host's pause and its pace (if any)."""
        if (
            self.rate is None
            and (self.limit is None or self.limit.pace is None)
            and time.monotonic() >= self.paused_until
            and not self.lock.locked()
        ):
            return
        # One task at a time computes its wait, so the bucket never goes below zero.
        async with self.lock:
            while True:
                now = time.monotonic()
                if now < self.paused_until:
                    await anyio.sleep(self.paused_until - now)
                    # Resume one request at a time: nothing saved up during the pause.
                    self.tokens, self.stamp = min(self.tokens, 1.0), time.monotonic()
                    continue
                rate, burst = self._pace()
                if rate is None:
                    return
                self.tokens = min(burst, self.tokens + (now - self.stamp) * rate)
                self.stamp = now
                if self.tokens >= 1:
                    self.tokens -= 1
                    return
                await anyio.sleep((1 - self.tokens) / rate)


class Ticket(NamedTuple):
    """A request let through by `HostPacer.before`: its host and when it went."""

    host: _Host
    sent: float


_THROTTLED = 429
_CONGESTED = frozenset({503, 504})


class HostPacer:
    """The transport's gate per host: waits before a request, learns from each answer."""

    def __init__(self, limits: RateLimits | None = None) -> None:
        self.limits = limits or RateLimits()
        self.sent: Counter[tuple[str, str]] = Counter()
        """Requests sent, by (host, method)."""
        self._hosts: dict[str, _Host] = {}

    def _host(self, host: str) -> _Host:
        state = self._hosts.get(host)
        if state is None:
            rate, burst = self.limits.for_host(host)
            state = self._hosts[host] = _Host(host, rate, burst, self.limits.adaptive)
        return state

    def limit(self, host: str) -> AdaptiveLimit | None:
        """The adaptive limit of ``host`` (None when ``adaptive=False``)."""
        return self._host(host).limit

    def requests(self) -> int:
        """Requests sent so far, all hosts and methods."""
        return sum(self.sent.values())

    async def before(self, host: str, method: str) -> Ticket:
        """Wait until ``host`` may get one more request: a slot, its pause over, its pace.

        Every ticket returned must be handed back once, to `after` or `failed`.
        """
        state = self._host(host)
        if state.limit is not None:
            await state.limit.acquire()
        try:
            await state.gate()
        except BaseException:
            if state.limit is not None:
                state.limit.release()
            raise
        self.sent[(host, method)] += 1
        return Ticket(state, time.monotonic())

    def after(self, ticket: Ticket, status: int, headers: Mapping[str, str]) -> None:
        """Learn from an answer's status and headers: strain, ``Retry-After``, the quota left."""
        state = ticket.host
        limit = state.limit
        now = time.monotonic()
        # The pause a Retry-After asks for counts from the answer, unless the request went
        # before the host's last cut: its answer was held up (a streamed body waiting on
        # another host), and the episode it belongs to was already paused for.
        since = now
        if limit is not None:
            if limit.reacted(ticket.sent):
                since = ticket.sent
            limit.release()
            if status == _THROTTLED:
                limit.throttled(ticket.sent, now)
            elif status in _CONGESTED:
                limit.congested(ticket.sent, now)
            else:
                limit.clean(ticket.sent, now)
        pause = 0.0
        if status == _THROTTLED:
            pause = _retry_after(headers.get("retry-after"))
        quota = parse_quota(headers.get("ratelimit-remaining"))
        if quota is not None and quota[0] <= self.limits.reserve:
            limit_header = parse_quota(headers.get("ratelimit-limit"))
            window = quota[1] or (limit_header[1] if limit_header else None) or 60.0
            per_request = window / max(limit_header[0], 1) if limit_header else window
            pause = max(pause, per_request)
            logger.warning("%s: %d requests left in its quota; pausing", state.name, quota[0])
        if pause > 0:
            pause = min(pause, self.limits.max_pause)
            state.paused_until = max(state.paused_until, since + pause)
            if limit is not None:
                limit.paused(state.paused_until)
            logger.debug("%s paused for %.2fs", state.name, pause)

    def failed(self, ticket: Ticket, *, congested: bool) -> None:
        """The request got no answer: ``congested`` for a timeout or a reset, not a cancel."""
        limit = ticket.host.limit
        if limit is not None:
            limit.release()
            if congested:
                limit.congested(ticket.sent, time.monotonic())

    def broke(self, ticket: Ticket) -> None:
        """The answer's body broke off (a reset, a stall) after its slot was given back."""
        limit = ticket.host.limit
        if limit is not None:
            limit.congested(ticket.sent, time.monotonic())


def _retry_after(value: str | None) -> float:
    seconds = parse_retry_after(value)
    return seconds if seconds is not None else 0.0
