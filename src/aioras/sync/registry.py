"""``Registry``: the synchronous facade over [`AsyncRegistry`][aioras.registry.AsyncRegistry].

One ``Registry`` owns one ``AsyncRegistry`` and runs it on an event loop of its own, in a
thread of its own, reached through an anyio blocking portal (`aioras.sync._portal`).
Every sync method hands its coroutine to that loop and waits for the result, so the
connection pool and cached tokens live as long as the ``Registry`` and a call works the
same from a plain script, from another thread, or from code already running inside an
event loop (Jupyter, ``asyncio.run``, async tests): the caller's loop is blocked for the
call, never reentered.

The methods are twins of the async ones, one line each (`aioras.sync._twins`), so a
new async method gets its sync twin by adding that line, and a test fails until it is
added. [`Registry.copy_store`][aioras.sync.Registry.copy_store] is
[`aioras.copy`][aioras.operations.copy.copy] run on that loop, the one-line copy of sync code
between stores (``reg.copy_store(reg.repository("host/app"), "v1", aioras.MemoryStore())``; stores
from [`Registry.repository`][aioras.sync.Registry.repository] must come from the same ``Registry``).

Lifecycle: the loop thread starts on the first call that needs it.
[`Registry.close`][aioras.sync.Registry.close] (or leaving ``with Registry(...) as reg:``) closes
the connection pool and stops the thread; a later call starts a fresh loop and pool, so a closed
``Registry`` is reusable. A ``Registry`` that is garbage-collected, or still open when the
interpreter exits, is closed then. Do not call [`Registry.close`][aioras.sync.Registry.close] while
other threads are still in calls on it. A child process forked after the parent used a ``Registry``
starts a loop and pool of its own on its first call (see `aioras.sync._portal`).
"""

from __future__ import annotations

import copy
import functools
import weakref
from collections.abc import Awaitable, Callable
from typing import Any, ParamSpec, TypeVar, cast

import httpx

from .._environment import Environment
from .._signatures import same_parameters_as
from ..auth import Authenticator
from ..auth.login import login as _login
from ..auth.login import logout as _logout
from ..operations.copy import copy as copy_operation
from ..registry import AsyncRegistry
from ._overrides import OverridingEndpoints, overridden_endpoints
from ._portal import LoopThread, sync_response, wait
from ._twins import Forwarded, context_twin, loop_twin, plain_twin, twin

__all__ = ["Registry"]

# Attributes that belong to this process's loop thread: never pickled, rebuilt on arrival.
_LOOP_ATTRIBUTES = frozenset({"_loop", "_finalizer"})

P = ParamSpec("P")
T = TypeVar("T")


