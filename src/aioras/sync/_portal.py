"""The event-loop thread a sync ``Registry`` runs its ``AsyncRegistry`` on, reached by a portal.

Each ``Registry`` has one :class:`LoopThread`: an asyncio loop in a daemon thread of its own,
serving an anyio blocking portal, started by the first call that needs it. :func:`wait`
runs a coroutine there and blocks the calling thread (any thread, including one already
running an event loop: that loop is blocked for the call, never reentered);
:func:`sync_response` makes an async response readable from sync code through the portal.

Lifecycle: :meth:`LoopThread.close` closes the connection pool and stops the thread; a
later call starts a fresh loop and pool. The ``Registry`` closes it from a finalizer, so a
garbage-collected ``Registry``, or one still open at interpreter exit, is closed then.

Fork: a child process forked after the parent used a ``Registry`` inherits no loop thread
(``fork`` copies only the calling thread). An ``os.register_at_fork`` hook makes each
loop thread in the child forget the parent's loop and connection pool without touching
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
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from concurrent.futures import Future
from typing import TypeVar

import anyio
import httpx
from anyio.from_thread import BlockingPortal

from ..auth.authenticator import TokenAuth
from ..remote.registry import AsyncRegistry

__all__ = ["LoopThread", "sync_response", "wait"]

logger = logging.getLogger(__name__)

T = TypeVar("T")


class LoopThread:
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
    aregistry._downloading = {}
    aregistry._docker_configs._locks = {}
    # The registry's backend and the transport's own for other origins (anonymous tokens).
    for auth in (aregistry.auth, transport._anonymous):
        if isinstance(auth, TokenAuth):
            auth._locks = {}


# Every loop thread of this process, and what a forked child inherited and must not close.
_loops: weakref.WeakSet[LoopThread] = weakref.WeakSet()
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


def wait(portal: BlockingPortal, call: Callable[[], Awaitable[T]]) -> T:
    future = portal.start_task_soon(call)
    try:
        return future.result()
    except BaseException:
        # Interrupted while waiting (Ctrl-C): cancel the task so that it cleans up.
        if not future.done():
            future.cancel()
        raise


def sync_response(portal: BlockingPortal, response: httpx.Response) -> httpx.Response:
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
