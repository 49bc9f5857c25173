"""Mirroring beyond one machine: the plan sharded by source repository over Dask workers.

Needs the ``aioras[dask]`` extra (``dask[distributed]``). The driver expands the plan (tag
lists, catalogs) once, groups the jobs by source repository (so tokens, rate-limit state
and the blobs a repository's artifacts share stay on one worker), and submits one task per
shard. Each worker builds its own [`AsyncRegistry`][aioras.registry.AsyncRegistry] from
`RegistrySettings` and runs its shard; the shard reports merge into one
[`MirrorReport`][aioras.MirrorReport].

Credentials never travel: `RegistrySettings` holds only where they live on the
workers (a Docker config directory, names of environment variables).
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio

from ... import defaults
from ... import exceptions as exc
from ..._environment import read_environment, read_variable
from ..._http.ratelimit import RateLimits
from .plan import MirrorJob, MirrorPlan, expand, shard_by_repository
from .report import ArtifactFailure, MirrorReport

if TYPE_CHECKING:
    from ...remote.client import RegistryClient
    from .run import MirrorOptions

__all__ = ["RegistrySettings", "mirror_on_dask", "run_shard"]


@dataclass(frozen=True)
class RegistrySettings:
    """How the driver and each worker build their registry object (picklable, no secrets).

    ``docker_config_dir``: the directory of a Docker ``config.json`` on the workers
    (default: each worker's ``$DOCKER_CONFIG`` or ``~/.docker``). ``username_env`` and
    ``password_env``: names of environment variables holding basic credentials on the
    workers. The other fields are [`AsyncRegistry`][aioras.registry.AsyncRegistry] options.
    """

    hostname: str | None = None
    insecure: bool = False
    tls_verify: bool | str = True
    auth_backend: str = "token"
    max_transfers: int = defaults.default_max_transfers
    rate_limits: RateLimits | None = None
    docker_config_dir: str | None = None
    username_env: str | None = None
    password_env: str | None = None

    def build(self) -> RegistryClient:
        """A new registry object with these options, credentials read where they live.

        Raises ValueError when a named credential variable is unset.
        """
        from ...remote.client import RegistryClient

        environment = read_environment()
        if self.docker_config_dir is not None:
            environment = dataclasses.replace(
                environment, docker_config_dir=Path(self.docker_config_dir)
            )
        registry = RegistryClient(
            self.hostname,
            self.insecure,
            self.tls_verify,
            self.auth_backend,
            max_transfers=self.max_transfers,
            environment=environment,
            rate_limits=self.rate_limits,
        )
        if self.username_env or self.password_env:
            names = (self.username_env or "", self.password_env or "")
            username, password = (read_variable(n) if n else None for n in names)
            if username is None or password is None:
                raise ValueError(f"credential variables {names[0]!r}/{names[1]!r} are not set")
            registry.set_basic_auth(username, password)
        return registry


def run_shard(
    jobs: list[MirrorJob], settings: RegistrySettings, options: MirrorOptions
) -> dict[str, Any]:
    """Run one shard on this process with a registry of its own; the report as plain data."""
    return anyio.run(_run_shard, jobs, settings, options)


async def _run_shard(
    jobs: list[MirrorJob], settings: RegistrySettings, options: MirrorOptions
) -> dict[str, Any]:
    from .run import run_jobs

    started = time.monotonic()
    async with settings.build() as registry:
        pacer = registry._transport.pacer
        report = await run_jobs(registry, jobs, options)
        report.requests = pacer.requests() if pacer is not None else 0
    report.duration = time.monotonic() - started
    return report.to_dict()


def mirror_on_dask(
    plan: MirrorPlan,
    client: Any,
    *,
    settings: RegistrySettings,
    concurrency: int = defaults.default_mirror_concurrency,
    dry_run: bool = False,
    keep_going: bool = False,
) -> MirrorReport:
    """Mirror ``plan`` on the workers of a ``dask.distributed.Client``; the merged report.

    Blocks until every shard is done (call it from synchronous code, or in a thread).
    Options as [`aioras.AsyncRegistry.mirror`][aioras.registry.AsyncRegistry.mirror]; each shard
    runs ``concurrency`` artifacts at once on its worker. Raises ValueError for bad options,
    [`InvalidMirrorPlan`][aioras.exceptions.InvalidMirrorPlan] for a plan entry refused, the listing
    errors of the plan's registries (a listed name or tag breaking the grammar among them,
    reported instead with ``keep_going``), and, unless ``keep_going``,
    [`MirrorError`][aioras.exceptions.MirrorError] (with the merged ``report``) when an artifact
    failed; shards already running finish first.
    """
    if concurrency < 1:
        raise ValueError(f"concurrency must be at least 1, got {concurrency}")
    started = time.monotonic()
    refused: list[ArtifactFailure] | None = [] if keep_going else None
    jobs = anyio.run(_expand, settings, plan, refused)
    from .run import MirrorOptions

    options = MirrorOptions(concurrency=concurrency, dry_run=dry_run, keep_going=keep_going)
    futures = [
        client.submit(run_shard, shard, settings, options, pure=False)
        for shard in shard_by_repository(jobs)
    ]
    report = MirrorReport(failed=list(refused or ()))
    for doc in client.gather(futures):
        report.merge(MirrorReport.from_dict(doc))
    report.duration = time.monotonic() - started
    if report.failed and not keep_going:
        first = report.failed[0]
        raise exc.MirrorError(
            f"{len(report.failed)} artifacts failed; first {first.source}: {first.message}",
            report=report,
        )
    return report


async def _expand(
    settings: RegistrySettings, plan: MirrorPlan, refused: list[ArtifactFailure] | None
) -> list[MirrorJob]:
    from .run import Clients

    async with settings.build() as registry, Clients(registry) as clients:
        return await expand(registry, plan, refused=refused, connect=clients.get)
