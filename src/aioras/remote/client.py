"""``RegistryClient``: one coroutine per OCI distribution endpoint, and nothing above them.

Method names and parameters follow oras-py's ``Registry`` so ported code keeps working;
each endpoint raises the typed errors of [`aioras.exceptions`][aioras.exceptions] instead of handing
back a failed response. The flat methods are composed of small stores on one shared
`Session`: blobs (`_blob_store`),
manifests (`_manifest_store`), tags and the catalog
(`_tag_store`). A flat method that needs another calls it on ``self``
(``upload_blob`` calls ``put_upload`` or ``chunked_upload``, ``delete_tag`` calls
``resolve`` and ``delete_manifest``), so a subclass's override applies, as in oras-py.

The operations (push, pull, copy, mirror ...) are not here:
[`aioras.AsyncRegistry`][aioras.registry.AsyncRegistry] (`aioras.registry`) is this client plus
them. Nothing in this package imports `aioras.operations`.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import inspect
import json
import logging
import os
import platform
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Concatenate, Literal, ParamSpec, Self, TypeVar

import anyio
import httpx

from .. import defaults, schemas
from .. import exceptions as exc
from .._concurrency import map_bounded
from .._environment import Environment, read_environment
from .._http.headers import check_header
from .._http.netbackend import ssl_context
from .._http.proxies import EnvironmentProxies
from .._http.ratelimit import HostPacer, RateLimits
from .._http.responses import raise_for_status
from .._http.transport import DEFAULT_LIMITS, DEFAULT_TIMEOUT, Transport
from .._manifests import check_manifest, check_manifest_digests, descriptor_of, media_type_of
from .._retry import DEFAULT_RETRY, RetryPolicy
from ..auth import Authenticator, Credentials, as_authenticator, get_auth_backend
from ..auth.dockerconfig import DockerConfigSource
from ..container import Container
from ..content.cache import BlobCache
from ..content.graph import choose_platform, descriptor_list, parse_document, parse_platform
from ..content.store import read_all
from ..descriptor import Descriptor, as_descriptor
from ..digest import digest_bytes, validate_digest
from ..oci import empty_config_path, manifest_bytes
from ..utils import split_path_and_content
from ..version import __version__
from ._blob_store import BlobStore
from ._downloads import RangeOptions
from ._manifest_store import ManifestStore, cached_manifest, keep_manifest
from ._session import Session, check_200_response
from ._tag_store import MAX_PAGES, TagStore
from ._uploads import BlobUpload, StreamOpener, stream_source
from .repository import Repository, RepositoryState

__all__ = ["ContainerLike", "RegistryClient", "count_calls"]

ContainerLike = str | Container

logger = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")


class RegistryClient:
    """The OCI distribution endpoints of one or more registries, as coroutines.

    Blobs, manifests, tags, the catalog and referrers (through
    [`repository`][aioras.registry.AsyncRegistry.repository]), with the configuration, lifecycle and
    pickling of the object; no operation built from them. Takes the options of
    [`aioras.AsyncRegistry`][aioras.registry.AsyncRegistry], which is this client plus the
    operations, and is documented there.
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
        max_transfers: int = defaults.default_max_transfers,
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
        cache: BlobCache | str | os.PathLike[str] | Literal[False] | None = None,
    ) -> None:
        _check_limits(
            push_concurrency=push_concurrency,
            pull_concurrency=pull_concurrency,
            max_transfers=max_transfers,
            download_ranges=download_ranges,
            chunk_size=chunk_size,
            range_threshold=range_threshold,
        )
        # What a subclass set before calling this is its own: it travels in a pickle.
        inherited = set(self.__dict__)
        # Only the flag is stored: the URL scheme (prefix) follows it (see the property).
        self.hostname, self._insecure, self.tls_verify = hostname, insecure, tls_verify
        self.push_concurrency, self.pull_concurrency = push_concurrency, pull_concurrency
        self.max_transfers, self.chunk_size = max_transfers, chunk_size
        self.download_ranges, self.range_threshold = download_ranges, range_threshold
        self.environment = environment or read_environment()
        self.cache = _pick_cache(cache, self.environment)
        self._docker_configs = DockerConfigSource([self.environment.docker_config_file])
        self.auth = self._authenticator(auth_backend, insecure)
        self.headers: dict[str, str] = {"User-Agent": f"aioras/{__version__}"}
        self.headers.update(headers or {})
        self._env_proxies: EnvironmentProxies | None = None
        self._transport = self._build_transport(
            timeout=timeout, retry=retry, proxy=proxy, transport=transport, limits=rate_limits
        )
        self._session = Session(self._transport, insecure=insecure)
        self._blobs = BlobStore(self._session)
        self._manifests = ManifestStore(self._session)
        self._tags = TagStore(self._session)
        self._transfers: anyio.CapacityLimiter | None = None
        self._repositories: dict[str, RepositoryState] = {}
        # Options kept only to rebuild the object in another process (see __getstate__).
        rebuild = {"timeout": timeout, "retry": retry, "proxy": proxy, "transport": transport}
        self._rebuild_options: dict[str, Any] = rebuild
        self._calls = 0
        # True for a copy sent without secrets (see without_credentials).
        self._local_credentials = False
        self._own_attributes = frozenset(set(self.__dict__) - inherited) | {"_own_attributes"}

    def _build_transport(
        self,
        *,
        timeout: httpx.Timeout | float,
        retry: RetryPolicy,
        proxy: str | None,
        transport: httpx.AsyncBaseTransport | None,
        limits: RateLimits | None,
    ) -> Transport:
        """The one transport of this object, for its auth, headers and TLS setting."""
        verify = self._effective_verify(self.tls_verify)
        # As requests does: CA bundles and proxies from the environment, unless explicit.
        if transport is None and proxy is None and self.environment.has_proxies:
            self._env_proxies = EnvironmentProxies(
                self.environment, verify=ssl_context(verify), limits=DEFAULT_LIMITS
            )
        return Transport(
            authenticator=self.auth,
            verify=verify,
            timeout=timeout,
            retry=retry,
            # Shared, not copied: set_header() reaches every later request.
            headers=self.headers,
            proxy=proxy,
            transport=transport or self._env_proxies,
            # Credentials and these headers go only to registries a reference (or
            # hostname) names; an upload Location or a redirect elsewhere gets neither.
            registries=set(),
            # Per-host politeness (adaptive in-flight limit, shared pauses), request counts.
            pacer=HostPacer(limits),
        )

    def _authenticator(self, backend: str | Authenticator, insecure: bool) -> Authenticator:
        """The backend named (or given: an oras-py style one adapted), with this object's
        credential sources: ``ORAS_USER``/``ORAS_PASS``, then the Docker config files."""
        if isinstance(backend, str):
            auth = get_auth_backend(backend, insecure=insecure)
        else:
            auth = as_authenticator(backend, insecure=insecure)
        auth.add_source(self._environment_credentials)
        auth.add_source(self._docker_configs)
        return auth

    @property
    def insecure(self) -> bool:
        """True when the registry speaks plain http.

        Setting it switches the URL scheme of later requests (`prefix`) and tells
        the authentication backend, which then accepts plain-http token realms.
        """
        return self._insecure

    @insecure.setter
    def insecure(self, value: bool) -> None:
        self._insecure = bool(value)
        self.auth.insecure = self._insecure
        self._session.insecure = self._insecure

    @property
    def prefix(self) -> str:
        """The URL scheme, derived from `insecure`: ``http`` or ``https``.

        Setting it (as oras-py code may) sets `insecure`; any other value is a
        ``ValueError``.
        """
        return "http" if self._insecure else "https"

    @prefix.setter
    def prefix(self, value: str) -> None:
        if value not in ("http", "https"):
            raise ValueError(f"prefix must be 'http' or 'https', got {value!r}")
        self.insecure = value == "http"

    # -- lifecycle -----------------------------------------------------------------------
    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool. The object can be used again afterwards (a new pool)."""
        await self._transport.aclose()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(hostname={self.hostname!r}, insecure={self.insecure})"

    # -- pickling: the configuration travels, never a pool, a lock or a token ---------------
    def __getstate__(self) -> dict[str, Any]:
        if self._calls:
            raise exc.RegistryInUse(
                f"cannot pickle or copy {type(self).__name__} while {self._calls} call(s) on it "
                "are running; copy it before the calls start or after they finish"
            )
        pacer = self._transport.pacer
        options = {
            "hostname": self.hostname,
            "insecure": self._insecure,
            "tls_verify": self.tls_verify,
            "push_concurrency": self.push_concurrency,
            "pull_concurrency": self.pull_concurrency,
            "max_transfers": self.max_transfers,
            "download_ranges": self.download_ranges,
            "range_threshold": self.range_threshold,
            "chunk_size": self.chunk_size,
            "headers": dict(self.headers),
            "environment": self.environment,
            "rate_limits": pacer.limits if pacer is not None else None,
            # False keeps "no cache" from becoming the other side's ORAS_CACHE.
            "cache": self.cache if self.cache is not None else False,
            **self._rebuild_options,
        }
        own_sources = (self._environment_credentials, self._docker_configs)
        return {
            "options": options,
            "local_credentials": self._local_credentials,
            # The backend with its credentials and the sources a user added; this object's
            # own sources are added again by __init__ on the other side.
            "auth": self.auth._detached(keep=lambda source: source not in own_sources),
            "docker_configs": list(self._docker_configs.paths),
            "attributes": {k: v for k, v in self.__dict__.items() if k not in self._own_attributes},
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        options = dict(state["options"])
        local_credentials = state.get("local_credentials", False)
        if local_credentials:
            # Sent without secrets: this process's ORAS_USER/ORAS_PASS, if any, apply.
            here = read_environment()
            options["environment"] = dataclasses.replace(
                options["environment"], oras_user=here.oras_user, oras_pass=here.oras_pass
            )
        self.__dict__.update(state["attributes"])
        RegistryClient.__init__(self, auth_backend=state["auth"], **options)
        self._docker_configs.paths[:] = state["docker_configs"]
        self._local_credentials = local_credentials

    def __copy__(self) -> Self:
        raise TypeError(
            f"copy.copy of {type(self).__name__} would share its credentials and headers "
            "with the original; use copy.deepcopy for an independent copy"
        )

    def without_credentials(self) -> Self:
        """An independent copy of this object that carries no secret, to send to workers.

        The copy has the same options, headers and Docker config files, but no credential
        set with `set_basic_auth` (or ``login``), no oras-py ``token``, and not this
        process's ``ORAS_USER``/``ORAS_PASS``: where it is unpickled, it reads credentials
        where they live there (the Docker config files and that process's environment).
        Raises [`RegistryInUse`][aioras.exceptions.RegistryInUse] while a call on this object runs.
        """
        state = copy.deepcopy(self.__getstate__())
        options = state["options"]
        options["environment"] = dataclasses.replace(
            options["environment"], oras_user=None, oras_pass=None
        )
        state["auth"]._drop_credentials()
        state["local_credentials"] = True
        clone = object.__new__(type(self))
        clone.__setstate__(state)
        return clone

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

        Raises [`InvalidHeaderValue`][aioras.exceptions.InvalidHeaderValue], without quoting the
        value, when it holds a control character (a pasted newline) or a non-ASCII one.
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

    def _forget_loop_state(self) -> None:
        """Drop the limiter and in-flight uploads of a loop this process no longer runs."""
        self._transfers = None
        self._blobs.uploading = {}
        self._blobs.downloading = {}
        self._docker_configs._locks = {}

    def get_container(self, name: ContainerLike) -> Container:
        """Parse ``name`` into a [`Container`][aioras.Container], defaulting to this object's
        hostname.

        Raises [`InvalidReference`][aioras.exceptions.InvalidReference] for a malformed name.
        """
        if isinstance(name, Container):
            return name
        return Container(name, registry=self.hostname)

    def _check_200_response(self, response: httpx.Response) -> None:
        """Raise the typed error for ``response`` unless its status is 200, 201 or 202."""
        check_200_response(response)

    async def _limiter(self) -> anyio.CapacityLimiter:
        # Created lazily: a limiter belongs to the event loop that first uses it.
        if self._transfers is None:
            self._transfers = anyio.CapacityLimiter(self.max_transfers)
        return self._transfers

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
        without, a body over 16 MiB
        ([`aioras.defaults.max_response_size`][aioras.defaults.max_response_size]) raises
        [`ResponseTooLarge`][aioras.exceptions.ResponseTooLarge]: stream larger ones. The origin of
        ``url`` is treated as a registry: it gets credentials.
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
        return await self._session.send(method, url, headers=hdrs, body=body, stream=stream)

    async def ping(self, hostname: str | None = None) -> httpx.Response:
        """``GET /v2/``: check the registry speaks the distribution API (authenticating)."""
        host = hostname or self.hostname
        if not host:
            raise ValueError("ping() needs a hostname")
        response = await self._session.send("GET", self._session.url(f"{host}/v2/"))
        await raise_for_status(response, (200,), what=f"registry {host}")
        return response

    # -- blobs ---------------------------------------------------------------------------
    async def blob_exists(self, layer: Mapping[str, Any], container: ContainerLike) -> bool:
        """True when the repository holds the blob of ``layer`` (a descriptor dict)."""
        container = self.get_container(container)
        return await self._blobs.exists(container, validate_digest(layer["digest"]))

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
        the caller must close the response; prefer `stream_blob` or
        `download_blob`. Raises [`NotFoundError`][aioras.exceptions.NotFoundError] when the
        blob is unknown and [`DigestMismatch`][aioras.exceptions.DigestMismatch] for altered bytes.
        """
        container = self.get_container(container)
        validate_digest(digest)
        return await self._blobs.get(container, digest, stream=stream, head=head)

    @asynccontextmanager
    async def stream_blob(
        self, container: ContainerLike, digest: str
    ) -> AsyncIterator[httpx.Response]:
        """Open a blob for streaming: ``async with reg.stream_blob(c, d) as r:``.

        The response is closed on exit. Bytes are not verified here: hash them as they
        arrive (`aioras.digest.Verifier`) or use `download_blob`.
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
        times) and never kept. While this object downloads a blob of a repository, other
        calls for the same blob and repository wait for it and copy the verified file
        (hashed and verified again) instead of fetching the bytes a second time. With a
        `cache` and ``size`` given, the blob comes from
        the cache (fetched into it first on a miss, once across processes) and is copied
        to ``outfile``. With ``size`` above ``range_threshold``, the blob comes as
        ranges over ``download_ranges`` parallel connections, taken in order and written
        at their offsets (each resumed on its own), or as one stream when the registry
        does not honour ``Range``. On any
        failure, or cancellation, no file is left and ``outfile`` is untouched. Raises
        [`DigestMismatch`][aioras.exceptions.DigestMismatch] or
        [`SizeMismatch`][aioras.exceptions.SizeMismatch] for content that does not match,
        [`StorageError`][aioras.exceptions.StorageError] when the file cannot be written whole
        (a full disk: the bytes hashed are the bytes written), and
        [`TransportError`][aioras.exceptions.TransportError] once ``retry.resumes`` is spent.
        """
        container = self.get_container(container)
        validate_digest(digest)
        if self.cache is None or size is None:
            return await self._download_from_origin(container, digest, outfile, size)
        descriptor: Descriptor = {
            "mediaType": defaults.default_blob_media_type,
            "digest": digest,
            "size": size,
        }

        async def fill(path: Path) -> None:
            await self._download_from_origin(container, digest, path, size)

        async with self.cache.lease(descriptor, download=fill) as blob:
            # 0o600: what a download writes (its temporary file's mode) without the cache.
            await blob.copy_to(outfile, mode=0o600)
        return os.fspath(outfile)

    async def _download_from_origin(
        self,
        container: Container,
        digest: str,
        outfile: str | os.PathLike[str],
        size: int | None,
    ) -> str:
        limiter = await self._limiter()
        ranges = RangeOptions(self.download_ranges, self.range_threshold, limiter)
        return await self._blobs.download(
            container, digest, outfile, size=size, ranges=ranges, limiter=limiter
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
        (``skip_existing=False`` uploads anyway). While this object checks for or uploads a
        blob into a repository, other calls for the same blob and repository wait for it
        and take its answer, instead of asking or sending the bytes a second time.
        Monolithic by default (POST, then one streamed PUT); ``do_chunked`` uses PATCH
        chunks of ``chunk_size`` bytes. Raises
        [`SizeMismatch`][aioras.exceptions.SizeMismatch] when the file's size is not the
        descriptor's, and the registry's typed errors.
        """
        container = self.get_container(container)
        path = os.fspath(blob) if blob is not None else empty_config_path()
        digest = validate_digest(layer["digest"])
        size = int(layer["size"])
        actual_size = await anyio.to_thread.run_sync(os.path.getsize, path)
        if actual_size != size:
            raise exc.SizeMismatch(expected=size, actual=actual_size, what=f"file {path}")
        return await self._blobs.upload_once(
            container,
            digest,
            lambda: (
                self.chunked_upload(
                    path, container, layer, chunk_size=chunk_size or self.chunk_size
                )
                if do_chunked
                else self.put_upload(path, container, layer)
            ),
            skip_existing=skip_existing,
            limiter=await self._limiter(),
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
        uploads already under way are handled as in `upload_blob`. Raises the
        registry's typed errors, and what ``source`` raises (e.g.
        [`DigestMismatch`][aioras.exceptions.DigestMismatch] from a verified stream).
        """
        container = self.get_container(container)
        digest = validate_digest(layer["digest"])
        upload = self._blobs.upload(
            None, container, digest, int(layer["size"]), source=stream_source(source)
        )
        return await self._blobs.upload_once(
            container,
            digest,
            upload.monolithic,
            skip_existing=skip_existing,
            limiter=await self._limiter(),
        )

    def _blob_upload(
        self, blob: str | os.PathLike[str], container: Container, layer: Mapping[str, Any]
    ) -> BlobUpload:
        return self._blobs.upload(
            blob, container, validate_digest(layer["digest"]), int(layer["size"])
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
        `chunked_upload`, re-reading only the bytes they must. Returns
        ``{"digest": ..., "size": ...}``. Raises the registry's typed errors, or
        [`TransportError`][aioras.exceptions.TransportError] when it cannot be reached.
        """
        container = self.get_container(container)
        path = os.fspath(blob)
        size = await anyio.to_thread.run_sync(os.path.getsize, path)
        upload = self._blobs.upload_new(path, container, size)
        async with await self._limiter():
            await upload.chunked(chunk_size or self.chunk_size)
        return {"digest": upload.digest, "size": size}

    async def upload_file(
        self,
        blob: str | os.PathLike[str],
        container: ContainerLike,
        *,
        on_digest: Callable[[str], Awaitable[None]] | None = None,
    ) -> tuple[str, int, httpx.Response]:
        """Upload the file ``blob`` unless the registry has it; return digest, size, answer.

        The file is hashed while it is sent, not before: the upload starts at once as one
        ``PATCH``, while a worker thread hashes the file and the blob's existence is
        checked. A blob the registry holds (or that another call is uploading into the
        repository) cancels the upload; the answer is then the ``HEAD``'s (200), as
        `upload_blob` gives. Otherwise the closing ``PUT`` waits for the hash and names it,
        and the registry checks the bytes it stored against it; a registry that refuses
        chunked uploads (405) gets the file in one monolithic ``PUT`` once the hash is
        known. ``on_digest`` is awaited
        with the digest once the hash is done, while the upload goes on. Faults are resumed
        as in `chunked_upload`. Raises the registry's typed errors (a file that changed
        while it was read fails the registry's check).
        """
        container = self.get_container(container)
        path = os.fspath(blob)
        size = await anyio.to_thread.run_sync(os.path.getsize, path)
        digest, response = await self._blobs.upload_overlapped(
            container, path, size, limiter=await self._limiter(), on_digest=on_digest
        )
        return digest, size, response

    async def _cancel_upload(self, location: str) -> None:
        await self._blobs.cancel(location)

    async def put_upload(
        self, blob: str | os.PathLike[str], container: ContainerLike, layer: Mapping[str, Any]
    ) -> httpx.Response:
        """Monolithic upload: open a session (POST), then stream the whole file in one PUT.

        A failed upload restarts with a new session (at most ``retry.resumes`` times); a
        PUT whose answer was lost is checked with HEAD before anything is sent again, and
        the blob's HEAD response (200) is returned when it was stored. Abandoned sessions
        are cancelled. Raises the registry's typed errors, or
        [`TransportError`][aioras.exceptions.TransportError] when it cannot be reached.
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
        most ``retry.resumes`` recoveries in all). Returns as `put_upload` does.
        """
        container = self.get_container(container)
        return await self._blob_upload(blob, container, layer).chunked(chunk_size)

    async def delete_blob(self, container: ContainerLike, digest: str) -> None:
        """Delete a blob. Raises UnsupportedOperation when deletes are disabled."""
        container = self.get_container(container)
        validate_digest(digest)
        await self._blobs.delete(container, digest)

    async def mount_blob(self, container: ContainerLike, digest: str, from_repository: str) -> bool:
        """Ask the registry to mount a blob from another repository; True when it did.

        A registry that answers with an upload session instead (202) did not mount; the
        session is cancelled and False returned, so the caller uploads normally.
        """
        container = self.get_container(container)
        validate_digest(digest)
        return await self._blobs.mount(container, digest, from_repository)

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

        The body is [`aioras.oci.manifest_bytes`][aioras.oci.manifest_bytes] of ``manifest`` and its
        ``Content-Type`` the manifest's own media type. The PUT is retried like any
        idempotent request; besides, when the registry stored other bytes than were sent
        (its ``Docker-Content-Digest`` differs) or refuses the document with
        MANIFEST_INVALID, DIGEST_INVALID or MANIFEST_BLOB_UNKNOWN although it passed the
        schema check here, it is sent again, at most ``retry.refetches`` times. Raises
        [`ManifestValidationError`][aioras.exceptions.ManifestValidationError] before sending
        anything when the manifest fails its schema,
        [`DigestMismatch`][aioras.exceptions.DigestMismatch] when the registry keeps storing other
        bytes, and the registry's typed errors.
        """
        container = self.get_container(container)
        media_type = manifest.get("mediaType") or media_type or defaults.default_manifest_media_type
        await schemas.ready()
        schemas.validate(dict(manifest), media_type)
        return await self._manifests.put(
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
        re-sent as `upload_manifest` is; raises
        [`DigestMismatch`][aioras.exceptions.DigestMismatch] when the registry keeps storing other
        bytes, and the registry's typed errors.
        """
        container = self.get_container(container)
        return await self._manifests.put(
            data, container, media_type, reference or container.reference
        )

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
        steps, never past ``max_size``. With a `cache`, a manifest asked for by digest
        comes from it when it holds one (hashed against the digest, then checked as above
        but for the headers: no request is made), and one fetched by digest is added to
        it; a tag always goes to the registry. Raises
        [`ManifestTooLarge`][aioras.exceptions.ManifestTooLarge],
        [`DigestMismatch`][aioras.exceptions.DigestMismatch],
        [`ManifestValidationError`][aioras.exceptions.ManifestValidationError], or the registry's
        typed errors.
        """
        container = self.get_container(container)
        cached = await cached_manifest(self.cache, container, allowed_media_type, max_size)
        if cached is not None:
            await schemas.ready()
            return check_manifest(container, cached[0], None), descriptor_of(cached[0], None)
        data, response, manifest = await self._fetch_checked(
            container, allowed_media_type, max_size, check_manifest
        )
        descriptor = descriptor_of(data, response)
        await keep_manifest(self.cache, container, data, descriptor["mediaType"])
        return manifest, descriptor

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
        unread. Breaks and failed checks are retried, and a `cache` read through, as in
        `fetch_manifest` (a manifest from the cache has its document's ``mediaType``). Raises
        [`ManifestTooLarge`][aioras.exceptions.ManifestTooLarge],
        [`DigestMismatch`][aioras.exceptions.DigestMismatch], or the registry's typed errors.
        """
        container = self.get_container(container)
        cached = await cached_manifest(self.cache, container, allowed_media_type, max_size)
        if cached is not None:
            data, media_type = cached
        else:
            data, media_type = await self._manifest_bytes_at_origin(
                container, allowed_media_type, max_size
            )
            await keep_manifest(self.cache, container, data, media_type)
        return data, {"mediaType": media_type, "digest": digest_bytes(data), "size": len(data)}

    async def _manifest_bytes_at_origin(
        self, container: Container, allowed_media_type: Sequence[str] | None, max_size: int
    ) -> tuple[bytes, str]:
        """`fetch_manifest_bytes` from the registry itself: the bytes and their Content-Type."""
        data, response, _ = await self._fetch_checked(
            container, allowed_media_type, max_size, check_manifest_digests
        )
        return data, media_type_of(response.headers.get("content-type"))

    async def _fetch_checked(
        self,
        name: ContainerLike,
        allowed_media_type: Sequence[str] | None,
        max_size: int,
        check: Callable[[Container, bytes, httpx.Response], T],
    ) -> tuple[bytes, httpx.Response, T]:
        """Fetch a manifest of ``name``, each answer held to ``check`` (retried as it says)."""
        container = self.get_container(name)
        return await self._manifests.fetch(
            container,
            allowed_media_type,
            max_size,
            lambda data, response: check(container, data, response),
        )

    async def get_manifest(
        self,
        container: ContainerLike,
        allowed_media_type: Sequence[str] | None = None,
        validation_schema: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Fetch, verify and return a manifest (or index) as a dict.

        ``validation_schema``, when given, is an extra JSON schema the document must meet.
        See `fetch_manifest` for the checks and errors.
        """
        manifest, _ = await self.fetch_manifest(container, allowed_media_type)
        if validation_schema is not None:
            import jsonschema  # imported by the fetch's check (see schemas.ready)

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
        included; raises [`PlatformNotFound`][aioras.exceptions.PlatformNotFound] listing what the
        index offers when it has none, and ValueError for a malformed platform.
        """
        container = self.get_container(container)
        if platform is not None:
            parse_platform(platform)  # a malformed platform fails before any request
            found = await self.resolve(container, allowed_media_type)
            if found["mediaType"] not in defaults.index_media_types:
                return found
            return dict(await self._choose_manifest(as_descriptor(found), container, platform))
        shown = await self._manifests.head(container, allowed_media_type)
        if shown is not None:
            return shown
        accept = list(allowed_media_type or defaults.default_manifest_accepted_media_types)
        _, descriptor = await self.fetch_manifest(container, accept)
        return descriptor

    async def _choose_manifest(
        self, index: Descriptor, container: Container, platform: str
    ) -> Descriptor:
        """The entry of the index ``index`` (in ``container``'s repository) for ``platform``."""
        data = await read_all(self.repository(container), index)
        manifests = descriptor_list(parse_document(data, index["digest"]).get("manifests"), "index")
        return choose_platform(manifests, platform, index["digest"])

    async def delete_manifest(self, container: ContainerLike, digest: str | None = None) -> None:
        """Delete the manifest ``digest`` (default: the container's digest) from its repository.

        Every tag pointing at it goes too. A referrer (a manifest with a ``subject``) is
        also taken out of its subject's tag-schema index on registries without the
        referrers API, so listings stop naming it: this is
        [`aioras.remote.repository.Repository.delete`][aioras.remote.repository.Repository.delete],
        the one way manifests are deleted. Raises [`NotFoundError`][aioras.exceptions.NotFoundError]
        when there is no such manifest and
        [`UnsupportedOperation`][aioras.exceptions.UnsupportedOperation] when deletes are disabled.
        """
        container = self.get_container(container)
        ref = digest or container.digest
        if not ref:
            raise ValueError("delete_manifest needs a digest; use delete_tag for tags")
        validate_digest(ref)
        await self.repository(container).delete_manifest(ref)

    async def _delete_manifest_request(self, container: Container, digest: str) -> None:
        """The DELETE of one manifest, and nothing else (see `delete_manifest`)."""
        await self._manifests.delete(container, digest)

    # -- tags ----------------------------------------------------------------------------
    async def get_tags(
        self,
        container: ContainerLike,
        N: int | None = None,
        *,
        page_size: int | None = None,
        max_pages: int = MAX_PAGES,
        max_names: int = defaults.max_listed_names,
    ) -> list[str]:
        """List the repository's tags, following ``Link`` pagination; at most ``N``.

        ``page_size`` asks the registry for pages of that many tags (``n=``). Pagination
        is refused with a [`RegistryError`][aioras.exceptions.RegistryError] when it leaves the
        registry's origin, revisits a page, brings no new tag for several pages in a row,
        or runs past ``max_pages`` pages (default 10,000). A listing of more than
        ``max_names`` tags across its pages (default 1,000,000,
        [`aioras.defaults.max_listed_names`][aioras.defaults.max_listed_names]) raises
        [`ResponseTooLarge`][aioras.exceptions.ResponseTooLarge] (pass ``N`` to take the first
        ones).
        """
        return await self._tags.tags(
            self.get_container(container),
            N,
            page_size=page_size,
            max_pages=max_pages,
            max_names=max_names,
        )

    async def list_repositories(
        self,
        hostname: str | None = None,
        N: int | None = None,
        *,
        page_size: int | None = None,
        max_pages: int = MAX_PAGES,
        max_names: int = defaults.max_listed_names,
    ) -> list[str]:
        """List the repositories of a registry (its catalog), following pagination; at most ``N``.

        ``hostname`` defaults to this object's. Pagination is checked as in
        `get_tags` (same origin, no page twice, new names coming, at most
        ``max_pages`` pages) and refused with a [`RegistryError`][aioras.exceptions.RegistryError];
        more than ``max_names`` names (default 1,000,000) raise
        [`ResponseTooLarge`][aioras.exceptions.ResponseTooLarge].
        Registries that keep their catalog private answer
        [`PermissionDenied`][aioras.exceptions.PermissionDenied] or
        [`NotFoundError`][aioras.exceptions.NotFoundError]; raises ValueError without a hostname.
        """
        host = hostname or self.hostname
        if not host:
            raise ValueError("list_repositories() needs a hostname")
        return await self._tags.catalog(
            host, N, page_size=page_size, max_pages=max_pages, max_names=max_names
        )

    # At most this many other tags are resolved to name those a manifest delete takes along.
    _MAX_SIBLING_TAGS = 1000

    async def delete_tag(self, container: ContainerLike, tag: str) -> bool:
        """Delete ``tag``; True when deleted, False when there was no such tag.

        Tries the OCI 1.1 tag deletion first (``DELETE /v2/<name>/manifests/<tag>``),
        which removes the tag alone. Where the registry refuses it (the CNCF registry
        does), the manifest the tag points at is deleted instead, and with it every tag
        pointing there: a warning is logged naming those other tags. Raises
        [`UnsupportedOperation`][aioras.exceptions.UnsupportedOperation] when deletes are disabled.
        """
        container = self.get_container(container).with_reference(tag)
        if await self._tags.delete_alone(container):
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
        [`InvalidReference`][aioras.exceptions.InvalidReference] for a malformed name.
        """
        return Repository(self, self.get_container(name))

    def _repository_state(self, container: Container) -> RepositoryState:
        key = f"{container.registry}/{container.api_prefix}"
        return self._repositories.setdefault(key, RepositoryState())

    async def tag(self, reference: ContainerLike, *new_tags: str) -> dict[str, Any]:
        """Give the manifest ``reference`` names these tags too; return its descriptor.

        The manifest's exact bytes are fetched once and PUT under each tag, so its digest
        is unchanged. Raises [`InvalidReference`][aioras.exceptions.InvalidReference] for a
        malformed tag (before anything is sent) and the registry's typed errors.
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


C = TypeVar("C", bound=RegistryClient)


def _pick_cache(
    cache: BlobCache | str | os.PathLike[str] | Literal[False] | None, environment: Environment
) -> BlobCache | None:
    """The cache asked for: given, a path, none (False), or ``ORAS_CACHE``'s (None)."""
    if cache is False:
        return None
    if cache is None:
        return BlobCache(environment.oras_cache) if environment.oras_cache else None
    if isinstance(cache, BlobCache):
        return cache
    return BlobCache(cache)


def _counted(
    method: Callable[Concatenate[C, P], Awaitable[R]],
) -> Callable[Concatenate[C, P], Awaitable[R]]:
    @functools.wraps(method)
    async def counted(self: C, /, *args: P.args, **kwargs: P.kwargs) -> R:
        self._calls += 1
        try:
            return await method(self, *args, **kwargs)
        finally:
            self._calls -= 1

    return counted


def count_calls(cls: type[C]) -> type[C]:
    """Make each public coroutine method ``cls`` defines count itself while it runs.

    So that a pickle or deep copy taken mid-call is refused (see ``__getstate__``) rather
    than copying a half-changed object. Applied to this client and to each class adding
    coroutine methods above it ([`aioras.AsyncRegistry`][aioras.registry.AsyncRegistry]).
    """
    for name, method in list(vars(cls).items()):
        if not name.startswith("_") and inspect.iscoroutinefunction(method):
            setattr(cls, name, _counted(method))
    return cls


count_calls(RegistryClient)


def _distribution_version(name: str) -> str:
    import importlib.metadata  # 60 ms at import time, for version() alone

    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _json_bytes(doc: Mapping[str, Any]) -> bytes:
    return json.dumps(doc, separators=(",", ":")).encode()


def _check_limits(*, range_threshold: int, **limits: int) -> None:
    """Raise ValueError for a limit below 1 or a negative ``range_threshold``."""
    for name, value in limits.items():
        if value < 1:
            raise ValueError(f"{name} must be at least 1, got {value}")
    if range_threshold < 0:
        raise ValueError(f"range_threshold must not be negative, got {range_threshold}")
