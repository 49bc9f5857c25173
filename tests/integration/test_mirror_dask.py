"""mirror on Dask: a LocalCluster of two worker processes gives the local run's result."""

from __future__ import annotations

import json
import pickle
from collections.abc import Callable, Iterator
from typing import Any

import anyio
import pytest

from aioras import AsyncRegistry, MirrorSpec
from aioras.operations.mirror.dask import RegistrySettings, mirror_on_dask
from aioras.testing import LocalRegistry
from support.harness import BasicAuthUser, missing
from support.mirrortools import digests, populate, unique

USER_VAR, PASS_VAR = "AIORAS_TEST_MIRROR_USER", "AIORAS_TEST_MIRROR_PASS"


@pytest.fixture(scope="module")
def dask_client(htpasswd_user: BasicAuthUser) -> Iterator[Any]:
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError:
        missing("dask[distributed]", "pip install 'aioras[dask]'")
    with pytest.MonkeyPatch.context() as patch:
        # Worker processes inherit these: credentials reach them by name only.
        patch.setenv(USER_VAR, htpasswd_user.username)
        patch.setenv(PASS_VAR, htpasswd_user.password)
        # Any free port for the dashboard: a fixed one collides with another cluster running.
        with (
            LocalCluster(
                n_workers=2, processes=True, threads_per_worker=1, dashboard_address=":0"
            ) as cluster,
            Client(cluster) as client,
        ):
            yield client


def normalised(report_json: str, prefix: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(report_json)
    for key in ("duration", "requests"):
        doc.pop(key)
    for key in ("copied", "skipped", "planned", "failed"):
        for entry in doc[key]:
            entry["destination"] = entry["destination"].replace(prefix, "")
    return doc


@pytest.mark.anyio
async def test_dask_mirror_gives_the_same_destination_and_report_as_local(
    dask_client: Any,
    registry_factory: Callable[..., LocalRegistry],
    basic_auth_registry: LocalRegistry,
    htpasswd_user: BasicAuthUser,
) -> None:
    source = registry_factory()
    names = [unique(f"dask/r{i}") for i in range(3)]
    made = {}
    async with AsyncRegistry(insecure=True) as reg:
        for name in names:
            made[name] = await populate(reg, f"{source.host}/{name}", ["a", "b", "c"])

    def plan(prefix: str) -> list[MirrorSpec]:
        return [
            MirrorSpec(f"{source.host}/{n}", f"{basic_auth_registry.host}/{prefix}/{n}", newest=2)
            for n in names
        ]

    async with AsyncRegistry(insecure=True) as reg:
        reg.set_basic_auth(htpasswd_user.username, htpasswd_user.password)
        local = await reg.mirror(plan("local"), concurrency=2)
    settings = RegistrySettings(insecure=True, username_env=USER_VAR, password_env=PASS_VAR)
    assert htpasswd_user.password.encode() not in pickle.dumps(settings)
    remote = await anyio.to_thread.run_sync(
        lambda: mirror_on_dask(plan("dask"), dask_client, settings=settings, concurrency=2)
    )
    assert normalised(remote.to_json(), "/dask/") == normalised(local.to_json(), "/local/")
    assert len(remote.copied) == 6
    workers = {info["id"] for info in dask_client.scheduler_info()["workers"].values()}
    assert len(workers) == 2
    async with AsyncRegistry(insecure=True) as reg:
        reg.set_basic_auth(htpasswd_user.username, htpasswd_user.password)
        for name in names:
            there = f"{basic_auth_registry.host}"
            local_tags = await digests(reg, f"{there}/local/{name}", "abc")
            assert await digests(reg, f"{there}/dask/{name}", "abc") == local_tags
            assert set(local_tags.items()) <= set(made[name].items())
            assert len(local_tags) == 2
