"""``AsyncRegistry``: one coroutine per OCI distribution endpoint, and the operations on top.

Method names and parameters follow oras-py's ``Registry`` so ported code keeps working;
each endpoint raises the typed errors of :mod:`aioras.exceptions` instead of handing back a
failed response. High-level operations (push, pull, copy, tag) live in
:mod:`aioras.operations` and are built only from the public endpoint methods, so a subclass
that overrides ``upload_blob`` changes how ``push`` uploads.
"""

from __future__ import annotations

import importlib.metadata
import json
import logging
import os
import platform
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from types import TracebackType
from typing import Any, TypeVar
from urllib.parse import urlsplit

import anyio
import httpx
import jsonschema

from .. import defaults, schemas
from .. import exceptions as exc
from .._concurrency import map_bounded
from .._environment import Environment, read_environment
from .._http.headers import check_header
from .._http.netbackend import ssl_context
from .._http.proxies import EnvironmentProxies
from .._http.ratelimit import HostPacer, RateLimits
from .._http.responses import raise_for_status
from .._http.retry import DEFAULT_RETRY, RetryPolicy
from .._http.transport import DEFAULT_LIMITS, DEFAULT_TIMEOUT, Body, Transport
from .._http.urls import redact, resolve_location, same_origin
from .._jsondoc import load_json
from .._manifests import check_manifest, check_manifest_digests, descriptor_of, media_type_of
from ..auth import Authenticator, Credentials, as_authenticator, get_auth_backend
from ..auth.dockerconfig import DockerConfigSource
from ..container import Container, parse_registry
from ..content.graph import parse_platform
from ..descriptor import as_descriptor
from ..digest import digest_bytes, validate_digest, verify_bytes
from ..oci import empty_config_path, manifest_bytes
from ..operations.attach import attach as attach_operation
from ..operations.attach import delete_artifact as delete_artifact_operation
from ..operations.copy import copy as copy_operation
from ..operations.discover import ReferrerNode
from ..operations.discover import discover as discover_operation
from ..operations.discover import get_referrers as get_referrers_operation
from ..operations.index import ManifestLike, choose_manifest
from ..operations.index import push_index as push_index_operation
from ..operations.index import update_index as update_index_operation
from ..operations.mirror import MirrorProgress
from ..operations.mirror import mirror as mirror_operation
from ..operations.mirror_plan import MirrorPlan
from ..operations.mirror_report import MirrorReport
from ..operations.pull import pull as pull_operation
from ..operations.push import AnnotationSource, PushFiles, SubjectLike
from ..operations.push import push as push_operation
from ..progress import ProgressCallback
from ..utils import split_path_and_content
from ..version import __version__
from ._downloads import RangeOptions, download_verified
from ._uploads import (
    BlobUpload,
    HashingUpload,
    SliceSource,
    StreamOpener,
    cancel_upload,
    stream_source,
)
from .repository import Repository, RepositoryState

__all__ = ["AsyncRegistry", "ContainerLike"]

logger = logging.getLogger(__name__)

ContainerLike = str | Container
_T = TypeVar("_T")
_MAX_TAG_PAGES = 10_000
# Refusals of a schema-valid manifest that a second try can cure (see upload_manifest).
_RESEND_CODES = frozenset({"MANIFEST_INVALID", "DIGEST_INVALID", "MANIFEST_BLOB_UNKNOWN"})
# Tag-list pages in a row that bring no new tag before pagination is declared broken.
_MAX_IDLE_PAGES = 3


