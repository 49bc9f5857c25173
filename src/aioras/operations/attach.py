"""Attach: push files as an OCI 1.1 artifact whose ``subject`` is an existing manifest.

The artifact goes by digest only (no tag), packed as image-spec 1.1 with the empty config
and ``artifactType``. A registry that does not answer ``OCI-Subject`` gets the subject's
tag-schema index (``<alg>-<hex>``) maintained by
[`Repository`][aioras.remote.repository.Repository]: read, add, push, delete the superseded index.
Writers of one ``AsyncRegistry`` take turns per subject, so concurrent attaches never lose an entry.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..descriptor import Descriptor, as_descriptor
from ..progress import ProgressCallback
from .push import PushOptions, push_artifact

if TYPE_CHECKING:
    from ..container import Container
    from .endpoints import Endpoints

__all__ = ["AttachOptions", "attach", "delete_artifact"]


@dataclass(frozen=True)
class AttachOptions:
    """The keyword options of an attach, gathered: each is `attach`'s option of its name.

    Documented with [`aioras.AsyncRegistry.attach`][aioras.registry.AsyncRegistry.attach], whose
    keyword parameters are these fields, with the same defaults (``artifact_type`` has none: it is
    required).
    """

    artifact_type: str
    annotations: Mapping[str, str] | None = None
    annotation_file: str | None = None
    disable_path_validation: bool = False
    keep_old_index: bool = False
    concurrency: int | None = None
    progress: ProgressCallback | None = None


async def attach(
    registry: Endpoints,
    subject_reference: str | Container,
    files: Sequence[str | os.PathLike[str]],
    options: AttachOptions,
) -> Descriptor:
    """Attach ``files`` to the manifest ``subject_reference`` names; return the new descriptor.

    The artifact lands in the subject's repository, untagged, as an image-spec 1.1
    manifest: the empty config, ``artifactType``, one layer per file (the empty descriptor
    when there are none), ``annotations`` on the manifest and ``subject`` naming the
    subject's exact digest. Files follow `push` (titles,
    ``:mediaType`` suffixes, directories packed, paths inside the working directory unless
    ``disable_path_validation``). ``keep_old_index`` keeps the superseded tag-schema index
    on registries without the referrers API. The descriptor returned carries
    ``artifactType``.

    Raises [`ManifestValidationError`][aioras.exceptions.ManifestValidationError] for an empty
    ``artifact_type``, [`NotFoundError`][aioras.exceptions.NotFoundError] when the subject does
    not exist, FileNotFoundError or [`UnsafePathError`][aioras.exceptions.UnsafePathError] for bad
    paths, and the registry's typed errors.
    """
    subject = registry.get_container(subject_reference)
    descriptor = as_descriptor(await registry.resolve(subject))
    # The repository without a tag: the artifact is pushed by digest.
    target = registry.get_container(f"{subject.registry}/{subject.api_prefix}")
    subject_descriptor = {k: descriptor[k] for k in ("mediaType", "digest", "size")}
    push_options = PushOptions(
        annotation_file=options.annotation_file,
        manifest_annotations=options.annotations,
        subject=subject_descriptor,
        artifact_type=options.artifact_type,
        disable_path_validation=options.disable_path_validation,
        concurrency=options.concurrency,
        progress=options.progress,
        pack_version="1.1",
        quiet=True,
    )
    _, pushed = await push_artifact(
        registry, target, files, push_options, keep_old_index=options.keep_old_index
    )
    return pushed


async def delete_artifact(registry: Endpoints, reference: str | Container) -> Descriptor:
    """Delete the manifest ``reference`` names (and the tags on it); return its descriptor.

    A referrer is also taken out of its subject's tag-schema index on registries without
    the referrers API, so listings stop naming it. Raises
    [`NotFoundError`][aioras.exceptions.NotFoundError] when there is no such manifest and
    [`UnsupportedOperation`][aioras.exceptions.UnsupportedOperation] when deletes are disabled.
    """
    container = registry.get_container(reference)
    descriptor = as_descriptor(await registry.resolve(container))
    await registry.repository(container).delete(descriptor)
    return descriptor
