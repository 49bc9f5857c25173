"""Mirroring: many artifacts in one call, planned, run over :func:`~aioras.copy`, reported.

The package's rooms, in the order a mirror goes through them:

- :mod:`~aioras.operations.mirror.plan`: what to mirror (:class:`MirrorSpec`, pairs, TOML
  plans read by :func:`load_plan`, :class:`Connection` for a side reached its own way),
  expanded into one :class:`MirrorJob` per artifact; tag selection by pattern and by
  :mod:`~aioras.operations.mirror.semver` range;
- :mod:`~aioras.operations.mirror.run`: :func:`mirror`, the workers running each job's
  copy, with the destination repositories shared between jobs;
- :mod:`~aioras.operations.mirror.state`: the resume file (:class:`MirrorState`);
- :mod:`~aioras.operations.mirror.report`: :class:`MirrorReport` and the per-artifact
  results and events;
- :mod:`~aioras.operations.mirror.dask`: the plan sharded over Dask workers (the
  ``aioras[dask]`` extra; import it from there, it is not loaded here).

The names users need are importable from this package; the top-level ``aioras`` also
offers :class:`~aioras.MirrorSpec`, :class:`~aioras.MirrorReport` and
:func:`~aioras.load_plan`.
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