class AsyncRegistry:
    """An asyncio client for OCI registries: endpoints as coroutines, streaming transfers.

    ``hostname`` is the registry used for names that do not name one; ``insecure`` speaks
    plain http; ``tls_verify`` is True, False, or the path of a CA bundle; ``auth_backend``
    is ``"token"`` (answers basic and bearer challenges), ``"basic"``, or an
    :class:`~aioras.auth.Authenticator`. Keyword options bound concurrency
    (``push_concurrency`` layers at once per push, ``pull_concurrency`` per pull,
    ``max_transfers`` blob transfers in flight across all calls on this object), set the
    default ``chunk_size`` of chunked uploads, ``timeout`` and ``retry`` policy, and
    ``rate_limits`` (a :class:`~aioras.RateLimits`: requests a second per host,
    by default 20 for every host but loopback ones). A blob larger than ``range_threshold``
    bytes (default 64 MiB) is downloaded as up to ``download_ranges`` parallel byte ranges
    (default 8; 1 turns this off) when the registry, or the storage it redirects to, honours
    ``Range``: each range is a transfer of its own under ``max_transfers``, taken only when
    a slot is free.

    ``timeout`` is seconds (or an ``httpx.Timeout``; default 60 s, 15 s to connect). Besides
    bounding each connect, read, write and wait for a pooled connection, its read timeout
    ``T`` bounds a whole answer, so that a server trickling bytes cannot hold a call: once
    a request is sent, its answer must be complete within ``T`` (headers, and the body of
    anything but a blob: manifests, tag lists, tokens, error bodies...), and a blob body
    must average at least 1 KiB/s (:data:`aioras.defaults.min_blob_rate`) over each window
    of ``T`` seconds. Either is retried, or resumed, like any timeout, then raises
    :class:`~aioras.exceptions.TimeoutError`: with ``timeout=2`` and the default ``retry``,
    within about 20 s. Bodies that are not blobs are also capped in size (see
    :mod:`aioras.defaults`: 16 MiB, 4 MiB for manifests, 1 MiB for tokens, 64 KiB kept of
    error bodies).

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
        download_ranges: int = defaults.default_download_ranges,
        range_threshold: int = defaults.default_range_threshold,
        chunk_size: int = defaults.default_chunksize,
        timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
        retry: RetryPolicy = DEFAULT_RETRY,
        headers: Mapping[str, str] | None = None,
        proxy: str | None = None,
        environment: Environment | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        rate_limits: RateLimits | None = None,
    ) -> None:
        for name, value in (
            ("push_concurrency", push_concurrency),
            ("pull_concurrency", pull_concurrency),
            ("max_transfers", max_transfers),
            ("download_ranges", download_ranges),
            ("chunk_size", chunk_size),
        ):
            if value < 1:
                raise ValueError(f"{name} must be at least 1, got {value}")
        if range_threshold < 0:
            raise ValueError(f"range_threshold must not be negative, got {range_threshold}")
        self.hostname = hostname
        # Only the flag is stored: the URL scheme (prefix) follows it (see the property).
        self._insecure = insecure
        self.tls_verify = tls_verify
        self.push_concurrency = push_concurrency
        self.pull_concurrency = pull_concurrency
        self.max_transfers = max_transfers
        self.download_ranges = download_ranges
        self.range_threshold = range_threshold
        self.chunk_size = chunk_size
        self.environment = environment or read_environment()
        if isinstance(auth_backend, str):
            self.auth = get_auth_backend(auth_backend, insecure=insecure)
        else:
            # An Authenticator, or an oras-py style backend (adapted).
            self.auth = as_authenticator(auth_backend, insecure=insecure)
        self.auth.add_source(self._environment_credentials)
        self._docker_configs = DockerConfigSource([self.environment.docker_config_file])
        self.auth.add_source(self._docker_configs)
        self.headers: dict[str, str] = {"User-Agent": f"aioras/{__version__}"}
        self.headers.update(headers or {})
        # As requests does: CA bundles and proxies from the environment, unless explicit.
        verify = self._effective_verify(tls_verify)
        self._env_proxies: EnvironmentProxies | None = None
        if transport is None and proxy is None and self.environment.has_proxies:
            transport = self._env_proxies = EnvironmentProxies(
                self.environment, verify=ssl_context(verify), limits=DEFAULT_LIMITS
            )
        self._transport = Transport(
            authenticator=self.auth,
            verify=verify,
            timeout=timeout,
            retry=retry,
            headers=self.headers,
            proxy=proxy,
            transport=transport,
        )
        # The transport shares this dict, so set_header() reaches every later request.
        self._transport.headers = self.headers
        # Credentials and these headers go only to registries a reference (or hostname)
        # names; an upload Location or a redirect elsewhere gets neither.
        self._transport.registries = set()
        # Rate limits per host (off for loopback by default), shared pauses, request counts.
        self._transport.pacer = HostPacer(rate_limits)
        self._transfers: anyio.CapacityLimiter | None = None
        self._uploading: dict[tuple[str, str, str], anyio.Event] = {}
        self._repositories: dict[str, RepositoryState] = {}
        # Per server: why it is not an OCI registry ("" when it is, or may be).
        self._registry_verdicts: dict[str, str] = {}

    @property
    def insecure(self) -> bool:
        """True when the registry speaks plain http.

        Setting it switches the URL scheme of later requests (:attr:`prefix`) and tells
        the authentication backend, which then accepts plain-http token realms.
        """
        return self._insecure

    @insecure.setter
    def insecure(self, value: bool) -> None:
        self._insecure = bool(value)
        self.auth.insecure = self._insecure

    @property
    def prefix(self) -> str:
        """The URL scheme, derived from :attr:`insecure`: ``http`` or ``https``.

        Setting it (as oras-py code may) sets :attr:`insecure`; any other value is a
        ``ValueError``.
        """
        return "http" if self._insecure else "https"

    @prefix.setter
    def prefix(self, value: str) -> None:
        if value not in ("http", "https"):
            raise ValueError(f"prefix must be 'http' or 'https', got {value!r}")
        self.insecure = value == "http"

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
        """The client's version, Python's, the platform's and those of its dependencies.

        Dependencies are read from the installed distributions (httpx, anyio, aiofiles,
        jsonschema; rich and boto3 when installed, else ``"not installed"``). A string of
        ``Name: value`` lines, or the dict with ``return_items``.
        """
        items = {
            "Version": __version__,
            "Python version": sys.version.split()[0],
            "Platform": platform.platform(),
        }
        for dist in ("httpx", "anyio", "aiofiles", "jsonschema", "rich", "boto3"):
            items[f"{dist} version"] = _distribution_version(dist)
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

    def _parse_manifest_ref(self, ref: str) -> tuple[str, str]:
        """Split ``path[:mediaType]`` of a manifest config; oras-py's unknown type by default."""
        parsed = split_path_and_content(ref)
        return parsed.path, parsed.content or defaults.unknown_config_media_type

    async def set_tls_verify(self, tls_verify: bool | str) -> None:
        """Verify TLS certificates this way (True, False, or a CA bundle path) from now on.

        Open connections are closed so that new ones use it; cached tokens are kept.
        """
        self.tls_verify = tls_verify
        verify = self._effective_verify(tls_verify)
        if self._env_proxies is not None:
            self._env_proxies.set_verify(ssl_context(verify))
        await self._transport.set_verify(verify)

    def _effective_verify(self, tls_verify: bool | str) -> bool | str:
        """``tls_verify=True`` means the environment's CA bundle when it names one."""
        return self.environment.default_verify() if tls_verify is True else tls_verify

    def set_header(self, name: str, value: str) -> None:
        """Send ``name: value`` with every later request to the registry (no other origin).

        Raises :class:`~aioras.exceptions.InvalidHeaderValue`, without quoting the value,
        when it holds a control character (a pasted newline) or a non-ASCII one.
        """
        self.headers[name] = check_header(name, value)

    def set_rate_limits(self, limits: RateLimits) -> None:
        """Pace requests per host by ``limits`` from now on (request counts are kept)."""
        pacer = HostPacer(limits)
        if self._transport.pacer is not None:
            pacer.sent = self._transport.pacer.sent
        self._transport.pacer = pacer

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
        self.auth.load_configs(container, configs)

    def _environment_credentials(self, host: str) -> Credentials | None:
        env = self.environment
        if env.oras_user and env.oras_pass:
            return Credentials(username=env.oras_user, password=env.oras_pass)
        return None

    def _url(self, path: str) -> str:
        url = f"{self.prefix}://{path}"
        self._transport.add_registry(url)
        return url

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
        max_body: int | None = defaults.max_response_size,
    ) -> httpx.Response:
        response = await self._transport.send(
            method,
            url,
            headers=headers,
            body=body,
            stream=stream,
            retry=retry,
            scopes=scopes,
            max_body=max_body,
        )
        if response.status_code == 404 and "html" in response.headers.get("content-type", ""):
            try:
                await self._check_is_registry(url)
            except exc.NotARegistry:
                await response.aclose()
                raise
        return response

    async def _check_is_registry(self, url: str) -> None:
        """Raise NotARegistry when ``GET /v2/`` of ``url``'s server answers 404 or HTML.

        Asked once per server, after a 404 with an HTML page (registries answer errors in
        JSON, web servers and proxies in HTML). An answer that needs credentials, or none at
        all, leaves the 404 to speak for itself.
        """
        parts = urlsplit(url)
        if not parts.path.startswith("/v2/") or parts.path == "/v2/":
            return
        verdict = self._registry_verdicts.get(parts.netloc)
        if verdict is None:
            try:
                probe = await self._transport.send(
                    "GET", f"{parts.scheme}://{parts.netloc}/v2/", retry=False
                )
            except exc.OrasError:
                probe = None
            verdict = ""
            if probe is not None:
                html = "html" in probe.headers.get("content-type", "").lower()
                if probe.status_code == 404 or (probe.status_code < 300 and html):
                    verdict = f"GET /v2/ answered {probe.status_code}" + (
                        " with an HTML page" if html else ""
                    )
            self._registry_verdicts[parts.netloc] = verdict
        if verdict:
            raise exc.NotARegistry(
                f"{parts.netloc} is not an OCI registry ({verdict}); check the host and port",
                status_code=404,
                url=redact(url),
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
        ``stream=True`` the caller must close the response (``await response.aclose()``);
        without, a body over 16 MiB (:data:`aioras.defaults.max_response_size`) raises
        :class:`~aioras.exceptions.ResponseTooLarge`: stream larger ones.
        The origin of ``url`` is treated as a registry: it gets credentials.
        """
        self._transport.add_registry(url)
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
            method,
            self._url(container.get_blob_url(digest)),
            stream=stream and not head,
            max_body=None,  # a blob: its digest bounds what is kept, its pace the time
        )
        await raise_for_status(response, (200,), what=f"blob {digest} in {container}")
        if not head and not stream:
            verify_bytes(response.content, digest, what=f"blob {digest}")
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
        ``outfile`` only when digest (and ``size``, when given) match. A body that breaks
        off is resumed with ``Range`` where the registry serves ranges, restarted
        otherwise; content failing verification is fetched again (``retry.refetches``
        times) and never kept. With ``size`` above ``range_threshold``, the blob comes as
        ``download_ranges`` parallel ranges written at their offsets (each resumed on its
        own), or as one stream when the registry does not honour ``Range``. On any
        failure, or cancellation, no file is left and ``outfile`` is untouched. Raises
        :class:`~aioras.exceptions.DigestMismatch` or
        :class:`~aioras.exceptions.SizeMismatch` for content that does not match, and
        :class:`~aioras.exceptions.TransportError` once ``retry.resumes`` is spent.
        """
        container = self.get_container(container)
        validate_digest(digest)
        limiter = await self._limiter()
        ranges = RangeOptions(self.download_ranges, self.range_threshold, limiter)
        async with limiter:
            return await download_verified(
                self._send,
                self._url(container.get_blob_url(digest)),
                digest=digest,
                outfile=outfile,
                size=size,
                policy=self._transport.retry,
                what=f"blob {digest} of {container.api_prefix}",
                ranges=ranges,
            )

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
        (``skip_existing=False`` uploads anyway). While this object uploads a blob into a
        repository, other calls for the same blob and repository wait for it, then check
        again instead of sending the bytes a second time. Monolithic by default (POST, then one
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
        return await self._upload_once(
            container,
            digest,
            skip_existing,
            lambda: (
                self.chunked_upload(
                    path, container, layer, chunk_size=chunk_size or self.chunk_size
                )
                if do_chunked
                else self.put_upload(path, container, layer)
            ),
        )

    async def upload_blob_stream(
        self,
        source: StreamOpener,
        container: ContainerLike,
        layer: Mapping[str, Any],
        *,
        skip_existing: bool = True,
    ) -> httpx.Response:
        """Upload the blob ``layer`` describes from a stream, with no file in between.

        ``source`` opens the bytes from their start (``lambda: store.fetch(descriptor)``);
        it is called again when the upload restarts after a fault, so a stream that broke
        off is read anew rather than resumed. The bytes go out in one streamed ``PUT``
        (monolithic) and the registry checks them against the digest. Existing blobs and
        uploads already under way are handled as in :meth:`upload_blob`. Raises the
        registry's typed errors, and what ``source`` raises (e.g.
        :class:`~aioras.exceptions.DigestMismatch` from a verified stream).
        """
        container = self.get_container(container)
        digest = validate_digest(layer["digest"])
        upload = self._blob_upload(None, container, layer, source=stream_source(source))
        return await self._upload_once(container, digest, skip_existing, upload.monolithic)

    async def _upload_once(
        self,
        container: Container,
        digest: str,
        skip_existing: bool,
        run: Callable[[], Awaitable[httpx.Response]],
    ) -> httpx.Response:
        """Run one blob upload under the transfer limit, unless the blob is there already."""
        key = (container.registry, container.api_prefix, digest)
        while True:
            if skip_existing:
                head = await self._send("HEAD", self._url(container.get_blob_url(digest)))
                if head.status_code == 200:
                    logger.debug("blob %s already in %s; not uploading", digest, container)
                    return head
            running = self._uploading.get(key)
            if running is None:
                break
            # The same blob is on its way into the same repository: wait for that upload
            # and look again, rather than send the bytes twice. (Two commits of one blob
            # also race in the CNCF registry, whose re-link briefly hides the blob from a
            # manifest being verified.)
            await running.wait()
            if not skip_existing:
                break
        done = self._uploading[key] = anyio.Event()
        try:
            async with await self._limiter():
                return await run()
        finally:
            if self._uploading.get(key) is done:
                del self._uploading[key]
            done.set()

    def _blob_upload(
        self,
        blob: str | os.PathLike[str] | None,
        container: Container,
        layer: Mapping[str, Any],
        *,
        source: SliceSource | None = None,
    ) -> BlobUpload:
        digest = validate_digest(layer["digest"])
        return BlobUpload(
            self._send,
            path=blob,
            source=source,
            digest=digest,
            size=int(layer["size"]),
            uploads_url=self._url(container.upload_blob_url()),
            blob_url=self._url(container.get_blob_url(digest)),
            policy=self._transport.retry,
            what=f"blob {digest} in {container.api_prefix}",
        )

    async def upload_new_blob(
        self,
        blob: str | os.PathLike[str],
        container: ContainerLike,
        *,
        chunk_size: int | None = None,
    ) -> dict[str, Any]:
        """Upload the file ``blob`` in one pass, hashing it on the way; return its digest and size.

        For blobs the registry is not expected to hold: there is no existence check (the
        digest is not known before the upload), and the file is read once instead of
        twice. The upload is chunked (POST, ``PATCH`` chunks of ``chunk_size`` bytes,
        default this object's ``chunk_size``) and the closing ``PUT`` names the digest of
        exactly the bytes sent, which the registry checks. Broken chunks are resumed as in
        :meth:`chunked_upload`, re-reading only the bytes they must. Returns
        ``{"digest": ..., "size": ...}``. Raises the registry's typed errors, or
        :class:`~aioras.exceptions.TransportError` when it cannot be reached.
        """
        container = self.get_container(container)
        path = os.fspath(blob)
        size = await anyio.to_thread.run_sync(os.path.getsize, path)
        upload = HashingUpload(
            self._send,
            path=path,
            size=size,
            uploads_url=self._url(container.upload_blob_url()),
            blob_url=lambda digest: self._url(container.get_blob_url(digest)),
            policy=self._transport.retry,
            what=f"file {os.path.basename(path)} in {container.api_prefix}",
        )
        async with await self._limiter():
            await upload.chunked(chunk_size or self.chunk_size)
        return {"digest": upload.digest, "size": size}

    async def _cancel_upload(self, location: str) -> None:
        await cancel_upload(self._send, location)

    async def put_upload(
        self, blob: str | os.PathLike[str], container: ContainerLike, layer: Mapping[str, Any]
    ) -> httpx.Response:
        """Monolithic upload: open a session (POST), then stream the whole file in one PUT.

        A failed upload restarts with a new session (at most ``retry.resumes`` times); a
        PUT whose answer was lost is checked with HEAD before anything is sent again, and
        the blob's HEAD response (200) is returned when it was stored. Abandoned sessions
        are cancelled. Raises the registry's typed errors, or
        :class:`~aioras.exceptions.TransportError` when it cannot be reached.
        """
        container = self.get_container(container)
        return await self._blob_upload(blob, container, layer).monolithic()

    async def chunked_upload(
        self,
        blob: str | os.PathLike[str],
        container: ContainerLike,
        layer: Mapping[str, Any],
        chunk_size: int = defaults.default_chunksize,
    ) -> httpx.Response:
        """Chunked upload: POST, one PATCH per ``chunk_size`` bytes, then a closing PUT.

        Each PATCH carries ``Content-Range`` and follows the ``Location`` the previous
        answer gave; the registry's ``OCI-Chunk-Min-Length`` raises the chunk size. After
        a lost connection, a timeout, 416, 408, 429 or 5xx the registry is asked where the
        session stands (GET on the upload URL) and the upload continues from there; a
        session the registry lost or refuses is cancelled and the upload starts over (at
        most ``retry.resumes`` recoveries in all). Returns as :meth:`put_upload` does.
        """
        container = self.get_container(container)
        return await self._blob_upload(blob, container, layer).chunked(chunk_size)

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
            chosen = await choose_manifest(self, as_descriptor(found), container, platform)
            return dict(chosen)
        accept = list(allowed_media_type or defaults.default_manifest_accepted_media_types)
        url = self._url(container.manifest_url())
        response = await self._send("HEAD", url, headers={"Accept": ", ".join(accept)})
        await raise_for_status(response, (200,), what=f"manifest {container}")
        digest = response.headers.get("docker-content-digest")
        length = response.headers.get("content-length", "")
        if digest and length.isdigit() and (not container.digest or digest == container.digest):
            return {
                "mediaType": media_type_of(response.headers.get("content-type")),
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
        self,
        container: ContainerLike,
        N: int | None = None,
        *,
        page_size: int | None = None,
        max_pages: int = _MAX_TAG_PAGES,
    ) -> list[str]:
        """List the repository's tags, following ``Link`` pagination; at most ``N``.

        ``page_size`` asks the registry for pages of that many tags (``n=``). Pagination
        is refused with a :class:`~aioras.exceptions.RegistryError` when it leaves the
        registry's origin, revisits a page, brings no new tag for several pages in a row,
        or runs past ``max_pages`` pages (default 10,000).
        """
        container = self.get_container(container)
        if N is not None and N <= 0:
            return []
        n = page_size if page_size is not None else N
        url = self._url(container.tags_url(n))
        what = f"tag list of {container.api_prefix}"
        return await self._list_pages(url, "tags", "tag", what, N, max_pages)

    async def list_repositories(
        self,
        hostname: str | None = None,
        N: int | None = None,
        *,
        page_size: int | None = None,
        max_pages: int = _MAX_TAG_PAGES,
    ) -> list[str]:
        """List the repositories of a registry (its catalog), following pagination; at most ``N``.

        ``hostname`` defaults to this object's. Pagination is checked as in
        :meth:`get_tags` (same origin, no page twice, new names coming, at most
        ``max_pages`` pages) and refused with a :class:`~aioras.exceptions.RegistryError`.
        Registries that keep their catalog private answer
        :class:`~aioras.exceptions.PermissionDenied` or
        :class:`~aioras.exceptions.NotFoundError`; raises ValueError without a hostname.
        """
        host = hostname or self.hostname
        if not host:
            raise ValueError("list_repositories() needs a hostname")
        if N is not None and N <= 0:
            return []
        n = page_size if page_size is not None else N
        query = f"?n={int(n)}" if n is not None else ""
        url = self._url(f"{parse_registry(host)}/v2/_catalog{query}")
        return await self._list_pages(
            url, "repositories", "repository", f"catalog of {host}", N, max_pages
        )

    async def _list_pages(
        self, url: str, key: str, noun: str, what: str, N: int | None, max_pages: int
    ) -> list[str]:
        """The names under ``key`` (each a ``noun``) of a paginated listing, at most ``N``."""
        names: list[str] = []
        known: set[str] = set()
        seen: set[str] = set()
        idle = 0

        def broken(why: str) -> exc.RegistryError:
            return exc.RegistryError(
                f"{what}: pagination {why}", status_code=200, method="GET", url=redact(url)
            )

        for _ in range(max_pages):
            seen.add(url)
            response = await self._send("GET", url)
            await raise_for_status(response, (200,), what=what)
            try:
                page = load_json(response.content).get(key) or []
            except (ValueError, AttributeError) as error:
                raise exc.RegistryError(
                    f"{what} is not a JSON object", status_code=200, method="GET", url=redact(url)
                ) from error
            if not isinstance(page, list):
                raise broken(f"gives {key} that are not a list")
            fresh = [t for t in page if isinstance(t, str) and t not in known]
            known.update(fresh)
            names.extend(fresh)
            if N is not None and len(names) >= N:
                return names[:N]
            next_url = _next_link(response)
            if not next_url:
                return names
            idle = 0 if fresh else idle + 1
            if idle >= _MAX_IDLE_PAGES:
                raise broken(f"brought no new {noun} in {idle} pages in a row")
            next_url = resolve_location(url, next_url)
            if not same_origin(next_url, url) or next_url in seen:
                raise broken(
                    f"points to {redact(next_url)}, off the registry or back to a seen page"
                )
            url = next_url
        raise broken(f"exceeds {max_pages} pages")

    # Answers to DELETE by tag from a registry that cannot delete a tag alone: the OCI spec
    # allows 400 and 405 (the CNCF registry sends 400 DIGEST_INVALID, or 405 UNSUPPORTED
    # with deletes disabled); 404 may also mean that the route is unknown.
    _TAG_DELETE_REFUSED = (400, 404, 405)
    # At most this many other tags are resolved to name those a manifest delete takes along.
    _MAX_SIBLING_TAGS = 1000

    async def delete_tag(self, container: ContainerLike, tag: str) -> bool:
        """Delete ``tag``; True when deleted, False when there was no such tag.

        Tries the OCI 1.1 tag deletion first (``DELETE /v2/<name>/manifests/<tag>``),
        which removes the tag alone. Where the registry refuses it (the CNCF registry
        does), the manifest the tag points at is deleted instead, and with it every tag
        pointing there: a warning is logged naming those other tags. Raises
        :class:`~aioras.exceptions.UnsupportedOperation` when deletes are disabled.
        """
        container = self.get_container(container).with_reference(tag)
        response = await self._send("DELETE", self._url(container.manifest_url()))
        if response.status_code not in self._TAG_DELETE_REFUSED:
            await raise_for_status(response, (202, 200, 204), what=f"delete tag {tag}")
            return True
        try:
            descriptor = await self.resolve(container)
        except exc.NotFoundError:
            return False
        digest = descriptor["digest"]
        others = await self._tags_pointing_at(container, digest, besides=tag)
        await self.delete_manifest(container, digest)
        if others:
            logger.warning(
                "%s cannot delete a tag alone: deleting tag %s deleted manifest %s and "
                "with it the tags %s",
                container.registry,
                tag,
                digest,
                ", ".join(others),
            )
        return True

    async def _tags_pointing_at(
        self, container: Container, digest: str, *, besides: str
    ) -> list[str]:
        """The repository's tags other than ``besides`` that resolve to ``digest``.

        Only looked up when the warning would be logged; a tag list or a tag the registry
        will not give counts as no tag. The first ``_MAX_SIBLING_TAGS`` tags are checked.
        """
        if not logger.isEnabledFor(logging.WARNING):
            return []
        try:
            tags = await self.get_tags(container, self._MAX_SIBLING_TAGS + 1)
        except exc.RegistryError as error:
            logger.debug("cannot list the tags of %s: %s", container.api_prefix, error)
            return []
        candidates = [t for t in tags if t != besides][: self._MAX_SIBLING_TAGS]

        async def same(other: str) -> bool:
            try:
                found = await self.resolve(container.with_reference(other))
            except exc.RegistryError:
                return False
            return bool(found["digest"] == digest)

        matches = await map_bounded(same, candidates, limit=self.pull_concurrency)
        return [t for t, match in zip(candidates, matches, strict=True) if match]

    async def delete_tags(self, name: ContainerLike, tags: str | Iterable[str]) -> list[str]:
        """Delete each of ``tags``; return those that were deleted."""
        container = self.get_container(name)
        deleted = []
        for tag in [tags] if isinstance(tags, str) else list(tags):
            if await self.delete_tag(container, tag):
                deleted.append(tag)
        return deleted

    # -- stores and raw manifests --------------------------------------------------------
    def repository(self, name: ContainerLike) -> Repository:
        """One repository of a registry as a content store (``"host/namespace/name"``).

        The store shares this object's connections, credentials, retries and transfer
        limit; what the registry supports (the referrers API) is remembered per
        repository. A tag or digest in ``name`` is ignored. Raises
        :class:`~aioras.exceptions.InvalidReference` for a malformed name.
        """
        return Repository(self, self.get_container(name))

    def _repository_state(self, container: Container) -> RepositoryState:
        key = f"{container.registry}/{container.api_prefix}"
        return self._repositories.setdefault(key, RepositoryState())

    async def tag(self, reference: ContainerLike, *new_tags: str) -> dict[str, Any]:
        """Give the manifest ``reference`` names these tags too; return its descriptor.

        The manifest's exact bytes are fetched once and PUT under each tag, so its digest
        is unchanged. Raises :class:`~aioras.exceptions.InvalidReference` for a malformed
        tag (before anything is sent) and the registry's typed errors.
        """
        container = self.get_container(reference)
        for tag in new_tags:
            container.with_reference(tag)  # validates before any request
        data, descriptor = await self.fetch_manifest_bytes(container)
        for tag in new_tags:
            await self.push_manifest_bytes(
                data, container, media_type=descriptor["mediaType"], reference=tag
            )
        return descriptor

    # -- high-level operations -----------------------------------------------------------
    async def push(
        self,
        target: ContainerLike,
        *,
        config_path: str | None = None,
        disable_path_validation: bool = False,
        files: PushFiles | None = None,
        manifest_config: str | None = None,
        annotation_file: AnnotationSource = None,
        manifest_annotations: Mapping[str, str] | None = None,
        subject: SubjectLike | None = None,
        do_chunked: bool = False,
        chunk_size: int | None = None,
        quiet: bool = False,
        artifact_type: str | None = None,
        concurrency: int | None = None,
        progress: ProgressCallback | None = None,
        root: str | os.PathLike[str] | None = None,
        pack_version: str | None = None,
        single_pass: bool = False,
    ) -> httpx.Response:
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
            progress=progress,
            root=root,
            pack_version=pack_version,
            single_pass=single_pass,
        )

    push.__doc__ = push_operation.__doc__

    async def pull(
        self,
        target: ContainerLike,
        *,
        config_path: str | None = None,
        allowed_media_type: Sequence[str] | None = None,
        overwrite: bool = True,
        outdir: str | os.PathLike[str] | None = None,
        concurrency: int | None = None,
        unpack_max_bytes: int | None = None,
        unpack_max_members: int | None = None,
        unpack_max_ratio: float | None = None,
        progress: ProgressCallback | None = None,
        platform: str | None = None,
    ) -> list[str]:
        return await pull_operation(
            self,
            target,
            config_path=config_path,
            allowed_media_type=allowed_media_type,
            overwrite=overwrite,
            outdir=outdir,
            concurrency=concurrency,
            unpack_max_bytes=unpack_max_bytes,
            unpack_max_members=unpack_max_members,
            unpack_max_ratio=unpack_max_ratio,
            progress=progress,
            platform=platform,
        )

    pull.__doc__ = pull_operation.__doc__

    # -- referrers -------------------------------------------------------------------------
    async def get_referrers(
        self, reference: ContainerLike, *, artifact_type: str | None = None
    ) -> list[dict[str, Any]]:
        """The descriptors of the manifests referring to ``reference`` (its ``subject``).

        Uses the referrers API, or the tag-schema fallback on registries without it; see
        :func:`aioras.operations.discover.get_referrers`.
        """
        found = await get_referrers_operation(self, reference, artifact_type=artifact_type)
        return [dict(d) for d in found]

    async def attach(
        self,
        subject_reference: ContainerLike,
        files: Sequence[str | os.PathLike[str]] = (),
        *,
        artifact_type: str,
        annotations: Mapping[str, str] | None = None,
        annotation_file: str | None = None,
        disable_path_validation: bool = False,
        keep_old_index: bool = False,
        concurrency: int | None = None,
        progress: ProgressCallback | None = None,
    ) -> dict[str, Any]:
        """Attach files to a manifest as an untagged OCI 1.1 artifact; return its descriptor.

        See :func:`aioras.operations.attach.attach`.
        """
        found = await attach_operation(
            self,
            subject_reference,
            files,
            artifact_type=artifact_type,
            annotations=annotations,
            annotation_file=annotation_file,
            disable_path_validation=disable_path_validation,
            keep_old_index=keep_old_index,
            concurrency=concurrency,
            progress=progress,
        )
        return dict(found)

    async def discover(
        self,
        reference: ContainerLike,
        *,
        depth: int | None = None,
        artifact_type: str | None = None,
    ) -> ReferrerNode:
        """The referrers tree of ``reference``; see :func:`aioras.operations.discover.discover`."""
        return await discover_operation(self, reference, depth=depth, artifact_type=artifact_type)

    async def delete_artifact(self, reference: ContainerLike) -> dict[str, Any]:
        """Delete a manifest, taking a referrer out of its subject's fallback index too.

        See :func:`aioras.operations.attach.delete_artifact`; returns the descriptor deleted.
        """
        return dict(await delete_artifact_operation(self, reference))

    # -- indexes ---------------------------------------------------------------------------
    async def push_index(
        self,
        target: ContainerLike,
        manifests: Iterable[ManifestLike],
        *,
        annotations: Mapping[str, str] | None = None,
        artifact_type: str | None = None,
    ) -> dict[str, Any]:
        """Build and push an image index of ``manifests``; return its descriptor.

        See :func:`aioras.operations.index.push_index`.
        """
        found = await push_index_operation(
            self, target, manifests, annotations=annotations, artifact_type=artifact_type
        )
        return dict(found)

    async def update_index(
        self,
        target: ContainerLike,
        *,
        add: Iterable[ManifestLike] = (),
        remove: Iterable[str] = (),
    ) -> dict[str, Any]:
        """Add, replace or remove entries of an index; return the new index's descriptor.

        See :func:`aioras.operations.index.update_index`.
        """
        return dict(await update_index_operation(self, target, add=add, remove=remove))

    async def copy(
        self,
        source_reference: ContainerLike,
        destination_reference: ContainerLike,
        *,
        referrers: bool = False,
        depth: int | None = None,
        artifact_type: str | None = None,
        platform: str | None = None,
        platforms: Sequence[str] | None = None,
        concurrency: int = defaults.default_copy_concurrency,
        progress: ProgressCallback | None = None,
    ) -> dict[str, Any]:
        """Copy an artifact (its whole graph) between repositories; return the root descriptor.

        Both references are full (``host/name:tag`` or ``@digest``); the hosts may differ
        (credentials are looked up per host). Blobs move as streams from one registry to
        the other, mounted instead when both repositories are on one host; manifests keep
        their exact bytes. A destination by digest is left untagged. Options and errors
        as :func:`aioras.copy`.
        """
        source = self.get_container(source_reference)
        destination = self.get_container(destination_reference)
        root = await copy_operation(
            self.repository(source),
            source.reference,
            self.repository(destination),
            None if destination.digest else _copy_target(destination),
            referrers=referrers,
            depth=depth,
            artifact_type=artifact_type,
            platform=platform,
            platforms=platforms,
            concurrency=concurrency,
            progress=progress,
        )
        return dict(root)

    async def mirror(
        self,
        plan: MirrorPlan,
        *,
        concurrency: int = 4,
        dry_run: bool = False,
        keep_going: bool = False,
        state: str | os.PathLike[str] | None = None,
        progress: MirrorProgress | None = None,
        rate_limits: RateLimits | None = None,
    ) -> MirrorReport:
        """Mirror many artifacts: every pair and :class:`~aioras.MirrorSpec` of ``plan``.

        ``plan`` holds ``(source reference, destination reference)`` pairs and
        :class:`~aioras.MirrorSpec` entries (see :func:`aioras.load_plan` for TOML plans).
        Each artifact is copied as :meth:`copy` does, ``concurrency`` artifacts at once
        (blobs stay bounded by ``max_transfers``); an artifact whose destination tag
        already names the source digest costs one HEAD on each side. A blob shared by
        artifacts of one destination repository is checked and sent once.

        ``dry_run``: resolve both sides and report what would be copied or skipped,
        sending nothing. ``keep_going``: report a failing artifact and go on (otherwise the
        first failure is raised once the artifacts under way settle). ``state``: a resume
        file; a mirror started again with it skips the artifacts it lists as done, and a
        completed mirror marks it so that the next run checks everything. ``progress``:
        the transfer events of each copy plus one
        :class:`~aioras.operations.mirror_report.ArtifactEvent` per artifact.
        ``rate_limits``: pace requests per host from now on (see :meth:`set_rate_limits`).

        Returns a :class:`~aioras.MirrorReport`. Raises ValueError for bad options, a
        malformed spec or state file, the registries' typed errors from listing tags or
        catalogs, and without ``keep_going`` the first artifact's typed error.
        """
        if rate_limits is not None:
            self.set_rate_limits(rate_limits)
        return await mirror_operation(
            self,
            plan,
            concurrency=concurrency,
            dry_run=dry_run,
            keep_going=keep_going,
            state=state,
            progress=progress,
        )


def _distribution_version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _copy_target(container: Container) -> str:
    return container.digest or container.tag or defaults.default_tag


def _json_bytes(doc: Mapping[str, Any]) -> bytes:
    return json.dumps(doc, separators=(",", ":")).encode()


def _next_link(response: httpx.Response) -> str | None:
    for value in response.headers.get_list("link"):
        for part in value.split(","):
            url, _, params = part.partition(";")
            if 'rel="next"' in params.replace(" ", "") or "rel=next" in params.replace(" ", ""):
                return url.strip().strip("<>")
    return None
