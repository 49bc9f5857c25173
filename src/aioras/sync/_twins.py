"""Sync twins of [`AsyncRegistry`][aioras.registry.AsyncRegistry] methods, one declarative line
each.

In the body of the sync ``Registry``, ``push = twin(AsyncRegistry.push)`` makes a blocking
method with the async one's parameters, docstring and name (``__wrapped__`` points at it,
so ``inspect.signature`` shows its parameters), typed ``Callable[P, R]`` for the caller:
``mypy`` sees the real parameters and a plain, not awaitable, result. Four kinds:

- `twin`: a coroutine method. The call runs on the facade's loop thread and blocks
  until it is done; a response it returns is made readable from sync code.
- `context_twin`: an async context manager method, as a sync context manager whose
  ``__enter__`` and ``__exit__`` run on the loop thread.
- `plain_twin`: a method of the core that does no I/O, called directly.
- `loop_twin`: a coroutine function that takes no registry, run on the loop thread.

Twins of coroutines and context managers turn a string reference (a parameter annotated
``ContainerLike``) into a [`Container`][aioras.Container] with the facade's own
``get_container`` first, as oras-py's ``ensure_container`` does, so a subclass's
``get_container`` applies. The method called is looked up by name on the facade's
``aregistry``, so an [`async_class`][aioras.sync.Registry.async_class] override applies; a
module-level coroutine function taking the registry first (``login``) is called with it.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import types
from collections.abc import Awaitable, Callable, Iterator
from contextlib import AbstractAsyncContextManager, AbstractContextManager
from typing import Any, Concatenate, Generic, ParamSpec, Protocol, Self, TypeVar, cast, overload

import httpx

from ..container import Container
from ..registry import AsyncRegistry
from ._portal import LoopThread, sync_response

__all__ = [
    "Forwarded",
    "Twin",
    "context_twin",
    "loop_twin",
    "plain_twin",
    "twin",
]

P = ParamSpec("P")
R = TypeVar("R")
S = TypeVar("S")
T = TypeVar("T")

AsyncCallable = Callable[..., Awaitable[Any]]


class Facade(Protocol):
    """What a twin needs of the object it is bound to (the sync ``Registry``)."""

    aregistry: AsyncRegistry
    _loop: LoopThread

    def get_container(self, name: str | Container) -> Container: ...

    def _call(self, func: Callable[..., Awaitable[R]], /, *args: Any, **kwargs: Any) -> R: ...

    def _async_method(self, name: str, via: AsyncCallable | None) -> AsyncCallable: ...


class Twin(Generic[P, R]):
    """A method of the sync facade made from an async one; see the module docstring.

    A non-data descriptor, so a subclass may override it with a plain method and an
    instance by assignment. Read on the class, it is a plain function taking ``self``.
    """

    def __init__(self, function: Callable[..., Any]) -> None:
        self._function = function

    def __set_name__(self, owner: type[Any], name: str) -> None:
        self._function.__name__ = name
        self._function.__qualname__ = f"{owner.__qualname__}.{name}"
        self._function.__module__ = owner.__module__

    @overload
    def __get__(
        self, obj: None, owner: type[Any] | None = None
    ) -> Callable[Concatenate[Any, P], R]: ...

    @overload
    def __get__(self, obj: object, owner: type[Any] | None = None) -> Callable[P, R]: ...

    def __get__(self, obj: object, owner: type[Any] | None = None) -> Callable[..., R]:
        if obj is None:
            return self._function
        return types.MethodType(self._function, obj)


def twin(
    method: Callable[Concatenate[AsyncRegistry, P], Awaitable[R]],
    *,
    on_overrides: bool = False,
) -> Twin[P, R]:
    """The blocking twin of the coroutine ``method`` (run on the facade's loop thread).

    ``on_overrides`` (``push``, ``pull``: methods whose body only calls endpoint methods of
    ``self``): when the facade overrides endpoint methods, ``method``'s own body runs on
    endpoints that call those overrides (see `aioras.sync._overrides`) instead of on
    the core. Raises TypeError at class creation for a method that is not a coroutine
    function.
    """
    if not inspect.iscoroutinefunction(method):
        raise TypeError(f"{method.__qualname__} is not a coroutine function: use another twin")
    # Unwrapped: the core's call counter belongs to the core, not to the endpoints.
    resolve = _resolver(method, inspect.unwrap(method) if on_overrides else None)
    convert = _reference_converter(method)

    @functools.wraps(method)
    def call(facade: Facade, /, *args: Any, **kwargs: Any) -> Any:
        args, kwargs = convert(facade, args, kwargs)
        return facade._call(resolve(facade), *args, **kwargs)

    return Twin(call)


def loop_twin(function: Callable[P, Awaitable[R]]) -> Twin[P, R]:
    """The blocking twin of a coroutine function that takes no registry (``aioras.copy``).

    It runs on the facade's loop thread, where the stores of the facade's ``repository()``
    live; its parameters follow ``self``.
    """

    @functools.wraps(function)
    def call(facade: Facade, /, *args: Any, **kwargs: Any) -> Any:
        return facade._call(function, *args, **kwargs)

    signature = inspect.signature(function)
    self = inspect.Parameter("self", inspect.Parameter.POSITIONAL_ONLY)
    call.__dict__["__signature__"] = signature.replace(
        parameters=[self, *signature.parameters.values()]
    )
    return Twin(call)


def context_twin(
    method: Callable[Concatenate[AsyncRegistry, P], AbstractAsyncContextManager[R]],
) -> Twin[P, AbstractContextManager[R]]:
    """The sync context manager twin of the async context manager ``method``.

    Entered and exited on the facade's loop thread; a response it yields is readable from
    sync code and closed on exit.
    """
    resolve = _resolver(method, None)
    convert = _reference_converter(method)

    @functools.wraps(method)
    @contextlib.contextmanager
    def call(facade: Facade, /, *args: Any, **kwargs: Any) -> Iterator[Any]:
        args, kwargs = convert(facade, args, kwargs)
        portal = facade._loop.portal()
        with portal.wrap_async_context_manager(resolve(facade)(*args, **kwargs)) as value:
            if not isinstance(value, httpx.Response):
                yield value
                return
            response = sync_response(portal, value)
            try:
                yield response
            finally:
                response.close()

    return Twin(call)


def plain_twin(method: Callable[Concatenate[AsyncRegistry, P], R]) -> Twin[P, R]:
    """The twin of a core method that does no I/O: called directly, in the caller's thread."""
    name = method.__name__

    @functools.wraps(method)
    def call(facade: Facade, /, *args: Any, **kwargs: Any) -> Any:
        return getattr(facade.aregistry, name)(*args, **kwargs)

    return Twin(call)


def _resolver(method: Callable[..., Any], via: AsyncCallable | None) -> Callable[[Facade], Any]:
    """How a call finds what to run: the core's method by name, or ``method`` on the core."""
    name = method.__name__
    if getattr(AsyncRegistry, name, None) is method:
        return lambda facade: facade._async_method(name, via)
    return lambda facade: functools.partial(method, facade.aregistry)


Arguments = tuple[tuple[Any, ...], dict[str, Any]]
Converter = Callable[[Facade, tuple[Any, ...], dict[str, Any]], Arguments]


def _reference_converter(method: Callable[..., Any]) -> Converter:
    """A function turning ``method``'s string references into containers (see module doc)."""
    params = list(inspect.signature(method).parameters.values())[1:]  # past the registry
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    slots = [
        (index if p.kind in positional else -1, p.name)
        for index, p in enumerate(params)
        if _is_reference(p.annotation)
    ]

    def convert(facade: Facade, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Arguments:
        for index, name in slots:
            if 0 <= index < len(args) and isinstance(args[index], str):
                args = (*args[:index], facade.get_container(args[index]), *args[index + 1 :])
            elif isinstance(kwargs.get(name), str):
                kwargs[name] = facade.get_container(kwargs[name])
        return args, kwargs

    return convert


def _is_reference(annotation: object) -> bool:
    """True for ``ContainerLike`` (optional or not), as a string or as the union itself."""
    if isinstance(annotation, str):
        return "ContainerLike" in annotation
    return Container in getattr(annotation, "__args__", ())


class Forwarded(Generic[T]):
    """The attribute of the same name of the facade's ``aregistry``, read through.

    Set through too when ``writable``; otherwise setting it raises AttributeError, as for a
    read-only property.
    """

    def __init__(self, *, writable: bool = False) -> None:
        self._writable = writable
        self._name = ""

    def __set_name__(self, owner: type[Any], name: str) -> None:
        self._name = name

    @overload
    def __get__(self, obj: None, owner: type[Any] | None = None) -> Self: ...

    @overload
    def __get__(self, obj: object, owner: type[Any] | None = None) -> T: ...

    def __get__(self, obj: object, owner: type[Any] | None = None) -> Self | T:
        if obj is None:
            return self
        value: T = getattr(cast(Facade, obj).aregistry, self._name)
        return value

    def __set__(self, obj: object, value: T) -> None:
        if not self._writable:
            raise AttributeError(f"{type(obj).__name__}.{self._name} cannot be set")
        setattr(cast(Facade, obj).aregistry, self._name, value)
