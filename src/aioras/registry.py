"""``AsyncRegistry``: one coroutine per OCI distribution endpoint, and the operations on top.

Method names and parameters follow oras-py's ``Registry`` so ported code keeps working;
each endpoint raises the typed errors of :mod:`aioras.exceptions` instead of handing back a
failed response. High-level operations (push, pull, copy, tag) live in
:mod:`aioras.operations` and are built only from the public endpoint methods, so a subclass
that overrides ``upload_blob`` changes how ``push`` uploads.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import sys
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from types import TracebackType
from typing import Any

import anyio
import httpx
import jsonschema

from . import defaults, schemas
from . import exceptions as exc
from .auth import Authenticator, Credentials, get_auth_backend
from .auth.dockerconfig import DockerConfigSource
from .blobio import VerifiedFile, file_body
from .container import Container
from .digest import digest_bytes, parse_digest, validate_digest
from .environment import Environment, read_environment
from .oci import empty_config_path, manifest_bytes
from .operations.pull import pull as pull_operation
from .operations.push import SubjectLike
from .operations.push import push as push_operation
from .transport import (
    DEFAULT_RETRY,
    DEFAULT_TIMEOUT,
    Body,
    RetryPolicy,
    Transport,
    raise_for_status,
)
from .urls import merge_query, redact, resolve_location, same_origin
from .version import __version__

__all__ = ["AsyncRegistry", "ContainerLike"]

logger = logging.getLogger(__name__)

ContainerLike = str | Container
_OCTET = "application/octet-stream"
_MAX_TAG_PAGES = 10_000


def _media_type(value: str | None) -> str:
    """A ``Content-Type`` without parameters, lower-cased."""
    return (value or "").split(";", 1)[0].strip().lower()


class AsyncRegistry:
    """An asyncio client for OCI registries: endpoints as coroutines, streaming transfers.

    ``hostname`` is the registry used for names that do not name one; ``insecure`` speaks
    plain http; ``tls_verify`` is True, False, or the path of a CA bundle; ``auth_backend``
    is ``"token"`` (answers basic and bearer challenges), ``"basic"``, or an
    :class:`~aioras.auth.Authenticator`. Keyword options bound concurrency
    (``push_concurrency`` layers at once per push, ``pull_concurrency`` per pull,
    ``max_transfers`` blob transfers in flight across all calls on this object), set the
    default ``chunk_size`` of chunked uploads, ``timeout`` and ``retry`` policy.

    Use it as an async context manager, or call :meth:`aclose` when done. One instance
    belongs to one event loop; its connection pool and tokens are reused across calls.
    """

    def __init__(
        self,
        hostname: str | None = None,
        insecure: bool = False,
        tls_verify: bool | str = True,
        auth_backend: str | Authenticator = "token",
        *,
        push_concurrency: int = defaults.default_push_concurrency,
        pull_concurrency: int = defaults.default_pull_concurrency,
        max_transfers: int = 10,
        chunk_size: int = defaults.default_chunksize,
        timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
        retry: RetryPolicy = DEFAULT_RETRY,
        headers: Mapping[str, str] | None = None,
        proxy: str | None = None,
        environment: Environment | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        for name, value in (
            ("push_concurrency", push_concurrency),
            ("pull_concurrency", pull_concurrency),
            ("max_transfers", max_transfers),
            ("chunk_size", chunk_size),
        ):
            if value < 1:
                raise ValueError(f"{name} must be at least 1, got {value}")
        self.hostname = hostname
        self.insecure = insecure
        self.tls_verify = tls_verify
        self.prefix = "http" if insecure else "https"
        self.push_concurrency = push_concurrency
        self.pull_concurrency = pull_concurrency
        self.max_transfers = max_transfers
        self.chunk_size = chunk_size
        self.environment = environment or read_environment()
        if isinstance(auth_backend, Authenticator):
            self.auth = auth_backend
        else:
            self.auth = get_auth_backend(auth_backend, insecure=insecure)
        self.auth.add_source(self._environment_credentials)
        self._docker_configs = DockerConfigSource([self.environment.docker_config_file])
        self.auth.add_source(self._docker_configs)
        self.headers: dict[str, str] = {"User-Agent": f"aioras/{__version__}"}
        self.headers.update(headers or {})
        self._transport = Transport(
            authenticator=self.auth,
            verify=tls_verify,
            timeout=timeout,
            retry=retry,
            headers=self.headers,
            proxy=proxy,
            transport=transport,
        )
        # The transport shares this dict, so set_header() reaches every later request.
        self._transport.headers = self.headers
        self._transfers: anyio.CapacityLimiter | None = None

    # -- lifecycle -----------------------------------------------------------------------
    async def __aenter__(self) -> AsyncRegistry:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool. The object can be used again afterwards (a new pool)."""
        await self._transport.aclose()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(hostname={self.hostname!r}, insecure={self.insecure})"

    # -- plain helpers (no I/O) ------------------------------------------------------------
    def version(self, return_items: bool = False) -> dict[str, str] | str:
        """The client's version, with Python's and the platform's when ``return_items``."""
        items = {
            "Version": __version__,
            "Python version": sys.version.split()[0],
            "Platform": platform.platform(),
            "httpx version": httpx.__version__,
            "anyio version": anyio.__version__ if hasattr(anyio, "__version__") else "",
        }
        if return_items:
            return items
        return "\n".join(f"{k}: {v}" for k, v in items.items())

    def get_container(self, name: ContainerLike) -> Container:
        """Parse ``name`` into a :class:`Container`, defaulting to this object's hostname.

        Raises :class:`~aioras.exceptions.InvalidReference` for a malformed name.
        """
        if isinstance(name, Container):
            return name
        return Container(name, registry=self.hostname)

    def set_header(self, name: str, value: str) -> None:
        """Send ``name: value`` with every later request."""
        self.headers[name] = value

    def set_basic_auth(self, username: str, password: str) -> None:
        """Use these basic credentials (directly, or to obtain bearer tokens)."""
        self.auth.set_basic_auth(username, password)

    def load_configs(
        self, container: ContainerLike | None = None, configs: list[str] | None = None
    ) -> None:
        """Read credentials from these Docker ``config.json`` files too, before the default.

        ``container`` is accepted for oras-py compatibility; files are consulted for every
        registry host.
        """
        for path in reversed(configs or []):
            if os.fspath(path) not in self._docker_configs.paths:
                self._docker_configs.paths.insert(0, os.fspath(path))

    def _environment_credentials(self, host: str) -> Credentials | None:
        env = self.environment
        if env.oras_user and env.oras_pass:
            return Credentials(username=env.oras_user, password=env.oras_pass)
        return None

    def _url(self, path: str) -> str:
        return f"{self.prefix}://{path}"

    def _check_200_response(self, response: httpx.Response) -> None:
        """Raise the typed error for ``response`` unless its status is 200, 201 or 202."""
        if response.status_code in (200, 201, 202):
            return
        try:
            body = response.content
        except httpx.ResponseNotRead:
            body = b""
        raise exc.error_for_status(
            response.status_code,
            method=response.request.method,
            url=redact(str(response.request.url)),
            body=body,
        )

    async def _limiter(self) -> anyio.CapacityLimiter:
        # Created lazily: a limiter belongs to the event loop that first uses it.
        if self._transfers is None:
            self._transfers = anyio.CapacityLimiter(self.max_transfers)
        return self._transfers

    async def _send(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        body: Body = None,
        stream: bool = False,
        retry: bool | None = None,
        scopes: tuple[str, ...] | None = None,
    ) -> httpx.Response:
        return await self._transport.send(
            method, url, headers=headers, body=body, stream=stream, retry=retry, scopes=scopes
        )

    # -- generic request -----------------------------------------------------------------
    async def do_request(
        self,
        url: str,
        method: str = "GET",
        data: dict[str, Any] | bytes | None = None,
        headers: dict[str, str] | None = None,
        json: dict[str, Any] | None = None,
        stream: bool = False,
    ) -> httpx.Response:
        """Send a request with authentication, redirects and retries; return the response.

        Unlike the endpoint methods this does not raise for an error status. With
        ``stream=True`` the caller must close the response (``await response.aclose()``).
        """
        hdrs = dict(headers or {})
        body: bytes | None
        if json is not None:
            body = _json_bytes(json)
            hdrs.setdefault("Content-Type", "application/json")
        elif isinstance(data, dict):
            body = httpx.QueryParams(data).__str__().encode()
            hdrs.setdefault("Content-Type", "application/x-www-form-urlencoded")
        else:
            body = data
        return await self._send(method, url, headers=hdrs, body=body, stream=stream)

    async def ping(self, hostname: str | None = None) -> httpx.Response:
        """``GET /v2/``: check the registry speaks the distribution API (authenticating)."""
        host = hostname or self.hostname
        if not host:
            raise ValueError("ping() needs a hostname")
        response = await self._send("GET", self._url(f"{host}/v2/"))
        await raise_for_status(response, (200,), what=f"registry {host}")
        return response

    # -- blobs ---------------------------------------------------------------------------
    async def blob_exists(self, layer: Mapping[str, Any], container: ContainerLike) -> bool:
        """True when the repository holds the blob of ``layer`` (a descriptor dict)."""
        container = self.get_container(container)
        digest = validate_digest(layer["digest"])
        response = await self._send("HEAD", self._url(container.get_blob_url(digest)))
        if response.status_code == 404:
            return False
        await raise_for_status(response, (200,), what=f"blob {digest} in {container}")
        return True

    async def get_blob(
        self,
        container: ContainerLike,
        digest: str,
        stream: bool = False,
        head: bool = False,
    ) -> httpx.Response:
        """Fetch a blob (or only its headers with ``head=True``).

        Without ``stream`` the whole body is read and checked against ``digest``: use it
        for small blobs. With ``stream=True`` the body is left unread and unchecked and
        the caller must close the response; prefer :meth:`stream_blob` or
        :meth:`download_blob`. Raises :class:`~aioras.exceptions.NotFoundError` when the
        blob is unknown and :class:`~aioras.exceptions.DigestMismatch` for altered bytes.
        """
        container = self.get_container(container)
        validate_digest(digest)
        method = "HEAD" if head else "GET"
        response = await self._send(
            method, self._url(container.get_blob_url(digest)), stream=stream and not head
        )
        await raise_for_status(response, (200,), what=f"blob {digest} in {container}")
        if not head and not stream:
            algorithm, _ = parse_digest(digest)
            actual = digest_bytes(response.content, algorithm)
            if actual != digest:
                raise exc.DigestMismatch(expected=digest, actual=actual, what=f"blob {digest}")
        return response

    @asynccontextmanager
    async def stream_blob(
        self, container: ContainerLike, digest: str
    ) -> AsyncIterator[httpx.Response]:
        """Open a blob for streaming: ``async with reg.stream_blob(c, d) as r:``.

        The response is closed on exit. Bytes are not verified here: hash them as they
        arrive (:class:`aioras.digest.Verifier`) or use :meth:`download_blob`.
        """
        response = await self.get_blob(container, digest, stream=True)
        try:
            yield response
        finally:
            await response.aclose()

    async def download_blob(
        self,
        container: ContainerLike,
        digest: str,
        outfile: str | os.PathLike[str],
        *,
        size: int | None = None,
    ) -> str:
        """Stream a blob into ``outfile``, verified; return the path written.

        Bytes go to a temporary file beside ``outfile``, hashed on the way, and replace
        ``outfile`` only when digest (and ``size``, when given) match. On any failure, or
        cancellation, no file is left and ``outfile`` is untouched. Raises
        :class:`~aioras.exceptions.DigestMismatch` or
        :class:`~aioras.exceptions.SizeMismatch` for content that does not match.
        """
        container = self.get_container(container)
        validate_digest(digest)
        async with (
            await self._limiter(), VerifiedFile(outfile, digest, size) as sink,
            self.stream_blob(container, digest) as response,
        ):
            advertised = response.headers.get("docker-content-digest")
            if advertised and advertised != digest:
                raise exc.DigestMismatch(
                    expected=digest, actual=advertised, what="Docker-Content-Digest of blob"
                )
            length = response.headers.get("content-length")
            if size is not None and length and length.isdigit() and int(length) != size:
                raise exc.SizeMismatch(expected=size, actual=int(length), what=f"blob {digest}")
            try:
                async for chunk in response.aiter_bytes():
                    await sink.write(chunk)
            except httpx.HTTPError as error:
                raise exc.TransportError(
                    f"download of {digest} from {container} broke off: {type(error).__name__}",
                    method="GET",
                    url=redact(str(response.request.url)),
                ) from error
            await sink.commit()
        return os.fspath(outfile)

    async def upload_blob(
        self,
        blob: str | os.PathLike[str] | None,
        container: ContainerLike,
        layer: Mapping[str, Any],
        do_chunked: bool = False,
        chunk_size: int | None = None,
        *,
        skip_existing: bool = True,
    ) -> httpx.Response:
        """Upload the file ``blob`` as the blob that ``layer`` describes.

        ``blob=None`` uploads the empty config (``{}``). When the registry already has the
        blob, nothing is sent and the existence check's response is returned
        (``skip_existing=False`` uploads anyway). Monolithic by default (POST, then one
        streamed PUT); ``do_chunked`` uses PATCH chunks of ``chunk_size`` bytes. Raises
        :class:`~aioras.exceptions.SizeMismatch` when the file's size is not the
        descriptor's, and the registry's typed errors.
        """
        container = self.get_container(container)
        path = os.fspath(blob) if blob is not None else empty_config_path()
        digest = validate_digest(layer["digest"])
        size = int(layer["size"])
        actual_size = await anyio.to_thread.run_sync(os.path.getsize, path)
        if actual_size != size:
            raise exc.SizeMismatch(expected=size, actual=actual_size, what=f"file {path}")
        if skip_existing:
            head = await self._send("HEAD", self._url(container.get_blob_url(digest)))
            if head.status_code == 200:
                logger.debug("blob %s already in %s; not uploading", digest, container)
                return head
        async with await self._limiter():
            if do_chunked:
                return await self.chunked_upload(
                    path, container, layer, chunk_size=chunk_size or self.chunk_size
                )
            return await self.put_upload(path, container, layer)

    async def _start_upload(self, container: Container) -> tuple[str, httpx.Response]:
        url = self._url(container.upload_blob_url())
        response = await self._send(
            "POST", url, headers={"Content-Length": "0"}, body=b"", retry=True
        )
        await raise_for_status(response, (202,), what=f"upload session in {container}")
        location = response.headers.get("location")
        if not location:
            raise exc.RegistryError(
                f"registry gave no Location for the upload session in {container}",
                status_code=response.status_code,
                method="POST",
                url=redact(url),
            )
        return resolve_location(url, location), response

    async def _cancel_upload(self, location: str) -> None:
        # Best effort: an abandoned session only costs the registry some storage.
        with anyio.CancelScope(shield=True):
            try:
                response = await self._send("DELETE", location, retry=False)
                await response.aclose()
            except exc.OrasError as error:
                logger.debug("cancelling upload %s failed: %s", redact(location), error)

    async def _finish_upload(
        self, location: str, digest: str, container: Container, *, body: Body, size: int
    ) -> httpx.Response:
        url = merge_query(location, {"digest": digest})
        headers = {"Content-Type": _OCTET, "Content-Length": str(size)}
        response = await self._send("PUT", url, headers=headers, body=body, retry=False)
        await raise_for_status(response, (201,), what=f"blob {digest} upload to {container}")
        returned = response.headers.get("docker-content-digest")
        if returned and returned != digest:
            raise exc.DigestMismatch(
                expected=digest, actual=returned, what="digest the registry stored for the blob"
            )
        return response

    async def put_upload(
        self, blob: str | os.PathLike[str], container: ContainerLike, layer: Mapping[str, Any]
    ) -> httpx.Response:
        """Monolithic upload: open a session (POST), then stream the whole file in one PUT."""
        container = self.get_container(container)
        digest = validate_digest(layer["digest"])
        size = int(layer["size"])
        location, _ = await self._start_upload(container)
        try:
            return await self._finish_upload(
                location, digest, container, body=file_body(blob, length=size), size=size
            )
        except BaseException:
            await self._cancel_upload(location)
            raise

    async def chunked_upload(
        self,
        blob: str | os.PathLike[str],
        container: ContainerLike,
        layer: Mapping[str, Any],
        chunk_size: int = defaults.default_chunksize,
    ) -> httpx.Response:
        """Chunked upload: POST, one PATCH per ``chunk_size`` bytes, then a closing PUT.

        Each PATCH carries ``Content-Range`` and follows the ``Location`` the previous
        answer gave; the registry's ``OCI-Chunk-Min-Length`` raises the chunk size.
        """
        container = self.get_container(container)
        digest = validate_digest(layer["digest"])
        size = int(layer["size"])
        location, started = await self._start_upload(container)
        minimum = started.headers.get("oci-chunk-min-length", "")
        if minimum.isdigit():
            chunk_size = max(chunk_size, int(minimum))
        try:
            offset = 0
            while offset < size:
                length = min(chunk_size, size - offset)
                headers = {
                    "Content-Type": _OCTET,
                    "Content-Length": str(length),
                    "Content-Range": f"{offset}-{offset + length - 1}",
                }
                response = await self._send(
                    "PATCH",
                    location,
                    headers=headers,
                    body=file_body(blob, offset=offset, length=length),
                    retry=False,
                )
                await raise_for_status(
                    response, (202, 201, 204), what=f"chunk at {offset} of {digest}"
                )
                offset += length
                if "location" in response.headers:
                    location = resolve_location(location, response.headers["location"])
            return await self._finish_upload(location, digest, container, body=b"", size=0)
        except BaseException:
            await self._cancel_upload(location)
            raise

    async def delete_blob(self, container: ContainerLike, digest: str) -> None:
        """Delete a blob. Raises UnsupportedOperation when deletes are disabled."""
        container = self.get_container(container)
        validate_digest(digest)
        response = await self._send("DELETE", self._url(container.get_blob_url(digest)))
        await raise_for_status(response, (202, 200, 204), what=f"delete blob {digest}")

    async def mount_blob(self, container: ContainerLike, digest: str, from_repository: str) -> bool:
        """Ask the registry to mount a blob from another repository; True when it did.

        A registry that answers with an upload session instead (202) did not mount; the
        session is cancelled and False returned, so the caller uploads normally.
        """
        container = self.get_container(container)
        validate_digest(digest)
        url = self._url(container.blob_mount_url(digest, from_repository))
        scopes = (
            f"repository:{container.api_prefix}:pull,push",
            f"repository:{from_repository}:pull",
        )
        response = await self._send(
            "POST", url, headers={"Content-Length": "0"}, body=b"", scopes=scopes
        )
        if response.status_code == 201:
            return True
        if response.status_code == 202 and "location" in response.headers:
            await self._cancel_upload(resolve_location(url, response.headers["location"]))
            return False
        await raise_for_status(response, (201,), what=f"mount of {digest} into {container}")
        return False

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
        ``Content-Type`` the manifest's own media type. Raises
        :class:`~aioras.exceptions.ManifestValidationError` before sending anything when the
        manifest fails its schema.
        """
        container = self.get_container(container)
        media_type = manifest.get("mediaType") or media_type or defaults.default_manifest_media_type
        schemas.validate(dict(manifest), media_type)
        data = manifest_bytes(manifest)
        digest = digest_bytes(data)
        ref = reference or container.reference
        url = self._url(container.manifest_url(ref))
        response = await self._send("PUT", url, headers={"Content-Type": media_type}, body=data)
        await raise_for_status(response, (201, 200), what=f"manifest {container.api_prefix}:{ref}")
        returned = response.headers.get("docker-content-digest")
        if returned and returned != digest:
            raise exc.DigestMismatch(
                expected=digest, actual=returned, what="digest the registry stored for the manifest"
            )
        return response

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
        is validated against its schema. Raises
        :class:`~aioras.exceptions.ManifestTooLarge`,
        :class:`~aioras.exceptions.DigestMismatch`,
        :class:`~aioras.exceptions.ManifestValidationError`, or the registry's typed errors.
        """
        container = self.get_container(container)
        accept = list(allowed_media_type or defaults.default_manifest_accepted_media_types)
        url = self._url(container.manifest_url())
        what = f"manifest {container}"
        response = await self._send("GET", url, headers={"Accept": ", ".join(accept)}, stream=True)
        try:
            await raise_for_status(response, (200,), what=what)
            length = response.headers.get("content-length", "")
            if length.isdigit() and int(length) > max_size:
                raise exc.ManifestTooLarge(int(length), max_size)
            chunks: list[bytes] = []
            received = 0
            async for chunk in response.aiter_bytes():
                received += len(chunk)
                if received > max_size:
                    raise exc.ManifestTooLarge(received, max_size)
                chunks.append(chunk)
        except httpx.HTTPError as error:
            raise exc.TransportError(
                f"reading {what} broke off: {type(error).__name__}", method="GET", url=redact(url)
            ) from error
        finally:
            await response.aclose()
        data = b"".join(chunks)
        return self._check_manifest(container, data, response, accept), self._descriptor_of(
            data, response
        )

    def _descriptor_of(self, data: bytes, response: httpx.Response) -> dict[str, Any]:
        doc_type = None
        try:
            doc_type = json.loads(data).get("mediaType")
        except (ValueError, AttributeError):
            doc_type = None
        return {
            "mediaType": doc_type or _media_type(response.headers.get("content-type")),
            "digest": digest_bytes(data),
            "size": len(data),
        }

    def _check_manifest(
        self,
        container: Container,
        data: bytes,
        response: httpx.Response,
        accept: Sequence[str],
    ) -> dict[str, Any]:
        what = f"manifest {container}"
        if container.digest:
            algorithm, _ = parse_digest(container.digest)
            actual = digest_bytes(data, algorithm)
            if actual != container.digest:
                raise exc.DigestMismatch(expected=container.digest, actual=actual, what=what)
        advertised = response.headers.get("docker-content-digest")
        if advertised:
            try:
                algorithm, _ = parse_digest(advertised)
            except exc.InvalidDigest:
                algorithm = "sha256"
            actual = digest_bytes(data, algorithm)
            if actual != advertised:
                raise exc.DigestMismatch(
                    expected=advertised, actual=actual, what=f"Docker-Content-Digest of {what}"
                )
        try:
            manifest = json.loads(data)
        except (ValueError, UnicodeDecodeError) as error:
            raise exc.ManifestValidationError(f"{what} is not valid JSON: {error}") from error
        if not isinstance(manifest, dict):
            raise exc.ManifestValidationError(f"{what} is not a JSON object")
        content_type = _media_type(response.headers.get("content-type"))
        declared = manifest.get("mediaType")
        known = defaults.manifest_media_types | defaults.index_media_types
        if declared and content_type in known and declared != content_type:
            raise exc.ManifestValidationError(
                f"{what}: Content-Type {content_type} contradicts mediaType {declared}"
            )
        schemas.validate(manifest, declared or (content_type if content_type in known else None))
        return manifest

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
        self, container: ContainerLike, allowed_media_type: Sequence[str] | None = None
    ) -> dict[str, Any]:
        """Return the descriptor (mediaType, digest, size) a tag or digest points at.

        Uses HEAD, and falls back to fetching the manifest when the registry does not
        send ``Docker-Content-Digest``.
        """
        container = self.get_container(container)
        accept = list(allowed_media_type or defaults.default_manifest_accepted_media_types)
        url = self._url(container.manifest_url())
        response = await self._send("HEAD", url, headers={"Accept": ", ".join(accept)})
        await raise_for_status(response, (200,), what=f"manifest {container}")
        digest = response.headers.get("docker-content-digest")
        length = response.headers.get("content-length", "")
        if digest and length.isdigit() and (not container.digest or digest == container.digest):
            return {
                "mediaType": _media_type(response.headers.get("content-type")),
                "digest": validate_digest(digest),
                "size": int(length),
            }
        _, descriptor = await self.fetch_manifest(container, accept)
        return descriptor

    async def delete_manifest(self, container: ContainerLike, digest: str | None = None) -> None:
        """Delete the manifest ``digest`` (default: the container's digest) from its repository.

        Every tag pointing at it goes too. Raises
        :class:`~aioras.exceptions.UnsupportedOperation` when deletes are disabled.
        """
        container = self.get_container(container)
        ref = digest or container.digest
        if not ref:
            raise ValueError("delete_manifest needs a digest; use delete_tag for tags")
        validate_digest(ref)
        response = await self._send("DELETE", self._url(container.manifest_url(ref)))
        await raise_for_status(response, (202, 200, 204), what=f"delete manifest {ref}")

    # -- tags ----------------------------------------------------------------------------
    async def get_tags(
        self, container: ContainerLike, N: int | None = None, *, page_size: int | None = None
    ) -> list[str]:
        """List the repository's tags, following ``Link`` pagination; at most ``N``.

        ``page_size`` asks the registry for pages of that many tags (``n=``). Pagination
        that leaves the registry's origin, or revisits a page, is refused with a
        :class:`~aioras.exceptions.RegistryError`.
        """
        container = self.get_container(container)
        if N is not None and N <= 0:
            return []
        n = page_size if page_size is not None else N
        url = self._url(container.tags_url(n))
        tags: list[str] = []
        seen: set[str] = set()
        for _ in range(_MAX_TAG_PAGES):
            seen.add(url)
            response = await self._send("GET", url)
            await raise_for_status(response, (200,), what=f"tags of {container.api_prefix}")
            try:
                page = response.json().get("tags") or []
            except (ValueError, AttributeError) as error:
                raise exc.RegistryError(
                    f"tag list of {container.api_prefix} is not a JSON object",
                    status_code=200,
                    method="GET",
                    url=redact(url),
                ) from error
            tags.extend(t for t in page if isinstance(t, str))
            if N is not None and len(tags) >= N:
                return tags[:N]
            next_url = _next_link(response)
            if not next_url:
                return tags
            next_url = resolve_location(url, next_url)
            if not same_origin(next_url, url) or next_url in seen:
                raise exc.RegistryError(
                    f"tag list pagination of {container.api_prefix} points to "
                    f"{redact(next_url)}, off the registry or back to a seen page",
                    status_code=200,
                    method="GET",
                    url=redact(url),
                )
            url = next_url
        raise exc.RegistryError(
            f"tag list of {container.api_prefix} exceeds {_MAX_TAG_PAGES} pages",
            status_code=200,
            method="GET",
            url=redact(url),
        )

    async def delete_tag(self, container: ContainerLike, tag: str) -> bool:
        """Delete ``tag``; True when deleted, False when there was no such tag.

        Registries that cannot delete a tag alone (the CNCF registry among them) delete
        the manifest it points at, and with it every tag pointing there. Raises
        :class:`~aioras.exceptions.UnsupportedOperation` when deletes are disabled.
        """
        container = self.get_container(container).with_reference(tag)
        try:
            descriptor = await self.resolve(container)
        except exc.NotFoundError:
            return False
        await self.delete_manifest(container, descriptor["digest"])
        return True

    async def delete_tags(self, name: ContainerLike, tags: str | Iterable[str]) -> list[str]:
        """Delete each of ``tags``; return those that were deleted."""
        container = self.get_container(name)
        deleted = []
        for tag in [tags] if isinstance(tags, str) else list(tags):
            if await self.delete_tag(container, tag):
                deleted.append(tag)
        return deleted

    # -- high-level operations -----------------------------------------------------------
    async def push(
        self,
        target: ContainerLike,
        *,
        config_path: str | None = None,
        disable_path_validation: bool = False,
        files: Sequence[str | os.PathLike[str]] | None = None,
        manifest_config: str | None = None,
        annotation_file: str | None = None,
        manifest_annotations: Mapping[str, str] | None = None,
        subject: SubjectLike | None = None,
        do_chunked: bool = False,
        chunk_size: int | None = None,
        quiet: bool = False,
        artifact_type: str | None = None,
        concurrency: int | None = None,
    ) -> httpx.Response:
        """Push files as one artifact; see :func:`aioras.operations.push.push`."""
        return await push_operation(
            self,
            target,
            config_path=config_path,
            disable_path_validation=disable_path_validation,
            files=files,
            manifest_config=manifest_config,
            annotation_file=annotation_file,
            manifest_annotations=manifest_annotations,
            subject=subject,
            do_chunked=do_chunked,
            chunk_size=chunk_size,
            quiet=quiet,
            artifact_type=artifact_type,
            concurrency=concurrency,
        )

    async def pull(
        self,
        target: ContainerLike,
        *,
        config_path: str | None = None,
        allowed_media_type: Sequence[str] | None = None,
        overwrite: bool = True,
        outdir: str | os.PathLike[str] | None = None,
        concurrency: int | None = None,
    ) -> list[str]:
        """Pull an artifact's files; see :func:`aioras.operations.pull.pull`."""
        return await pull_operation(
            self,
            target,
            config_path=config_path,
            allowed_media_type=allowed_media_type,
            overwrite=overwrite,
            outdir=outdir,
            concurrency=concurrency,
        )


def _json_bytes(doc: Mapping[str, Any]) -> bytes:
    return json.dumps(doc, separators=(",", ":")).encode()


def _next_link(response: httpx.Response) -> str | None:
    for value in response.headers.get_list("link"):
        for part in value.split(","):
            url, _, params = part.partition(";")
            if 'rel="next"' in params.replace(" ", "") or "rel=next" in params.replace(" ", ""):
                return url.strip().strip("<>")
    return None
