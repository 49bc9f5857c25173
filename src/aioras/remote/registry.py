"""``AsyncRegistry``: one coroutine per OCI distribution endpoint, and the operations on top.

Method names and parameters follow oras-py's ``Registry`` so ported code keeps working;
each endpoint raises the typed errors of :mod:`aioras.exceptions` instead of handing back a
failed response. High-level operations (push, pull, copy, tag) live in
:mod:`aioras.operations` and are built only from the public endpoint methods, so a subclass
that overrides ``upload_blob`` changes how ``push`` uploads.

This module holds the class itself: its configuration (``__init__``, properties, setters),
lifecycle and plain helpers. Its other methods come from one mixin per concern, each in a
private module of its own: blobs (``_blob_endpoints``), manifests (``_manifest_endpoints``),
tags and the catalog (``_tag_endpoints``), and the stores and operations on top
(``_operation_methods``), all on the shared state and request plumbing of ``_core``.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import inspect
import platform
import sys
from collections.abc import Awaitable, Callable, Mapping
from types import TracebackType
from typing import Any, Concatenate, ParamSpec, TypeVar

import anyio
import httpx

from .. import defaults
from .. import exceptions as exc
from .._environment import Environment, read_environment
from .._http.headers import check_header
from .._http.netbackend import ssl_context
from .._http.proxies import EnvironmentProxies
from .._http.ratelimit import HostPacer, RateLimits
from .._http.retry import DEFAULT_RETRY, RetryPolicy
from .._http.transport import DEFAULT_LIMITS, DEFAULT_TIMEOUT, Transport
from ..auth import Authenticator, Credentials, as_authenticator, get_auth_backend
from ..auth.dockerconfig import DockerConfigSource
from ..utils import split_path_and_content
from ..version import __version__
from ._blob_endpoints import BlobMixin
from ._core import ContainerLike
from ._downloads import SharedDownload
from ._manifest_endpoints import ManifestMixin
from ._operation_methods import OperationsMixin
from ._tag_endpoints import TagMixin
from ._uploads import UploadInFlight
from .repository import RepositoryState

__all__ = ["AsyncRegistry", "ContainerLike"]

P = ParamSpec("P")
R = TypeVar("R")


# The parts from the top layer down (no two define one name). The API reference lists
# inherited methods base by base from the last: blobs, manifests, tags, operations.
class AsyncRegistry(OperationsMixin, TagMixin, ManifestMixin, BlobMixin):
    """An asyncio client for OCI registries: endpoints as coroutines, streaming transfers.

    ``hostname`` is the registry used for names that do not name one; ``insecure`` speaks
    plain http; ``tls_verify`` is True, False, or the path of a CA bundle; ``auth_backend``
    is ``"token"`` (answers basic and bearer challenges), ``"basic"``, or an
    :class:`~aioras.auth.Authenticator`. Keyword options bound concurrency
    (``push_concurrency`` layers at once per push, ``pull_concurrency`` per pull,
    ``max_transfers`` blob transfers in flight across all calls on this object), set the
    default ``chunk_size`` of chunked uploads, ``timeout`` and ``retry`` policy, and
    ``rate_limits`` (a :class:`~aioras.RateLimits`: by default no fixed rate, an adaptive
    limit per host that backs off on ``429``, ``503``, timeouts and resets and keeps
    ``Retry-After``; a fixed rate per host is opt-in). Defaults: ``max_transfers`` 32,
    ``push_concurrency`` 5, ``pull_concurrency`` 3. A blob larger than ``range_threshold``
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

    It pickles, and deep-copies, by its configuration: the options above, session headers,
    the credentials that were set, the Docker config files to read, and a subclass's own
    attributes. The copy builds its own connection pool and locks, and fetches tokens again;
    :meth:`without_credentials` gives a copy that carries no secret. Pickling while a call
    on the object is running raises :class:`~aioras.exceptions.RegistryInUse`;
    ``copy.copy`` raises TypeError (a shallow copy would share credentials and headers).
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
        # What a subclass set before calling this is its own: it travels in a pickle.
        inherited = set(self.__dict__)
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
        # Per-host politeness (adaptive in-flight limit, shared pauses), request counts.
        self._transport.pacer = HostPacer(rate_limits)
        self._transfers: anyio.CapacityLimiter | None = None
        self._uploading: dict[tuple[str, str, str], UploadInFlight] = {}
        self._downloading: dict[tuple[str, str, str], SharedDownload] = {}
        self._repositories: dict[str, RepositoryState] = {}
        # Per server: why it is not an OCI registry ("" when it is, or may be).
        self._registry_verdicts: dict[str, str] = {}
        # Options kept only to rebuild the object in another process (see __getstate__).
        self._rebuild_options: dict[str, Any] = {
            "timeout": timeout,
            "retry": retry,
            "proxy": proxy,
            "transport": None if transport is self._env_proxies else transport,
        }
        self._calls = 0
        # True for a copy sent without secrets (see without_credentials).
        self._local_credentials = False
        self._own_attributes = frozenset(set(self.__dict__) - inherited) | {"_own_attributes"}

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
        AsyncRegistry.__init__(self, auth_backend=state["auth"], **options)
        self._docker_configs.paths[:] = state["docker_configs"]
        self._local_credentials = local_credentials

    def __copy__(self) -> AsyncRegistry:
        raise TypeError(
            f"copy.copy of {type(self).__name__} would share its credentials and headers "
            "with the original; use copy.deepcopy for an independent copy"
        )

    def without_credentials(self) -> AsyncRegistry:
        """An independent copy of this object that carries no secret, to send to workers.

        The copy has the same options, headers and Docker config files, but no credential
        set with :meth:`set_basic_auth` (or ``login``), no oras-py ``token``, and not this
        process's ``ORAS_USER``/``ORAS_PASS``: where it is unpickled, it reads credentials
        where they live there (the Docker config files and that process's environment).
        Raises :class:`~aioras.exceptions.RegistryInUse` while a call on this object runs.
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


def _counted(
    method: Callable[Concatenate[AsyncRegistry, P], Awaitable[R]],
) -> Callable[Concatenate[AsyncRegistry, P], Awaitable[R]]:
    @functools.wraps(method)
    async def counted(self: AsyncRegistry, /, *args: P.args, **kwargs: P.kwargs) -> R:
        self._calls += 1
        try:
            return await method(self, *args, **kwargs)
        finally:
            self._calls -= 1

    return counted


# Every public coroutine method counts itself while it runs, so that a pickle or deep copy
# taken mid-call is refused (see __getstate__) rather than copying a half-changed object.
for _name, _method in inspect.getmembers(AsyncRegistry, inspect.iscoroutinefunction):
    if not _name.startswith("_"):
        setattr(AsyncRegistry, _name, _counted(_method))


def _distribution_version(name: str) -> str:
    import importlib.metadata  # 60 ms at import time, for version() alone

    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"
