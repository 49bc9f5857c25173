"""mirror: a dry run and the real run agree, referrers included; listing errors with keep_going.

A re-sync of an artifact whose destination tag names the source digest costs one HEAD on
each side, plus, with ``referrers = true``, the referrers' listings: no blob is asked
about, nothing is sent, and it is reported skipped (the dry run says the same). When the
source gained a referrer, both say so, with a reason.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from aioras import AsyncRegistry, MirrorSpec
from aioras.exceptions import NotFoundError
from aioras.operations.mirror import REFERRERS_ADDED, UP_TO_DATE, WOULD_ADD_REFERRERS
from aioras.testing import LocalRegistry
from support.faultproxy import Exchange, FaultProxy
from support.mirrortools import digests, populate, unique

pytestmark = pytest.mark.anyio

SIG = "application/vnd.example.signature"


def referrer_listing(exchange: Exchange) -> bool:
    """A GET of the referrers API or of a tag-schema index (``sha256-<hex>``)."""
    return exchange.method == "GET" and (
        "/referrers/" in exchange.target or "/manifests/sha256-" in exchange.target
    )


async def test_dry_run_and_resync_agree_on_an_artifact_with_referrers(
    registry: LocalRegistry, fresh_registry: LocalRegistry, tmp_cwd: Path
) -> None:
    assert registry.port is not None
    assert fresh_registry.port is not None
    async with FaultProxy(registry.port) as src, FaultProxy(fresh_registry.port) as dst:
        await _agree_with_referrers(src, dst, tmp_cwd)


async def _agree_with_referrers(src: FaultProxy, dst: FaultProxy, tmp_cwd: Path) -> None:
    name = unique("refsync/app")
    (tmp_cwd / "sig.txt").write_text("signed")
    async with AsyncRegistry(insecure=True) as reg:
        await populate(reg, f"{src.host}/{name}", ["v1", "v2"])
        await reg.attach(f"{src.host}/{name}:v1", ["sig.txt"], artifact_type=SIG)
        spec = MirrorSpec(f"{src.host}/{name}", f"{dst.host}/{name}", referrers=True)
        first = await reg.mirror([spec])
        assert len(first.copied) == 2

    async with AsyncRegistry(insecure=True) as reg:  # a new run: nothing remembered
        dry = await reg.mirror([spec], dry_run=True)
        src.log.clear()
        dst.log.clear()
        again = await reg.mirror([spec])
    assert not dry.planned
    assert not again.copied
    assert [r.reason for r in again.skipped] == [UP_TO_DATE, UP_TO_DATE]
    assert again.bytes_sent == 0
    for proxy in (src, dst):
        heads = [e for e in proxy.log if e.method == "HEAD"]
        assert sorted(e.target.rsplit("/", 1)[1] for e in heads) == ["v1", "v2"]
        others = [e for e in proxy.log if e.method != "HEAD"]
        # The source's tag list, then only referrers' listings: no blob asked about.
        assert all(referrer_listing(e) or e.target.endswith("/tags/list") for e in others)

    # The source gains a referrer: both runs say so, with the reason.
    async with AsyncRegistry(insecure=True) as reg:
        (tmp_cwd / "sbom.json").write_text("{}")
        sbom = await reg.attach(f"{src.host}/{name}:v2", ["sbom.json"], artifact_type=SIG)
        dry = await reg.mirror([spec], dry_run=True)
        real = await reg.mirror([spec])
        assert [(p.destination, p.reason) for p in dry.planned] == [
            (f"{dst.host}/{name}:v2", WOULD_ADD_REFERRERS)
        ]
        assert [(c.destination, c.reason) for c in real.copied] == [
            (f"{dst.host}/{name}:v2", REFERRERS_ADDED)
        ]
        listed = await reg.get_referrers(f"{dst.host}/{name}:v2")
        assert [d["digest"] for d in listed] == [sbom["digest"]]


async def test_keep_going_reports_a_source_repository_that_does_not_exist_and_runs_the_rest(
    registry: LocalRegistry, fresh_registry: LocalRegistry
) -> None:
    name = unique("keeplist/app")
    missing = unique("keeplist/none")
    async with AsyncRegistry(insecure=True) as reg:
        made = await populate(reg, f"{registry.host}/{name}", ["a", "b"])
        plan = [
            MirrorSpec(f"{registry.host}/{missing}", f"{fresh_registry.host}/{missing}"),
            MirrorSpec(f"{registry.host}/{name}", f"{fresh_registry.host}/{name}"),
        ]
        report = await reg.mirror(plan, keep_going=True)
        assert [(f.source, f.error_type) for f in report.failed] == [
            (f"{registry.host}/{missing}", "NotFoundError")
        ]
        assert len(report.copied) == 2
        assert await digests(reg, f"{fresh_registry.host}/{name}", "ab") == made
        with pytest.raises(NotFoundError):
            await reg.mirror(plan)  # without keep_going: raised as itself
