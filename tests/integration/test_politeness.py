"""Polite under a registry that minds: the adaptive limit against a 429 rate rule.

Registries 20 ms away (each way) behind :class:`~support.delayproxy.DelayProxy`, dialled by
names that are not loopback, so the defaults for remote hosts are what is tested; the proxy
answers ``429`` with ``Retry-After: 1`` above its rate and counts what it forwarded and what
it refused. Every bound is computed from those counts, not from a clock of the test's own.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import anyio
import pytest

from aioras import AsyncRegistry, MirrorSpec
from aioras.testing import LocalRegistry
from support.delayproxy import DelayProxy, RateRule
from support.mirrortools import digests, populate, unique
from support.wanfixtures import WanProxyFactory

pytestmark = pytest.mark.anyio

RATE = 50
REPOSITORIES, TAGS = 20, 10


def allowance(proxy: DelayProxy) -> float:
    """The seconds the rule needs, at least, for the requests this proxy forwarded."""
    return proxy.stats.forwarded / RATE


async def test_mirror_of_200_through_a_rate_rule_is_exact_rarely_refused_and_near_the_rate(
    registry_factory: Callable[..., LocalRegistry], wan_proxy: WanProxyFactory
) -> None:
    source, target = registry_factory(), registry_factory()
    names = [unique(f"polite{r}") for r in range(REPOSITORIES)]
    tags = [f"t{t}" for t in range(TAGS)]
    made: dict[str, dict[str, str]] = {}
    async with AsyncRegistry(insecure=True) as loopback:

        async def fill(name: str) -> None:
            made[name] = await populate(loopback, f"{source.host}/{name}", tags)

        async with anyio.create_task_group() as tg:
            for name in names:
                tg.start_soon(fill, name)
    rule = RateRule(per_second=RATE, retry_after=1)
    src, dst = wan_proxy(source, rate_rule=rule), wan_proxy(target, rate_rule=rule)
    specs = [MirrorSpec(f"{src.host}/{name}", f"{dst.host}/{name}") for name in names]
    async with AsyncRegistry(insecure=True) as reg:
        started = time.monotonic()
        report = await reg.mirror(specs)
        elapsed = time.monotonic() - started
        assert report.ok
        assert len(report.copied) == REPOSITORIES * TAGS
    async with AsyncRegistry(insecure=True) as loopback:
        for name in names:
            assert await digests(loopback, f"{target.host}/{name}", tags) == made[name]
    forwarded = src.stats.forwarded + dst.stats.forwarded
    refused = src.stats.rejected + dst.stats.rejected
    # The client went faster than the rule somewhere (else nothing here is tested) ...
    assert refused > 0
    # ... and was told so for at most 5 % of its requests, ...
    assert refused <= 0.05 * (forwarded + refused), (refused, forwarded)
    # ... finishing within 1.3 x the time the rule allows for the busier host's requests.
    assert elapsed <= 1.3 * max(allowance(src), allowance(dst)), (
        elapsed,
        src.stats.as_dict(),
        dst.stats.as_dict(),
    )


async def test_one_hosts_429s_slow_that_host_and_not_another(
    registry_factory: Callable[..., LocalRegistry], wan_proxy: WanProxyFactory
) -> None:
    registry = registry_factory()
    name = unique("twohosts")
    tags = [f"t{t}" for t in range(4)]
    async with AsyncRegistry(insecure=True) as loopback:
        made = await populate(loopback, f"{registry.host}/{name}", tags)
    minding = wan_proxy(registry, rate_rule=RateRule(per_second=20, retry_after=1))
    free = wan_proxy(registry)
    finished: dict[str, float] = {}
    async with AsyncRegistry(insecure=True) as reg:
        # Both hosts serve the same repository; 100 tag lookups go to each, all at once.
        async def resolve(host: str, tag: str) -> None:
            desc = await reg.repository(f"{host}/{name}").resolve(tag)
            assert desc["digest"] == made[tag]
            finished[host] = time.monotonic()

        started = time.monotonic()
        async with anyio.create_task_group() as tg:
            for _ in range(25):
                for tag in tags:
                    for proxy in (minding, free):
                        tg.start_soon(resolve, proxy.host, tag)
        pacer = reg._transport.pacer
        assert pacer is not None
        limited, unlimited = pacer.limit(minding.host), pacer.limit(free.host)
    assert minding.stats.rejected > 0
    assert free.stats.rejected == 0
    assert limited is not None
    assert unlimited is not None
    # The host that answered 429 is paced and its window cut; the other one is neither ...
    assert limited.pace is not None
    assert limited.window < unlimited.window
    assert unlimited.pace is None
    # ... and was done long before: the minding host's rule needs 4 s for its 100 requests.
    assert finished[free.host] - started < (finished[minding.host] - started) / 2
