"""``Registry``: the synchronous facade over :class:`~aioras.registry.AsyncRegistry`.

One ``Registry`` owns one ``AsyncRegistry`` and runs it on an event loop of its own, in a
thread of its own, reached through an anyio blocking portal. Every sync method hands its
coroutine to that loop and waits for the result, so the connection pool and cached tokens
live as long as the ``Registry`` and a call works the same from a plain script, from another
thread, or from code already running inside an event loop (Jupyter, ``asyncio.run``,
async tests): the caller's loop is blocked for the call, never reentered.

Lifecycle: the loop thread starts on the first call that needs it. :meth:`Registry.close`
(or leaving ``with Registry(...) as reg:``) closes the connection pool and stops the thread;
a later call starts a fresh loop and pool, so a closed ``Registry`` is reusable. A
``Registry`` that is garbage-collected, or still open when the interpreter exits, is closed
then. Do not call :meth:`Registry.close` while other threads are still in calls on it.

Fork: a child process forked after the parent used a ``Registry`` inherits no loop thread
(``fork`` copies only the calling thread). An ``os.register_at_fork`` hook makes each
``Registry`` in the child forget the parent's loop and connection pool without touching
them (the sockets are still the parent's), so the child's first call starts its own and
the child exits normally. Responses still open at fork time can be read only by the parent.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import threading
import weakref
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
)
from concurrent.futures import Future
from contextlib import contextmanager
from types import TracebackType
from typing import Any, ParamSpec, TypeVar

import anyio
import httpx
from anyio.from_thread import BlockingPortal

from . import defaults
from ._http.ratelimit import RateLimits
from ._http.retry import DEFAULT_RETRY, RetryPolicy
from ._http.transport import DEFAULT_TIMEOUT
from .auth import Authenticator
from .auth.authenticator import TokenAuth
from .auth.login import login as _login
from .auth.login import logout as _logout
from .container import Container
from .content.store import ReadOnlyStore, Target
from .decorator import ensure_container
from .descriptor import Descriptor
from .environment import Environment
from .operations.copy import copy as copy_operation
from .operations.discover import ReferrerNode
from .operations.index import ManifestLike
from .operations.mirror import MirrorProgress
from .operations.mirror_plan import MirrorPlan
from .operations.mirror_report import MirrorReport
from .operations.pull import pull as pull_operation
from .operations.push import AnnotationSource, PushFiles, SubjectLike
from .operations.push import push as push_operation
from .progress import ProgressCallback
from .registry import AsyncRegistry, ContainerLike
from .remote.repository import Repository
from .syncoverrides import OverridingEndpoints, overridden_endpoints
from .uploads import StreamOpener

__all__ = ["Registry"]

logger = logging.getLogger(__name__)

P = ParamSpec("P")
T = TypeVar("T")


class _LoopThread:
    """The event-loop thread of one ``Registry``: started on demand, stopped by :meth:`close`.

    Holds no reference to the ``Registry`` itself, so a finalizer can own it.
    """

    def __init__(self, aregistry: AsyncRegistry) -> None:
        self._aregistry = aregistry
        self._lock = threading.RLock()
        self._portal: BlockingPortal | None = None
        self._thread: threading.Thread | None = None
        _loops.add(self)

    def portal(self) -> BlockingPortal:
        """The running portal, starting the loop thread first if needed."""
        with self._lock:
            if self._portal is None:
                self._portal, self._thread = _start_loop()
            return self._portal

    def close(self) -> None:
        """Close the connection pool and stop the loop thread; a no-op when not running."""
        with self._lock:
            portal, thread = self._portal, self._thread
            self._portal = self._thread = None
        if portal is None or thread is None:
            return
        if threading.current_thread() is thread:
            # Reached from the loop thread itself (a finalizer run by garbage collection
            # there): that thread cannot wait for its own loop to stop, so a helper does.
            threading.Thread(target=self._shutdown, args=(portal, thread), daemon=True).start()
            return
        self._shutdown(portal, thread)

    def _shutdown(self, portal: BlockingPortal, thread: threading.Thread) -> None:
        try:
            portal.call(self._aregistry.aclose)
        except Exception as error:  # closing must not fail loudly at exit or in GC
            logger.debug("closing the connection pool failed: %r", error)
        finally:
            with contextlib.suppress(RuntimeError):  # the loop already ended
                portal.call(portal.stop)
            thread.join()

    def after_fork_in_child(self) -> None:
        """Forget the parent's loop thread, which does not exist in a forked child.

        Nothing of it is closed or called: its loop is gone, and its connections are
        shared with the parent, which still uses them. The next call starts a new loop
        and pool here.
        """
        # Another thread of the parent may have held the lock at fork time.
        self._lock = threading.RLock()
        portal, self._portal, self._thread = self._portal, None, None
        if portal is not None:
            _left_by_parent.append(portal)
            _forget_loop_state(self._aregistry)


def _start_loop() -> tuple[BlockingPortal, threading.Thread]:
    """Run an asyncio loop serving a blocking portal in a new daemon thread.

    The thread is a daemon so that interpreter exit never waits for it (an open
    ``Registry`` is closed by its finalizer at exit), and is owned here rather than by a
    context manager so that a forked child can drop it without any cleanup code reaching
    for a loop that did not survive the fork.
    """
    started: Future[BlockingPortal] = Future()

    async def serve() -> None:
        try:
            async with BlockingPortal() as portal:
                started.set_result(portal)
                await portal.sleep_until_stopped()
        except BaseException as error:
            if started.done():
                raise
            started.set_exception(error)

    # anyio.run itself is the target, so that an idle loop thread runs no aioras frame.
    run = functools.partial(anyio.run, serve, backend="asyncio")
    thread = threading.Thread(target=run, name="aioras-portal", daemon=True)
    thread.start()
    while True:
        try:
            return started.result(timeout=0.1), thread
        except TimeoutError:
            if not thread.is_alive() and not started.done():
                # The loop could not even start (anyio.run failed before serve()).
                raise RuntimeError("the Registry event loop failed to start") from None


def _forget_loop_state(aregistry: AsyncRegistry) -> None:
    """Drop the state a forked child inherits from its parent's loop and cannot use.

    That is the connection pool (its sockets are the parent's) and the async primitives
    that calls running in the parent at fork time may hold: those calls do not exist in
    the child, so what they hold would never be released. Cached tokens and credentials
    stay. The dropped pool is kept referenced and never closed, so that no finalizer
    touches a socket the parent still uses.
    """
    transport = aregistry._transport
    if transport._client is not None:
        _left_by_parent.append(transport._client)
        transport._client = None
    aregistry._transfers = None
    aregistry._uploading = {}
    aregistry._docker_configs._locks = {}
    # The registry's backend and the transport's own for other origins (anonymous tokens).
    for auth in (aregistry.auth, transport._anonymous):
        if isinstance(auth, TokenAuth):
            auth._locks = {}


# Every loop thread of this process, and what a forked child inherited and must not close.
_loops: weakref.WeakSet[_LoopThread] = weakref.WeakSet()
_left_by_parent: list[object] = []


def _after_fork_in_child() -> None:
    for loop in list(_loops):
        loop.after_fork_in_child()


os.register_at_fork(after_in_child=_after_fork_in_child)


class _PortalByteStream(httpx.SyncByteStream):
    """The body of an open async response, read chunk by chunk through the portal.

    Iterating yields the raw (still content-encoded) bytes, which the wrapping sync
    ``httpx.Response`` decodes; :meth:`close` closes the async response on its loop.
    """

    def __init__(self, portal: BlockingPortal, response: httpx.Response) -> None:
        self._portal = portal
        self._response = response
        self._chunks: AsyncIterator[bytes] | None = None
        self._pid = os.getpid()

    def __iter__(self) -> Iterator[bytes]:
        if os.getpid() != self._pid:
            # Opened before fork(): the loop that serves it is in the parent only.
            raise httpx.StreamClosed()
        self._chunks = self._response.aiter_raw()
        while True:
            chunk = self._portal.call(_next_chunk, self._chunks)
            if chunk is None:
                return
            yield chunk

    def close(self) -> None:
        if os.getpid() != self._pid:
            return  # the parent owns the connection and closes it
        # A stopped portal (Registry.close()) took the pool and its connections with it.
        with contextlib.suppress(RuntimeError):
            self._portal.call(self._aclose)

    async def _aclose(self) -> None:
        closer = getattr(self._chunks, "aclose", None)
        if closer is not None:
            await closer()
        await self._response.aclose()


async def _next_chunk(chunks: AsyncIterator[bytes]) -> bytes | None:
    try:
        return await chunks.__anext__()
    except StopAsyncIteration:
        return None


def _wait(portal: BlockingPortal, call: Callable[[], Awaitable[T]]) -> T:
    future = portal.start_task_soon(call)
    try:
        return future.result()
    except BaseException:
        # Interrupted while waiting (Ctrl-C): cancel the task so that it cleans up.
        if not future.done():
            future.cancel()
        raise


def _sync_response(portal: BlockingPortal, response: httpx.Response) -> httpx.Response:
    """Make a response from the async core usable by sync code (``iter_bytes``, ``close``).

    Anything else (what a sync override returned) is passed through as it is.
    """
    if not isinstance(response, httpx.Response):
        # Typed as a response, but an oras-py style override may return an object of its own.
        return response  # type: ignore[unreachable]
    if not response.is_closed:
        return httpx.Response(
            response.status_code,
            headers=response.headers,
            stream=_PortalByteStream(portal, response),
            request=response.request,
            extensions=response.extensions,
            history=response.history,
        )
    if not isinstance(response.stream, httpx.SyncByteStream):
        # Already read and closed: give it a sync-closable body so response.close() is a
        # no-op, as it is for any finished sync response.
        try:
            body = response.content
        except httpx.ResponseNotRead:
            body = b""
        response.stream = httpx.ByteStream(body)
    return response


class Registry:
    """A synchronous OCI registry client: every :class:`AsyncRegistry` method, blocking.

    Takes the same arguments as :class:`~aioras.registry.AsyncRegistry` and builds one
    (``self.aregistry``, an instance of :attr:`async_class`). Methods return what the async
    ones return; responses are ``httpx.Response`` objects usable from sync code, and errors
    are the same typed :mod:`aioras.exceptions`.

    Use it directly (close it with :meth:`close`, or let garbage collection or interpreter
    exit do it) or as a context manager. After :meth:`close` the object may be used again:
    a new loop thread and connection pool start on the next call.

    Subclassing works as in oras-py: override a method or add new ones that call these. The
    built-in :meth:`push` and :meth:`pull` call the overrides of ``upload_blob``,
    ``upload_manifest``, ``blob_exists``, ``get_manifest``, ``download_blob``,
    ``get_container`` and ``_check_200_response`` (each in a worker thread, so it may block
    and call this object's other methods). Async overrides go in an :class:`AsyncRegistry`
    subclass named as :attr:`async_class`.
    """

    async_class: type[AsyncRegistry] = AsyncRegistry
    """The async registry class instantiated by ``__init__``."""

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
        self.aregistry = self.async_class(
            hostname,
            insecure,
            tls_verify,
            auth_backend,
            push_concurrency=push_concurrency,
            pull_concurrency=pull_concurrency,
            max_transfers=max_transfers,
            download_ranges=download_ranges,
            range_threshold=range_threshold,
            chunk_size=chunk_size,
            timeout=timeout,
            retry=retry,
            headers=headers,
            proxy=proxy,
            environment=environment,
            transport=transport,
            rate_limits=rate_limits,
        )
        self._loop = _LoopThread(self.aregistry)
        self._finalizer = weakref.finalize(self, self._loop.close)

    # -- lifecycle ---------------------------------------------------------------------
    def __enter__(self) -> Registry:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection pool and stop the loop thread (it restarts on next use)."""
        self._loop.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(hostname={self.hostname!r}, insecure={self.insecure})"

    def _call(self, func: Callable[P, Awaitable[T]], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Run ``func(*args, **kwargs)`` on the loop thread and wait for its result."""
        return _wait(self._loop.portal(), functools.partial(func, *args, **kwargs))

    def _call_response(
        self, func: Callable[P, Awaitable[httpx.Response]], /, *args: P.args, **kwargs: P.kwargs
    ) -> httpx.Response:
        """Like :meth:`_call`, for a response: its body, if open, is read through that loop."""
        portal = self._loop.portal()
        response = _wait(portal, functools.partial(func, *args, **kwargs))
        return _sync_response(portal, response)

    # -- attributes of the async registry ----------------------------------------------
    @property
    def hostname(self) -> str | None:
        """The registry used for names that do not name one."""
        return self.aregistry.hostname

    @hostname.setter
    def hostname(self, value: str | None) -> None:
        self.aregistry.hostname = value

    @property
    def insecure(self) -> bool:
        """True when the registry speaks plain http (setting it switches :attr:`prefix`)."""
        return self.aregistry.insecure

    @insecure.setter
    def insecure(self, value: bool) -> None:
        self.aregistry.insecure = value

    @property
    def prefix(self) -> str:
        """The URL scheme, derived from :attr:`insecure`: ``http`` or ``https``."""
        return self.aregistry.prefix

    @prefix.setter
    def prefix(self, value: str) -> None:
        self.aregistry.prefix = value

    @property
    def tls_verify(self) -> bool | str:
        """TLS verification: True, False, or the path of a CA bundle."""
        return self.aregistry.tls_verify

    @property
    def headers(self) -> dict[str, str]:
        """Headers sent with every request (the live dict: changes apply to later calls)."""
        return self.aregistry.headers

    @property
    def auth(self) -> Authenticator:
        """The authentication backend (credentials and token cache)."""
        return self.aregistry.auth

    @property
    def environment(self) -> Environment:
        """The environment settings the registry was built with."""
        return self.aregistry.environment

    # -- plain helpers (no I/O) ----------------------------------------------------------
    def version(self, return_items: bool = False) -> dict[str, str] | str:
        """The client's version, with Python's and the platform's when ``return_items``."""
        return self.aregistry.version(return_items)

    def get_container(self, name: ContainerLike) -> Container:
        """Parse ``name`` into a :class:`Container`, defaulting to this object's hostname."""
        return self.aregistry.get_container(name)

    def _parse_manifest_ref(self, ref: str) -> tuple[str, str]:
        """Split ``path[:mediaType]`` of a manifest config; oras-py's unknown type by default."""
        return self.aregistry._parse_manifest_ref(ref)

    def set_header(self, name: str, value: str) -> None:
        """Send ``name: value`` with every later request."""
        self.aregistry.set_header(name, value)

    def set_rate_limits(self, limits: RateLimits) -> None:
        """Pace requests per host by ``limits`` from now on (request counts are kept)."""
        self.aregistry.set_rate_limits(limits)

    def set_tls_verify(self, tls_verify: bool | str) -> None:
        """Verify TLS certificates this way (True, False, or a CA bundle path) from now on."""
        self._call(self.aregistry.set_tls_verify, tls_verify)

    def set_basic_auth(self, username: str, password: str) -> None:
        """Use these basic credentials (directly, or to obtain bearer tokens)."""
        self.aregistry.set_basic_auth(username, password)

    def load_configs(
        self, container: ContainerLike | None = None, configs: list[str] | None = None
    ) -> None:
        """Read credentials from these Docker ``config.json`` files too, before the default."""
        self.aregistry.load_configs(container, configs)

    def _check_200_response(self, response: httpx.Response) -> None:
        """Raise the typed error for ``response`` unless its status is 200, 201 or 202."""
        self.aregistry._check_200_response(response)

    # -- login ---------------------------------------------------------------------------
    def login(
        self,
        username: str,
        password: str,
        password_stdin: bool = False,
        tls_verify: bool | str = True,
        hostname: str | None = None,
        config_path: str | None = None,
        *,
        insecure: bool | None = None,
    ) -> dict[str, str]:
        """Check credentials against the registry, then keep and save them.

        See :func:`aioras.auth.login.login`. Returns ``{"Status": "Login Succeeded"}``.
        """
        return self._call(
            _login,
            self.aregistry,
            username,
            password,
            password_stdin=password_stdin,
            tls_verify=tls_verify,
            hostname=hostname,
            config_path=config_path,
            insecure=insecure,
        )

    def logout(self, hostname: str, *, config_path: str | None = None) -> bool:
        """Forget the credentials of ``hostname`` and remove them from the Docker config.

        See :func:`aioras.auth.login.logout`; True when the config held an entry.
        """
        return self._call(_logout, self.aregistry, hostname, config_path=config_path)

    # -- generic request -----------------------------------------------------------------
    def do_request(
        self,
        url: str,
        method: str = "GET",
        data: dict[str, Any] | bytes | None = None,
        headers: dict[str, str] | None = None,
        json: dict[str, Any] | None = None,
        stream: bool = False,
    ) -> httpx.Response:
        """Send a request with authentication, redirects and retries; return the response.

        Does not raise for an error status. With ``stream=True`` iterate the body with
        ``iter_bytes()`` and close the response.
        """
        return self._call_response(
            self.aregistry.do_request, url, method, data, headers, json, stream
        )

    def ping(self, hostname: str | None = None) -> httpx.Response:
        """``GET /v2/``: check the registry speaks the distribution API (authenticating)."""
        return self._call_response(self.aregistry.ping, hostname)

    # -- blobs ---------------------------------------------------------------------------
    @ensure_container
    def blob_exists(self, layer: Mapping[str, Any], container: ContainerLike) -> bool:
        """True when the repository holds the blob of ``layer`` (a descriptor dict)."""
        return self._call(self.aregistry.blob_exists, layer, container)

    @ensure_container
    def get_blob(
        self,
        container: ContainerLike,
        digest: str,
        stream: bool = False,
        head: bool = False,
    ) -> httpx.Response:
        """Fetch a blob (or only its headers with ``head=True``).

        Without ``stream`` the body is read whole and checked against ``digest``. With
        ``stream=True`` it is left unread and unchecked: iterate ``iter_bytes()`` and
        ``close()`` the response, or use :meth:`stream_blob` or :meth:`download_blob`.
        """
        return self._call_response(self.aregistry.get_blob, container, digest, stream, head)

    @contextmanager
    def stream_blob(self, container: ContainerLike, digest: str) -> Iterator[httpx.Response]:
        """Open a blob for streaming: ``with reg.stream_blob(c, d) as r:``; closed on exit.

        Bytes are not verified here: hash them as they arrive or use :meth:`download_blob`.
        """
        response = self.get_blob(container, digest, stream=True)
        try:
            yield response
        finally:
            response.close()

    @ensure_container
    def download_blob(
        self,
        container: ContainerLike,
        digest: str,
        outfile: str | os.PathLike[str],
        *,
        size: int | None = None,
    ) -> str:
        """Stream a blob into ``outfile``, verified; return the path written."""
        return self._call(self.aregistry.download_blob, container, digest, outfile, size=size)

    @ensure_container
    def upload_blob(
        self,
        blob: str | os.PathLike[str] | None,
        container: ContainerLike,
        layer: Mapping[str, Any],
        do_chunked: bool = False,
        chunk_size: int | None = None,
        *,
        skip_existing: bool = True,
    ) -> httpx.Response:
        """Upload the file ``blob`` as the blob that ``layer`` describes (skipped if present)."""
        return self._call_response(
            self.aregistry.upload_blob,
            blob,
            container,
            layer,
            do_chunked,
            chunk_size,
            skip_existing=skip_existing,
        )

    @ensure_container
    def put_upload(
        self, blob: str | os.PathLike[str], container: ContainerLike, layer: Mapping[str, Any]
    ) -> httpx.Response:
        """Monolithic upload: open a session (POST), then stream the whole file in one PUT."""
        return self._call_response(self.aregistry.put_upload, blob, container, layer)

    @ensure_container
    def chunked_upload(
        self,
        blob: str | os.PathLike[str],
        container: ContainerLike,
        layer: Mapping[str, Any],
        chunk_size: int = defaults.default_chunksize,
    ) -> httpx.Response:
        """Chunked upload: POST, one PATCH per ``chunk_size`` bytes, then a closing PUT."""
        return self._call_response(
            self.aregistry.chunked_upload, blob, container, layer, chunk_size
        )

    @ensure_container
    def delete_blob(self, container: ContainerLike, digest: str) -> None:
        """Delete a blob. Raises UnsupportedOperation when deletes are disabled."""
        self._call(self.aregistry.delete_blob, container, digest)

    @ensure_container
    def mount_blob(self, container: ContainerLike, digest: str, from_repository: str) -> bool:
        """Ask the registry to mount a blob from another repository; True when it did."""
        return self._call(self.aregistry.mount_blob, container, digest, from_repository)

    # -- manifests -----------------------------------------------------------------------
    @ensure_container
    def upload_manifest(
        self,
        manifest: Mapping[str, Any],
        container: ContainerLike,
        *,
        reference: str | None = None,
        media_type: str | None = None,
    ) -> httpx.Response:
        """Validate and PUT a manifest under the container's tag (or ``reference``)."""
        return self._call_response(
            self.aregistry.upload_manifest,
            manifest,
            container,
            reference=reference,
            media_type=media_type,
        )

    @ensure_container
    def fetch_manifest(
        self,
        container: ContainerLike,
        allowed_media_type: Sequence[str] | None = None,
        *,
        max_size: int = defaults.max_manifest_size,
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Fetch and verify a manifest; return ``(manifest, descriptor)``."""
        return self._call(
            self.aregistry.fetch_manifest, container, allowed_media_type, max_size=max_size
        )

    @ensure_container
    def get_manifest(
        self,
        container: ContainerLike,
        allowed_media_type: Sequence[str] | None = None,
        validation_schema: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Fetch, verify and return a manifest (or index) as a dict."""
        return self._call(
            self.aregistry.get_manifest, container, allowed_media_type, validation_schema
        )

    @ensure_container
    def resolve(
        self,
        container: ContainerLike,
        allowed_media_type: Sequence[str] | None = None,
        *,
        platform: str | None = None,
    ) -> dict[str, Any]:
        """Return the descriptor (mediaType, digest, size) a tag or digest points at.

        With ``platform``, an index resolves to its entry for that platform; see
        :meth:`aioras.AsyncRegistry.resolve`.
        """
        return self._call(self.aregistry.resolve, container, allowed_media_type, platform=platform)

    @ensure_container
    def delete_manifest(self, container: ContainerLike, digest: str | None = None) -> None:
        """Delete the manifest ``digest`` (default: the container's digest)."""
        self._call(self.aregistry.delete_manifest, container, digest)

    # -- tags ----------------------------------------------------------------------------
    @ensure_container
    def get_tags(
        self,
        container: ContainerLike,
        N: int | None = None,
        *,
        page_size: int | None = None,
        max_pages: int = 10_000,
    ) -> list[str]:
        """List the repository's tags, following pagination; at most ``N``.

        ``page_size`` asks for pages of that many tags; more than ``max_pages`` pages is
        refused as broken pagination.
        """
        return self._call(
            self.aregistry.get_tags, container, N, page_size=page_size, max_pages=max_pages
        )

    @ensure_container
    def delete_tag(self, container: ContainerLike, tag: str) -> bool:
        """Delete ``tag``; True when deleted, False when there was no such tag.

        The tag alone where the registry can (OCI 1.1), else the manifest it points at,
        warning which other tags went with it; see :meth:`AsyncRegistry.delete_tag`.
        """
        return self._call(self.aregistry.delete_tag, container, tag)

    @ensure_container
    def delete_tags(self, name: ContainerLike, tags: str | Iterable[str]) -> list[str]:
        """Delete each of ``tags``; return those that were deleted."""
        return self._call(self.aregistry.delete_tags, name, tags)

    # -- high-level operations -----------------------------------------------------------
    @ensure_container
    def push(
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
        return self._call_response(
            self._operation("push", push_operation),
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

    push.__doc__ = AsyncRegistry.push.__doc__

    @ensure_container
    def pull(
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
        return self._call(
            self._operation("pull", pull_operation),
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

    pull.__doc__ = AsyncRegistry.pull.__doc__

    # -- catalog, referrers and indexes ------------------------------------------------
    def list_repositories(
        self,
        hostname: str | None = None,
        N: int | None = None,
        *,
        page_size: int | None = None,
        max_pages: int = 10_000,
    ) -> list[str]:
        """List the repositories of a registry (its catalog); at most ``N``.

        See :meth:`aioras.AsyncRegistry.list_repositories`.
        """
        return self._call(
            self.aregistry.list_repositories,
            hostname,
            N,
            page_size=page_size,
            max_pages=max_pages,
        )

    def get_referrers(
        self, reference: ContainerLike, *, artifact_type: str | None = None
    ) -> list[dict[str, Any]]:
        """The descriptors of the manifests referring to ``reference``.

        See :meth:`aioras.AsyncRegistry.get_referrers`.
        """
        return self._call(self.aregistry.get_referrers, reference, artifact_type=artifact_type)

    def attach(
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

        See :func:`aioras.operations.attach.attach`. ``progress`` runs on the loop thread.
        """
        return self._call(
            self.aregistry.attach,
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

    def discover(
        self,
        reference: ContainerLike,
        *,
        depth: int | None = None,
        artifact_type: str | None = None,
    ) -> ReferrerNode:
        """The referrers tree of ``reference``; see :func:`aioras.operations.discover.discover`."""
        return self._call(
            self.aregistry.discover, reference, depth=depth, artifact_type=artifact_type
        )

    def delete_artifact(self, reference: ContainerLike) -> dict[str, Any]:
        """Delete a manifest, taking a referrer out of its subject's fallback index too."""
        return self._call(self.aregistry.delete_artifact, reference)

    def push_index(
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
        return self._call(
            self.aregistry.push_index,
            target,
            list(manifests),
            annotations=annotations,
            artifact_type=artifact_type,
        )

    def update_index(
        self,
        target: ContainerLike,
        *,
        add: Iterable[ManifestLike] = (),
        remove: Iterable[str] = (),
    ) -> dict[str, Any]:
        """Add, replace or remove entries of an index; return the new index's descriptor.

        See :func:`aioras.operations.index.update_index`.
        """
        return self._call(self.aregistry.update_index, target, add=list(add), remove=list(remove))

    # -- stores, raw manifests and copy ----------------------------------------------------
    def repository(self, name: ContainerLike) -> Repository:
        """One repository as an async content store, living on this object's loop thread.

        Hand it to :meth:`copy_store` (its coroutines run only on that loop).
        """
        return self.aregistry.repository(name)

    @ensure_container
    def upload_new_blob(
        self,
        blob: str | os.PathLike[str],
        container: ContainerLike,
        *,
        chunk_size: int | None = None,
    ) -> dict[str, Any]:
        return self._call(self.aregistry.upload_new_blob, blob, container, chunk_size=chunk_size)

    upload_new_blob.__doc__ = AsyncRegistry.upload_new_blob.__doc__

    @ensure_container
    def upload_blob_stream(
        self,
        source: StreamOpener,
        container: ContainerLike,
        layer: Mapping[str, Any],
        *,
        skip_existing: bool = True,
    ) -> httpx.Response:
        """Upload a blob from an async stream opener (run on the loop thread)."""
        return self._call_response(
            self.aregistry.upload_blob_stream,
            source,
            container,
            layer,
            skip_existing=skip_existing,
        )

    @ensure_container
    def fetch_manifest_bytes(
        self,
        container: ContainerLike,
        allowed_media_type: Sequence[str] | None = None,
        *,
        max_size: int = defaults.max_manifest_size,
    ) -> tuple[bytes, dict[str, Any]]:
        """Fetch a manifest's exact bytes; return ``(data, descriptor)``."""
        return self._call(
            self.aregistry.fetch_manifest_bytes, container, allowed_media_type, max_size=max_size
        )

    def push_manifest_bytes(
        self,
        data: bytes,
        container: ContainerLike,
        *,
        media_type: str,
        reference: str | None = None,
    ) -> httpx.Response:
        """PUT a manifest as exactly these bytes, with ``media_type`` as its Content-Type."""
        return self._call_response(
            self.aregistry.push_manifest_bytes,
            data,
            self.get_container(container),
            media_type=media_type,
            reference=reference,
        )

    @ensure_container
    def tag(self, reference: ContainerLike, *new_tags: str) -> dict[str, Any]:
        """Give the manifest ``reference`` names these tags too; return its descriptor."""
        return self._call(self.aregistry.tag, reference, *new_tags)

    def copy(
        self,
        source_reference: ContainerLike,
        destination_reference: ContainerLike,
        *,
        referrers: bool = False,
        depth: int | None = None,
        artifact_type: str | None = None,
        platform: str | None = None,
        concurrency: int = defaults.default_copy_concurrency,
        progress: ProgressCallback | None = None,
    ) -> dict[str, Any]:
        """Copy an artifact between repositories (hosts may differ); return the root descriptor.

        See :meth:`aioras.AsyncRegistry.copy`. ``progress`` runs on the loop thread.
        """
        return self._call(
            self.aregistry.copy,
            source_reference,
            destination_reference,
            referrers=referrers,
            depth=depth,
            artifact_type=artifact_type,
            platform=platform,
            concurrency=concurrency,
            progress=progress,
        )

    def copy_store(
        self,
        src: ReadOnlyStore,
        src_ref: str,
        dst: Target,
        dst_ref: str | None = None,
        *,
        referrers: bool = False,
        depth: int | None = None,
        artifact_type: str | None = None,
        platform: str | None = None,
        concurrency: int = defaults.default_copy_concurrency,
        progress: ProgressCallback | None = None,
    ) -> Descriptor:
        """Run :func:`aioras.copy` between two stores on this object's loop thread.

        The one-line copy of sync code between a registry and a layout or memory store:
        ``reg.copy_store(reg.repository("host/app"), "v1", aioras.MemoryStore())``. Stores
        from :meth:`repository` must come from this object. Options and errors as
        :func:`aioras.copy`.
        """
        return self._call(
            copy_operation,
            src,
            src_ref,
            dst,
            dst_ref,
            referrers=referrers,
            depth=depth,
            artifact_type=artifact_type,
            platform=platform,
            concurrency=concurrency,
            progress=progress,
        )

    def mirror(
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
        """Mirror many artifacts; see :meth:`aioras.AsyncRegistry.mirror`.

        ``progress`` runs on the loop thread.
        """
        return self._call(
            self.aregistry.mirror,
            plan,
            concurrency=concurrency,
            dry_run=dry_run,
            keep_going=keep_going,
            state=state,
            progress=progress,
            rate_limits=rate_limits,
        )

    def _operation(
        self, name: str, operation: Callable[..., Awaitable[T]]
    ) -> Callable[..., Awaitable[T]]:
        """The core's ``push``/``pull``, or the operation on this object's overrides.

        Without an overridden endpoint method the async core runs the operation as it is
        (an async subclass's overrides included); with one, the operation gets endpoints that
        call the overrides in worker threads (see :mod:`aioras.syncoverrides`).
        """
        names = overridden_endpoints(self, Registry)
        if not names:
            method: Callable[..., Awaitable[T]] = getattr(self.aregistry, name)
            return method
        return functools.partial(operation, OverridingEndpoints(self, names))
