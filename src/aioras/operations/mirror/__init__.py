"""Mirroring: many artifacts in one call, planned, run over [`copy`][aioras.operations.copy.copy],
reported.

The package's rooms, in the order a mirror goes through them:

- `plan`: what to mirror ([`MirrorSpec`][aioras.MirrorSpec], pairs, TOML
  plans read by [`load_plan`][aioras.load_plan], `Connection` for a side reached its own way),
  expanded into one `MirrorJob` per artifact; tag selection by pattern and by
  `semver` range;
- `run`: `mirror`, the workers running each job's
  copy, with the destination repositories shared between jobs;
- `state`: the resume file (`MirrorState`);
- `report`: [`MirrorReport`][aioras.MirrorReport] and the per-artifact
  results and events;
- `dask`: the plan sharded over Dask workers (the
  ``aioras[dask]`` extra; import it from there, it is not loaded here).

The names users need are importable from this package; the top-level ``aioras`` also
offers [`MirrorSpec`][aioras.MirrorSpec], [`MirrorReport`][aioras.MirrorReport] and
[`load_plan`][aioras.load_plan].
"""

from __future__ import annotations

from .plan import (
    Connection,
    MirrorJob,
    MirrorPlan,
    MirrorSpec,
    expand,
    load_plan,
    select_tags,
    shard_by_repository,
)
from .report import ArtifactEvent, ArtifactFailure, ArtifactResult, MirrorReport, Outcome
from .run import (
    IN_STATE,
    REFERRERS_ADDED,
    REPOINTED,
    TAGGED,
    UP_TO_DATE,
    WOULD_ADD_REFERRERS,
    WOULD_REPOINT,
    Clients,
    MirrorOptions,
    MirrorProgress,
    mirror,
    run_jobs,
)
from .semver import SemverRange, Version, parse_version
from .state import MirrorState

__all__ = [
    "IN_STATE",
    "REFERRERS_ADDED",
    "REPOINTED",
    "TAGGED",
    "UP_TO_DATE",
    "WOULD_ADD_REFERRERS",
    "WOULD_REPOINT",
    "ArtifactEvent",
    "ArtifactFailure",
    "ArtifactResult",
    "Clients",
    "Connection",
    "MirrorJob",
    "MirrorOptions",
    "MirrorPlan",
    "MirrorProgress",
    "MirrorReport",
    "MirrorSpec",
    "MirrorState",
    "Outcome",
    "SemverRange",
    "Version",
    "expand",
    "load_plan",
    "mirror",
    "parse_version",
    "run_jobs",
    "select_tags",
    "shard_by_repository",
]
