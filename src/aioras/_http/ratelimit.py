"""Politeness per registry host: a request-rate limit, shared pauses, quota headers.

The transport asks a :class:`HostPacer` before every request it sends and shows it every
answer, in one place, so every call on one :class:`~aioras.AsyncRegistry` (a mirror's many
tasks included) shares it:

- a token bucket per host (``rate`` requests a second, bursts of ``burst``), off by default
  for loopback hosts and on for every other host (see :class:`RateLimits`);
- a pause shared by the host: a ``429`` with ``Retry-After`` holds back every task sending
  to that host until the time is up, not only the task that got it;
- Docker Hub's quota headers (``ratelimit-remaining: <n>;w=<seconds>`` with
  ``ratelimit-limit``), read from any answer (a manifest HEAD carries them and spends no
  quota): when at most ``reserve`` requests are left, the host is paused for the time one
  request's worth of quota takes to come back (``window / limit``), capped at
  ``max_pause``.

It also counts the requests sent per host and method, for reports.
"""

from __future__ import annotations

import ipaddress
import logging
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field

import anyio

from .retry import parse_retry_after

__all__ = ["HostPacer", "RateLimits", "parse_quota"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RateLimits:
    """How fast aioras may send to each registry host.

    ``rate``: requests a second per host (None: no limit), ``burst``: requests that may go
    at once before the rate applies. ``hosts`` overrides both for named hosts
    (``{"registry-1.docker.io": (5.0, 10)}``; a rate of None lifts the limit). Loopback
    hosts (``localhost``, ``127.0.0.0/8``, ``::1``) get no limit unless named in ``hosts``.
    ``reserve``: the quota left (Docker Hub's ``ratelimit-remaining``) at which the host is
    paused; ``max_pause``: the longest pause, in seconds, one answer can impose.
    """

    rate: float | None = 20.0
    burst: int = 20
    hosts: Mapping[str, tuple[float | None, int]] = field(default_factory=dict)
    reserve: int = 1
    max_pause: float = 60.0

    def __post_init__(self) -> None:
        for host, (rate, burst) in {"*": (self.rate, self.burst), **self.hosts}.items():
            if rate is not None and rate <= 0:
                raise ValueError(f"rate for {host} must be above 0, got {rate}")
            if burst < 1:
                raise ValueError(f"burst for {host} must be at least 1, got {burst}")
        if self.max_pause < 0:
            raise ValueError(f"max_pause must be 0 or more, got {self.max_pause}")

    def for_host(self, host: str) -> tuple[float | None, int]:
        """The (rate, burst) that applies to ``host`` (``name[:port]``)."""
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


class _Bucket:
    """One host's token bucket and pause, for one event loop."""

    def __init__(self, rate: float | None, burst: int) -> None:
        self.rate, self.burst = rate, burst
        self.tokens = float(burst)
        self.stamp = time.monotonic()
        self.paused_until = 0.0
        self.lock = anyio.Lock()

    async def take(self) -> None:
        # One task at a time computes its wait, so the bucket never goes below zero.
        async with self.lock:
            while True:
                now = time.monotonic()
                if now < self.paused_until:
                    await anyio.sleep(self.paused_until - now)
                    continue
                if self.rate is None:
                    return
                self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
                self.stamp = now
                if self.tokens >= 1:
                    self.tokens -= 1
                    return
                await anyio.sleep((1 - self.tokens) / self.rate)


class HostPacer:
    """The transport's gate per host: waits before a request, learns from each answer."""

    def __init__(self, limits: RateLimits | None = None) -> None:
        self.limits = limits or RateLimits()
        self.sent: Counter[tuple[str, str]] = Counter()
        """Requests sent, by (host, method)."""
        self._buckets: dict[str, _Bucket] = {}

    def _bucket(self, host: str) -> _Bucket:
        bucket = self._buckets.get(host)
        if bucket is None:
            bucket = self._buckets[host] = _Bucket(*self.limits.for_host(host))
        return bucket

    def requests(self) -> int:
        """Requests sent so far, all hosts and methods."""
        return sum(self.sent.values())

    async def before(self, host: str, method: str) -> None:
        """Wait until ``host`` may get one more request (its pause over, a token free)."""
        await self._bucket(host).take()
        self.sent[(host, method)] += 1

    def after(self, host: str, status: int, headers: Mapping[str, str]) -> None:
        """Learn from an answer: a 429's ``Retry-After``, the quota left."""
        pause = 0.0
        if status == 429:
            pause = _retry_after(headers.get("retry-after"))
        quota = parse_quota(headers.get("ratelimit-remaining"))
        if quota is not None and quota[0] <= self.limits.reserve:
            limit = parse_quota(headers.get("ratelimit-limit"))
            window = quota[1] or (limit[1] if limit else None) or 60.0
            per_request = window / max(limit[0], 1) if limit else window
            pause = max(pause, per_request)
            logger.warning("%s: %d requests left in its quota; pausing", host, quota[0])
        if pause > 0:
            pause = min(pause, self.limits.max_pause)
            bucket = self._bucket(host)
            bucket.paused_until = max(bucket.paused_until, time.monotonic() + pause)
            logger.debug("%s paused for %.2fs", host, pause)


def _retry_after(value: str | None) -> float:
    seconds = parse_retry_after(value)
    return seconds if seconds is not None else 0.0
