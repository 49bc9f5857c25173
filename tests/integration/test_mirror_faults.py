"""mirror through faults and 429s: everything arrives, and the host's rate limit holds."""

from __future__ import annotations

from collections.abc import Callable

import anyio
import httpx
import pytest

from aioras import AsyncRegistry, MirrorSpec, RateLimits, RetryPolicy
from aioras.testing import LocalRegistry
from support.faultproxy import Fault, FaultProxy, Head
from support.mirrortools import digests, populate, unique

pytestmark = pytest.mark.anyio

RATE, BURST = 15.0, 3


def most_in_one_second(starts: list[float]) -> int:
    starts = sorted(starts)
    return max((sum(1 for t in starts[i:] if t < s + 1.0) for i, s in enumerate(starts)), default=0)


async def test_mirror_through_faults_and_429s_is_exact_and_keeps_the_rate_limit(
    registry_factory: Callable[..., LocalRegistry],
) -> None:
    source, target = registry_factory(), registry_factory()
    assert source.port is not None
    assert target.port is not None
    name = unique("faults")
    tags = [f"t{i}" for i in range(6)]
    policy = RetryPolicy(attempts=8, backoff=0.05, max_backoff=0.5, max_retry_after=2.0, resumes=8)
    async with FaultProxy(source.port, seed=11) as src, FaultProxy(target.port, seed=12) as dst:
        limits = RateLimits(hosts={dst.host: (RATE, BURST), src.host: (RATE, BURST)})
        async with AsyncRegistry(
            insecure=True, retry=policy, timeout=httpx.Timeout(3.0), rate_limits=limits
        ) as reg:
            made = await populate(reg, f"{source.host}/{name}", tags, size=32 * 1024)
            for proxy in (src, dst):
                # One certain 429 with Retry-After, then 10 % faults of every kind.
                proxy.add(Fault("status", status=429, retry_after="1"), nth=6, times=1)
                proxy.add(
                    Fault("reset", where="request", fraction=0.5),
                    Fault("reset", where="response", fraction=0.4),
                    Fault("status", status=500),
                    Fault("status", status=503, forward=True),
                    Fault("status", status=429, retry_after="1"),
                    Fault("truncate", where="response", fraction=0.5),
                    Fault("corrupt", where="response", fraction=0.3),
                    probability=0.10,
                )
            spec = MirrorSpec(f"{src.host}/{name}", f"{dst.host}/{name}")
            with anyio.fail_after(120):
                report = await reg.mirror([spec], concurrency=4)
            assert report.ok
            assert len(report.copied) == len(tags)
            assert dst.faults["status-429"] >= 1
            assert src.injected + dst.injected > 5
            assert await digests(reg, f"{target.host}/{name}", tags) == made
        for proxy in (src, dst):
            starts = [e.started for e in proxy.log]
            assert most_in_one_second(starts) <= RATE + BURST + 1
            for throttled in [e for e in proxy.log if e.fault == "status-429"]:
                # Every task on the host waited out the Retry-After, not only the one told
                # (the first 0.4 s left for the client to read the 429 on a loaded machine).
                during = [
                    e
                    for e in proxy.log
                    if throttled.started + 0.4 < e.started < throttled.started + 0.9
                ]
                assert during == []


async def test_quota_nearly_spent_on_a_manifest_head_pauses_the_host(
    registry_factory: Callable[..., LocalRegistry],
) -> None:
    source, target = registry_factory(), registry_factory()
    assert source.port is not None
    name = unique("quota")
    async with AsyncRegistry(insecure=True) as reg:
        await populate(reg, f"{source.host}/{name}", ["a"])
        # The destination tag names another artifact: the source is resolved with a HEAD
        # (a missing one would have its manifest fetched at once), then copied.
        await populate(reg, f"{target.host}/{name}", ["a"])

    def nearly_spent(head: Head) -> None:
        # Docker Hub's headers: 1 left of 40 per 20 s, so one request's worth is 0.5 s.
        head.set("ratelimit-limit", "40;w=20")
        head.set("ratelimit-remaining", "1;w=20")

    async with FaultProxy(source.port) as proxy, AsyncRegistry(insecure=True) as reg:
        proxy.add(
            Fault("throttle", rate=1 << 30, edit_response=nearly_spent),
            method="HEAD",
            path="/manifests/",
            times=1,
        )
        report = await reg.mirror([(f"{proxy.host}/{name}:a", f"{target.host}/{name}:a")])
        assert len(report.copied) == 1
        head, following = proxy.log[0], proxy.log[1]
    assert head.method == "HEAD"
    assert following.started - head.started >= 0.45
