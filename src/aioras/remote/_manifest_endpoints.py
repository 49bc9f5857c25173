"""``ManifestMixin``: the manifest endpoints of :class:`~aioras.remote.registry.AsyncRegistry`.

Uploads (validated documents, or exact bytes) sent again when the registry stored other
bytes, fetches verified against digests and schemas, resolution of a reference (or of one
platform of an index) to a descriptor, and deletes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import httpx
import jsonschema

from .. import defaults, schemas
from .. import exceptions as exc
from .._http.headers import header_number
from .._http.responses import raise_for_status
from .._manifests import check_manifest, check_manifest_digests, descriptor_of, media_type_of
from ..container import Container
from ..content.graph import parse_platform
from ..descriptor import as_descriptor
from ..digest import digest_bytes, validate_digest
from ..oci import manifest_bytes
from ..operations.index import choose_manifest
from ._core import ContainerLike, RegistryCore

__all__ = ["ManifestMixin"]

_T = TypeVar("_T")
# Refusals of a schema-valid manifest that a second try can cure (see upload_manifest).
_RESEND_CODES = frozenset({"MANIFEST_INVALID", "DIGEST_INVALID", "MANIFEST_BLOB_UNKNOWN"})


class ManifestMixin(RegistryCore):
    """The manifest endpoints: ``upload_manifest`` ... ``delete_manifest``."""

    # -- manifests -----------------------------------------------------------------------
    async def upload_manifest(
        self,
        manifest: Mapping[str, Any],
        container: ContainerLike,
        *,
        reference: str | None = None,
        media_type: str | None = None,
    ) -> httpx.Response:
        """Validate and PUT a manifest under the container's tag (or ``reference``).

        The body is :func:`aioras.oci.manifest_bytes` of ``manifest`` and its
        ``Content-Type`` the manifest's own media type. The PUT is retried like any
        idempotent request; besides, when the registry stored other bytes than were sent
        (its ``Docker-Content-Digest`` differs) or refuses the document with
        MANIFEST_INVALID, DIGEST_INVALID or MANIFEST_BLOB_UNKNOWN although it passed the
        schema check here, it is sent again, at most ``retry.refetches`` times. Raises
        :class:`~aioras.exceptions.ManifestValidationError` before sending anything when the
        manifest fails its schema, :class:`~aioras.exceptions.DigestMismatch` when the
        registry keeps storing other bytes, and the registry's typed errors.
        """
        container = self.get_container(container)
        media_type = manifest.get("mediaType") or media_type or defaults.default_manifest_media_type
        schemas.validate(dict(manifest), media_type)
        return await self._put_manifest(
            manifest_bytes(manifest), container, media_type, reference or container.reference
        )

    async def push_manifest_bytes(
        self,
        data: bytes,
        container: ContainerLike,
        *,
        media_type: str,
        reference: str | None = None,
    ) -> httpx.Response:
        """PUT a manifest as exactly these bytes, with ``media_type`` as its Content-Type.

        Nothing is parsed or re-serialised, so the digest stays that of ``data``: use it
        to copy manifests (a signature names its subject's digest). Stored under the
        container's reference, or ``reference`` (a tag or the digest). Retried and
        re-sent as :meth:`upload_manifest` is; raises
        :class:`~aioras.exceptions.DigestMismatch` when the registry keeps storing other
        bytes, and the registry's typed errors.
        """
        container = self.get_container(container)
        return await self._put_manifest(
            data, container, media_type, reference or container.reference
        )

    async def _put_manifest(
        self, data: bytes, container: Container, media_type: str, ref: str
    ) -> httpx.Response:
        digest = digest_bytes(data)
        url = self._url(container.manifest_url(ref))
        what = f"manifest {container.api_prefix}:{ref}"
        policy = self._transport.retry
        resends = policy.retrying(policy.refetches, level=logging.WARNING)
        while True:
            response = await self._send("PUT", url, headers={"Content-Type": media_type}, body=data)
            codes = exc.parse_error_body(response.content) if response.status_code == 400 else ()
            if _RESEND_CODES.intersection(e.code for e in codes) and resends.allows():
                # The document passed our schema check, so the registry saw other bytes
                # (altered on the way) or raced its own blob commit: send it again.
                await resends.wait(note=f"{what} refused by the registry; sending it again")
                continue
            await raise_for_status(response, (201, 200), what=what)
            returned = response.headers.get("docker-content-digest")
            if not returned or returned == digest:
                return response
            error = exc.DigestMismatch(
                expected=digest, actual=returned, what="digest the registry stored for the manifest"
            )
            if not resends.allows(error):
                raise error
            # Bytes altered on the way were stored under the tag: overwrite them.
            await resends.wait(error, note=f"{what}: {error}; sending it again")

    async def fetch_manifest(
        self,
        container: ContainerLike,
        allowed_media_type: Sequence[str] | None = None,
        *,
        max_size: int = defaults.max_manifest_size,
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Fetch and verify a manifest; return ``(manifest, descriptor)``.

        The descriptor holds the manifest's ``mediaType``, ``digest`` and ``size``. A
        manifest larger than ``max_size`` is refused without being read whole; a pull by
        digest is checked against that digest, and ``Docker-Content-Digest`` when sent; a
        ``Content-Type`` contradicting the ``mediaType`` inside is refused; the document
        is validated against its schema. A body that breaks off is fetched again (up to
        ``retry.attempts`` times), and so is one failing its digest check (up to
        ``retry.refetches`` times). A ``Content-Encoding`` (gzip) is undone in bounded
        steps, never past ``max_size``. Raises
        :class:`~aioras.exceptions.ManifestTooLarge`,
        :class:`~aioras.exceptions.DigestMismatch`,
        :class:`~aioras.exceptions.ManifestValidationError`, or the registry's typed errors.
        """
        container = self.get_container(container)
        data, response, manifest = await self._fetch_checked(
            container,
            allowed_media_type,
            max_size,
            lambda data, response: check_manifest(container, data, response),
        )
        return manifest, descriptor_of(data, response)

    async def fetch_manifest_bytes(
        self,
        container: ContainerLike,
        allowed_media_type: Sequence[str] | None = None,
        *,
        max_size: int = defaults.max_manifest_size,
    ) -> tuple[bytes, dict[str, Any]]:
        """Fetch a manifest's exact bytes; return ``(data, descriptor)``.

        The bytes are not parsed: the descriptor's ``mediaType`` is the response's
        ``Content-Type``. A fetch by digest is checked against that digest, and against
        ``Docker-Content-Digest`` when sent; a manifest larger than ``max_size`` is refused
        unread. Breaks and failed checks are retried as in :meth:`fetch_manifest`. Raises
        :class:`~aioras.exceptions.ManifestTooLarge`,
        :class:`~aioras.exceptions.DigestMismatch`, or the registry's typed errors.
        """
        container = self.get_container(container)
        data, response, _ = await self._fetch_checked(
            container,
            allowed_media_type,
            max_size,
            lambda data, response: check_manifest_digests(container, data, response),
        )
        media_type = media_type_of(response.headers.get("content-type"))
        return data, {"mediaType": media_type, "digest": digest_bytes(data), "size": len(data)}

    async def _fetch_checked(
        self,
        container: Container,
        allowed_media_type: Sequence[str] | None,
        max_size: int,
        check: Callable[[bytes, httpx.Response], _T],
    ) -> tuple[bytes, httpx.Response, _T]:
        """GET a manifest and ``check`` it, fetching again after breaks and failed checks."""
        accept = list(allowed_media_type or defaults.default_manifest_accepted_media_types)
        url = self._url(container.manifest_url())
        what = f"manifest {container}"
        policy = self._transport.retry

        async def fetch_and_check() -> tuple[bytes, httpx.Response, _T]:
            data, response = await self._read_manifest(url, accept, max_size, what)
            return data, response, check(data, response)

        # Bytes altered on the way fail the check too: fetch again before refusing.
        refetches = policy.retrying(
            policy.refetches, on=exc.IntegrityError, pause=False, level=logging.WARNING
        )
        return await refetches.call(fetch_and_check)

    async def _read_manifest(
        self, url: str, accept: Sequence[str], max_size: int, what: str
    ) -> tuple[bytes, httpx.Response]:
        """GET a manifest's bytes, refusing more than ``max_size`` before reading them all."""
        try:
            response = await self._send(
                "GET", url, headers={"Accept": ", ".join(accept)}, max_body=max_size
            )
        except exc.ResponseTooLarge as error:
            raise exc.ManifestTooLarge(error.size, error.limit) from None
        await raise_for_status(response, (200,), what=what)
        return response.content, response

    async def get_manifest(
        self,
        container: ContainerLike,
        allowed_media_type: Sequence[str] | None = None,
        validation_schema: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Fetch, verify and return a manifest (or index) as a dict.

        ``validation_schema``, when given, is an extra JSON schema the document must meet.
        See :meth:`fetch_manifest` for the checks and errors.
        """
        manifest, _ = await self.fetch_manifest(container, allowed_media_type)
        if validation_schema is not None:
            try:
                jsonschema.validate(manifest, dict(validation_schema))
            except jsonschema.ValidationError as error:
                where = "/".join(str(p) for p in error.absolute_path)
                raise exc.ManifestValidationError(
                    f"manifest {container} fails the given schema at /{where}: {error.message}",
                    path=where,
                ) from error
        return manifest

    async def resolve(
        self,
        container: ContainerLike,
        allowed_media_type: Sequence[str] | None = None,
        *,
        platform: str | None = None,
    ) -> dict[str, Any]:
        """Return the descriptor (mediaType, digest, size) a tag or digest points at.

        Uses HEAD, and falls back to fetching the manifest when the registry does not
        send ``Docker-Content-Digest``. With ``platform`` (``os/arch[/variant]``), an index
        (or Docker manifest list) resolves to its entry for that platform, ``platform``
        included; raises :class:`~aioras.exceptions.PlatformNotFound` listing what the
        index offers when it has none, and ValueError for a malformed platform.
        """
        container = self.get_container(container)
        if platform is not None:
            parse_platform(platform)  # a malformed platform fails before any request
            found = await self.resolve(container, allowed_media_type)
            if found["mediaType"] not in defaults.index_media_types:
                return found
            chosen = await choose_manifest(
                self._registry, as_descriptor(found), container, platform
            )
            return dict(chosen)
        accept = list(allowed_media_type or defaults.default_manifest_accepted_media_types)
        url = self._url(container.manifest_url())
        response = await self._send("HEAD", url, headers={"Accept": ", ".join(accept)})
        await raise_for_status(response, (200,), what=f"manifest {container}")
        digest = response.headers.get("docker-content-digest")
        length = header_number(response.headers.get("content-length"))
        if digest and length is not None and (not container.digest or digest == container.digest):
            return {
                "mediaType": media_type_of(response.headers.get("content-type")),
                "digest": validate_digest(digest),
                "size": length,
            }
        _, descriptor = await self.fetch_manifest(container, accept)
        return descriptor

    async def delete_manifest(self, container: ContainerLike, digest: str | None = None) -> None:
        """Delete the manifest ``digest`` (default: the container's digest) from its repository.

        Every tag pointing at it goes too. A referrer (a manifest with a ``subject``) is
        also taken out of its subject's tag-schema index on registries without the
        referrers API, so listings stop naming it: this is
        :meth:`aioras.remote.repository.Repository.delete`, the one way manifests are
        deleted. Raises :class:`~aioras.exceptions.NotFoundError` when there is no such
        manifest and :class:`~aioras.exceptions.UnsupportedOperation` when deletes are
        disabled.
        """
        container = self.get_container(container)
        ref = digest or container.digest
        if not ref:
            raise ValueError("delete_manifest needs a digest; use delete_tag for tags")
        validate_digest(ref)
        await self._registry.repository(container).delete_manifest(ref)

    async def _delete_manifest_request(self, container: Container, digest: str) -> None:
        """The DELETE of one manifest, and nothing else (see :meth:`delete_manifest`)."""
        response = await self._send("DELETE", self._url(container.manifest_url(digest)))
        await raise_for_status(response, (202, 200, 204), what=f"delete manifest {digest}")