class Registry:
    """A synchronous OCI registry client: every [`AsyncRegistry`][aioras.registry.AsyncRegistry]
    method, blocking.

    Takes the same arguments as [`AsyncRegistry`][aioras.registry.AsyncRegistry] and builds one
    (``self.aregistry``, an instance of [`async_class`][aioras.sync.Registry.async_class]). Methods
    return what the async ones return; responses are ``httpx.Response`` objects usable from sync
    code, and errors are the same typed [`aioras.exceptions`][aioras.exceptions].

    Use it directly (close it with [`close`][aioras.sync.Registry.close], or let garbage collection
    or interpreter exit do it) or as a context manager. After [`close`][aioras.sync.Registry.close]
    the object may be used again: a new loop thread and connection pool start on the next call.

    Subclassing works as in oras-py: override a method or add new ones that call these. The
    built-in [`push`][aioras.sync.Registry.push] and [`pull`][aioras.sync.Registry.pull] call the
    overrides of ``upload_blob``, ``upload_manifest``, ``blob_exists``, ``get_manifest``,
    ``download_blob``, ``get_container`` and ``_check_200_response`` (each in a worker thread, so it
    may block and call this object's other methods). Async overrides go in an
    [`AsyncRegistry`][aioras.registry.AsyncRegistry] subclass named as
    [`async_class`][aioras.sync.Registry.async_class].
    """

    async_class: type[AsyncRegistry] = AsyncRegistry
    """The async registry class instantiated by ``__init__``."""

    @same_parameters_as(AsyncRegistry.__init__)
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.aregistry = self.async_class(*args, **kwargs)
        self._start_loop_thread()

    def _start_loop_thread(self) -> None:
        self._loop = LoopThread(self.aregistry)
        self._finalizer = weakref.finalize(self, self._loop.close)

    # -- pickling (multiprocessing, ProcessPoolExecutor, joblib) and deep copies -----------
    def __getstate__(self) -> dict[str, Any]:
        # The async core travels by its configuration (AsyncRegistry.__getstate__); the
        # loop thread stays here, and a subclass's own attributes go along.
        state = {k: v for k, v in self.__dict__.items() if k not in _LOOP_ATTRIBUTES}
        state["aregistry"] = self.aregistry
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._start_loop_thread()

    def __copy__(self) -> Registry:
        raise TypeError(
            f"copy.copy of {type(self).__name__} would share its credentials and headers "
            "with the original; use copy.deepcopy for an independent copy"
        )

    def without_credentials(self) -> Registry:
        """An independent copy of this object that carries no secret, to send to workers.

        As [`AsyncRegistry.without_credentials`][aioras.registry.AsyncRegistry.without_credentials]:
        same options, headers and Docker config files; credentials are read where the copy is
        unpickled. A subclass's own attributes are deep-copied.
        """
        state = self.__getstate__()
        state["aregistry"] = self.aregistry.without_credentials()
        rest = {k: v for k, v in state.items() if k != "aregistry"}
        clone = object.__new__(type(self))
        clone.__setstate__({**copy.deepcopy(rest), "aregistry": state["aregistry"]})
        return clone

    # -- lifecycle ---------------------------------------------------------------------
    def __enter__(self) -> Registry:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection pool and stop the loop thread (it restarts on next use)."""
        self._loop.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(hostname={self.hostname!r}, insecure={self.insecure})"

    def _call(self, func: Callable[P, Awaitable[T]], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Run ``func(*args, **kwargs)`` on the loop thread and wait for its result.

        A response it returns is made readable from sync code (its body, if open, is read
        through the loop thread).
        """
        portal = self._loop.portal()
        result = wait(portal, functools.partial(func, *args, **kwargs))
        if isinstance(result, httpx.Response):
            return cast(T, sync_response(portal, result))
        return result

    def _async_method(
        self, name: str, via: Callable[..., Awaitable[Any]] | None
    ) -> Callable[..., Awaitable[Any]]:
        """The core's method ``name``, or ``via`` (its body) on this object's overrides.

        Without an overridden endpoint method (or without ``via``) the async core runs it as
        it is (an async subclass's overrides included); with one, ``via`` (the body of
        ``push`` or ``pull``) gets endpoints that call the overrides in worker threads (see
        `aioras.sync._overrides`).
        """
        if via is not None:
            names = overridden_endpoints(self, Registry)
            if names:
                return functools.partial(via, OverridingEndpoints(self, names))
        method: Callable[..., Awaitable[Any]] = getattr(self.aregistry, name)
        return method

    # -- attributes of the async registry ----------------------------------------------
    hostname: Forwarded[str | None] = Forwarded(writable=True)
    """The registry used for names that do not name one."""
    insecure: Forwarded[bool] = Forwarded(writable=True)
    """True when the registry speaks plain http (setting it switches
    [`prefix`][aioras.sync.Registry.prefix])."""
    prefix: Forwarded[str] = Forwarded(writable=True)
    """The URL scheme, derived from [`insecure`][aioras.sync.Registry.insecure]: ``http`` or
    ``https``."""
    tls_verify: Forwarded[bool | str] = Forwarded()
    """TLS verification: True, False, or the path of a CA bundle (see
    [`set_tls_verify`][aioras.sync.Registry.set_tls_verify])."""
    headers: Forwarded[dict[str, str]] = Forwarded()
    """Headers sent with every request (the live dict: changes apply to later calls)."""
    auth: Forwarded[Authenticator] = Forwarded()
    """The authentication backend (credentials and token cache)."""
    environment: Forwarded[Environment] = Forwarded()
    """The environment settings the registry was built with."""

    # -- the async core's methods, blocking ------------------------------------------------
    # No I/O: called directly in the caller's thread.
    version = plain_twin(AsyncRegistry.version)
    get_container = plain_twin(AsyncRegistry.get_container)
    _parse_manifest_ref = plain_twin(AsyncRegistry._parse_manifest_ref)
    _check_200_response = plain_twin(AsyncRegistry._check_200_response)
    set_header = plain_twin(AsyncRegistry.set_header)
    set_rate_limits = plain_twin(AsyncRegistry.set_rate_limits)
    set_basic_auth = plain_twin(AsyncRegistry.set_basic_auth)
    load_configs = plain_twin(AsyncRegistry.load_configs)
    # A store whose coroutines run only on this object's loop thread: hand it to copy_store.
    repository = plain_twin(AsyncRegistry.repository)

    # Run on the loop thread; a returned response reads its body through it.
    set_tls_verify = twin(AsyncRegistry.set_tls_verify)
    login = twin(_login)
    logout = twin(_logout)
    do_request = twin(AsyncRegistry.do_request)
    ping = twin(AsyncRegistry.ping)

    blob_exists = twin(AsyncRegistry.blob_exists)
    get_blob = twin(AsyncRegistry.get_blob)
    stream_blob = context_twin(AsyncRegistry.stream_blob)
    download_blob = twin(AsyncRegistry.download_blob)
    upload_blob = twin(AsyncRegistry.upload_blob)
    upload_blob_stream = twin(AsyncRegistry.upload_blob_stream)
    upload_new_blob = twin(AsyncRegistry.upload_new_blob)
    upload_file = twin(AsyncRegistry.upload_file)
    put_upload = twin(AsyncRegistry.put_upload)
    chunked_upload = twin(AsyncRegistry.chunked_upload)
    delete_blob = twin(AsyncRegistry.delete_blob)
    mount_blob = twin(AsyncRegistry.mount_blob)

    upload_manifest = twin(AsyncRegistry.upload_manifest)
    push_manifest_bytes = twin(AsyncRegistry.push_manifest_bytes)
    fetch_manifest = twin(AsyncRegistry.fetch_manifest)
    fetch_manifest_bytes = twin(AsyncRegistry.fetch_manifest_bytes)
    get_manifest = twin(AsyncRegistry.get_manifest)
    resolve = twin(AsyncRegistry.resolve)
    delete_manifest = twin(AsyncRegistry.delete_manifest)

    get_tags = twin(AsyncRegistry.get_tags)
    list_repositories = twin(AsyncRegistry.list_repositories)
    delete_tag = twin(AsyncRegistry.delete_tag)
    delete_tags = twin(AsyncRegistry.delete_tags)
    tag = twin(AsyncRegistry.tag)

    # push and pull call a subclass's endpoint overrides, as oras-py's do.
    push = twin(AsyncRegistry.push, on_overrides=True)
    pull = twin(AsyncRegistry.pull, on_overrides=True)

    get_referrers = twin(AsyncRegistry.get_referrers)
    attach = twin(AsyncRegistry.attach)
    discover = twin(AsyncRegistry.discover)
    delete_artifact = twin(AsyncRegistry.delete_artifact)
    push_index = twin(AsyncRegistry.push_index)
    update_index = twin(AsyncRegistry.update_index)
    copy = twin(AsyncRegistry.copy)
    mirror = twin(AsyncRegistry.mirror)

    # Stores from repository() belong to this object's loop thread: copy between them here.
    copy_store = loop_twin(copy_operation)
