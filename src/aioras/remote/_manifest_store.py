"""``ManifestStore``: the manifest requests of one registry client, on a `Session`.

PUTs of exact bytes (sent again when the registry stored other bytes or raced its own
blob commit), GETs verified by a check and fetched again after breaks, the HEAD that
resolves a reference, and DELETEs; and the read through a `BlobCache` of a manifest asked
for by digest (`cached_manifest`, `keep_manifest`). The client's flat methods (``upload_manifest``,
``fetch_manifest``, ``resolve`` ...) parse names and validate documents, then come here.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import httpx

from .. import defaults, schemas
from .. import exceptions as exc
from .._http.headers import header_number
from .._http.responses import raise_for_status
from .._jsondoc import load_json
from .._manifests import media_type_of
from ..container import Container
from ..descriptor import Descriptor
from ..digest import digest_bytes, validate_digest
from ._session import Session

if TYPE_CHECKING:
    from ..content.cache import BlobCache

__all__ = ["ManifestStore", "cached_manifest", "keep_manifest"]

_T = TypeVar("_T")
# Refusals of a schema-valid manifest that a second try can cure (see ManifestStore.put).
_RESEND_CODES = frozenset({"MANIFEST_INVALID", "DIGEST_INVALID", "MANIFEST_BLOB_UNKNOWN"})


def _accept(allowed_media_type: Sequence[str] | None) -> list[str]:
    return list(allowed_media_type or defaults.default_manifest_accepted_media_types)


class ManifestStore:
    """The manifests of one registry client's repositories; see the module docstring."""

    def __init__(self, session: Session) -> None:
        self.session = session

    async def put(
        self, data: bytes, container: Container, media_type: str, ref: str
    ) -> httpx.Response:
        """PUT ``data`` under ``ref``, sent again while the registry stores other bytes."""
        digest = digest_bytes(data)
        url = self.session.url(container.manifest_url(ref))
        what = f"manifest {container.api_prefix}:{ref}"
        policy = self.session.transport.retry
        resends = policy.retrying(policy.refetches, level=logging.WARNING)
        while True:
            response = await self.session.send(
                "PUT", url, headers={"Content-Type": media_type}, body=data
            )
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

    async def fetch(
        self,
        container: Container,
        allowed_media_type: Sequence[str] | None,
        max_size: int,
        check: Callable[[bytes, httpx.Response], _T],
    ) -> tuple[bytes, httpx.Response, _T]:
        """GET a manifest and ``check`` it, fetching again after breaks and failed checks."""
        accept = _accept(allowed_media_type)
        url = self.session.url(container.manifest_url())
        what = f"manifest {container}"
        policy = self.session.transport.retry

        async def fetch_and_check() -> tuple[bytes, httpx.Response, _T]:
            data, response = await self.read(url, accept, max_size, what)
            await schemas.ready()  # the check is synchronous: its first one, off the loop
            return data, response, check(data, response)

        # Bytes altered on the way fail the check too: fetch again before refusing.
        refetches = policy.retrying(
            policy.refetches, on=exc.IntegrityError, pause=False, level=logging.WARNING
        )
        return await refetches.call(fetch_and_check)

    async def read(
        self, url: str, accept: Sequence[str], max_size: int, what: str
    ) -> tuple[bytes, httpx.Response]:
        """GET a manifest's bytes, refusing more than ``max_size`` before reading them all."""
        try:
            response = await self.session.send(
                "GET", url, headers={"Accept": ", ".join(accept)}, max_body=max_size
            )
        except exc.ResponseTooLarge as error:
            raise exc.ManifestTooLarge(error.size, error.limit) from None
        await raise_for_status(response, (200,), what=what)
        return response.content, response

    async def head(
        self, container: Container, allowed_media_type: Sequence[str] | None
    ) -> dict[str, Any] | None:
        """The descriptor a HEAD shows, None when its headers do not say it all."""
        accept = _accept(allowed_media_type)
        url = self.session.url(container.manifest_url())
        response = await self.session.send("HEAD", url, headers={"Accept": ", ".join(accept)})
        await raise_for_status(response, (200,), what=f"manifest {container}")
        digest = response.headers.get("docker-content-digest")
        length = header_number(response.headers.get("content-length"))
        if digest and length is not None and (not container.digest or digest == container.digest):
            return {
                "mediaType": media_type_of(response.headers.get("content-type")),
                "digest": validate_digest(digest),
                "size": length,
            }
        return None

    async def delete(self, container: Container, digest: str) -> None:
        """The DELETE of one manifest, and nothing else."""
        response = await self.session.send(
            "DELETE", self.session.url(container.manifest_url(digest))
        )
        await raise_for_status(response, (202, 200, 204), what=f"delete manifest {digest}")


async def cached_manifest(
    cache: BlobCache | None,
    container: Container,
    allowed_media_type: Sequence[str] | None,
    max_size: int,
) -> tuple[bytes, str] | None:
    """A manifest asked for by digest, from the cache: its bytes and media type.

    None without a cache, for a tag (always resolved at the registry) and on a miss.
    The bytes are hashed against the digest (`BlobCache.read_by_digest`). A document
    naming no ``mediaType``, or one outside ``allowed_media_type``, counts as a miss:
    only the registry's answer can say what it is, or refuse it.
    """
    if cache is None or not container.digest:
        return None
    data = await cache.read_by_digest(container.digest, max_size=max_size)
    if data is None:
        return None
    try:
        media_type = load_json(data).get("mediaType")
    except (ValueError, AttributeError):
        return None
    accept = allowed_media_type or defaults.default_manifest_accepted_media_types
    if not isinstance(media_type, str) or media_type not in accept:
        return None
    return data, media_type


async def keep_manifest(
    cache: BlobCache | None, container: Container, data: bytes, media_type: str
) -> None:
    """Add a manifest fetched by digest (and checked against it) to the cache."""
    if cache is None or not container.digest:
        return

    async def content() -> AsyncIterator[bytes]:
        yield data

    descriptor: Descriptor = {
        "mediaType": media_type,
        "digest": container.digest,
        "size": len(data),
    }
    await cache.put(descriptor, content())
