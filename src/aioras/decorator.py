"""Method decorators kept from oras-py: ``ensure_container`` and ``retry``, sync and async alike."""

from __future__ import annotations

import functools
import inspect
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, ParamSpec, TypeVar, cast

from ._retry import Backoff, Retrying
from .container import Container
from .exceptions import ServerError, TooManyRequests, TransportError

__all__ = ["RETRYABLE_ERRORS", "ensure_container", "retry"]

logger = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")

# Parameter names that hold a reference when no parameter is called ``container``; the user
# guide's ``download_layers(self, download_dir, package, media_type)`` relies on ``package``.
_REFERENCE_NAMES = ("target", "package", "reference", "ref", "uri", "name")


def _target_parameter(func: Callable[..., Any]) -> tuple[str | None, int]:
    """Return the name and positional index (``self`` is 0) of the parameter to convert."""
    try:
        params = list(inspect.signature(func).parameters.values())
    except (TypeError, ValueError):
        return None, 1
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    names = [p.name for p in params]
    for wanted in ("container", *_REFERENCE_NAMES):
        if wanted in names[1:]:
            index = names.index(wanted)
            return wanted, index if params[index].kind in positional else -1
    if len(params) > 1 and params[1].kind in positional:
        return params[1].name, 1
    return None, 1


def _to_container(owner: Any, value: Any) -> Any:
    if not isinstance(value, str):
        return value
    getter = getattr(owner, "get_container", None)
    return getter(value) if callable(getter) else Container(value)


def _convert(
    name: str | None, index: int, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[tuple[Any, ...], dict[str, Any], str | int | None]:
    """Convert the reference argument; also return where it sits (key, index or None)."""
    owner = args[0] if args else None
    key = name if name is not None and name in kwargs else "container"
    if key in kwargs:
        kwargs[key] = _to_container(owner, kwargs[key])
        return args, kwargs, key
    if 0 < index < len(args):
        args = (*args[:index], _to_container(owner, args[index]), *args[index + 1 :])
        return args, kwargs, index
    return args, kwargs, None


def ensure_container(func: Callable[P, R]) -> Callable[P, R]:
    """Turn a method's reference argument from ``str`` into a [`Container`][aioras.Container].

    The argument converted is the parameter named ``container``, else the first one named
    ``target``, ``package``, ``reference``, ``ref``, ``uri`` or ``name``, else the first
    parameter after ``self``; by position or by keyword. Conversion uses
    ``self.get_container(value)`` when the object has it (so the registry's default host
    applies), else ``Container(value)``; values that are not strings pass unchanged. Works on
    plain and ``async`` methods (an async method may have an async ``get_container``).
    Raises [`InvalidReference`][aioras.exceptions.InvalidReference] for a malformed reference.
    """
    name, index = _target_parameter(func)

    if inspect.iscoroutinefunction(func):

        @functools.wraps(func)
        async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
            args, kwargs, slot = _convert(name, index, args, kwargs)
            # An async get_container returns a coroutine: settle it before the call.
            if isinstance(slot, str) and inspect.isawaitable(kwargs[slot]):
                kwargs[slot] = await kwargs[slot]
            elif isinstance(slot, int) and inspect.isawaitable(args[slot]):
                args = (*args[:slot], await args[slot], *args[slot + 1 :])
            return await func(*args, **kwargs)

        return cast(Callable[P, R], async_wrapper)

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        new_args, new_kwargs, _ = _convert(name, index, args, kwargs)
        return func(*new_args, **new_kwargs)

    return wrapper


RETRYABLE_ERRORS: tuple[type[Exception], ...] = (TransportError, ServerError, TooManyRequests)


def _retrying(attempts: int, timeout: float, max_delay: float) -> Retrying:
    # oras-py's schedule: no jitter, and a 429's Retry-After may only lengthen a pause,
    # since a registry that says when to come back knows better than the schedule.
    schedule = Backoff(
        first=timeout, cap=max_delay, jitter=0.0, max_retry_after=max_delay, retry_after_floor=True
    )
    return Retrying(attempts - 1, on=RETRYABLE_ERRORS, backoff=schedule, level=logging.INFO)


def retry(
    attempts: int = 5, timeout: float = 2, *, max_delay: float = 60.0
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Retry a sync or async callable on transport errors, 5xx and 429 answers.

    ``attempts`` is the total number of calls. Waits ``timeout`` seconds after the first
    failure, doubling each time, never more than ``max_delay`` (a 429's ``Retry-After`` is
    honoured up to that cap). Async callables sleep with ``anyio.sleep``. Other exceptions
    propagate at once; the last retryable one propagates when attempts run out. Raises
    ``ValueError`` when ``attempts`` is below 1.
    """
    if attempts < 1:
        raise ValueError(f"attempts must be at least 1, not {attempts}")

    def decorator(func: Callable[P, R]) -> Callable[P, R]:
        if inspect.iscoroutinefunction(func):
            async_func = cast(Callable[..., Awaitable[Any]], func)

            @functools.wraps(func)
            async def async_inner(*args: Any, **kwargs: Any) -> Any:
                retrying = _retrying(attempts, timeout, max_delay)
                return await retrying.call(functools.partial(async_func, *args, **kwargs))

            return cast(Callable[P, R], async_inner)

        @functools.wraps(func)
        def inner(*args: P.args, **kwargs: P.kwargs) -> R:
            retrying = _retrying(attempts, timeout, max_delay)
            return retrying.call_blocking(lambda: func(*args, **kwargs), sleep=time.sleep)

        return inner

    return decorator
