"""Options objects built from a public method's keyword arguments, field by field.

The public methods keep their explicit keyword-only parameters (for readers, type checkers
and the sync twins); their bodies gather those into the operation's frozen options
dataclass with `gather`, so an operation takes one object instead of a forwarded
list. A test checks that each public signature and its dataclass name the same options.
Where two public callables take the same keyword options (``aioras.copy`` and
``AsyncRegistry.copy``), one writes them and the other takes them with
`keyword_options_of`.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import fields
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, TypeVar

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

__all__ = ["gather", "keyword_options_of"]

Options = TypeVar("Options", bound="DataclassInstance")
P = ParamSpec("P")
R = TypeVar("R")
S = TypeVar("S")
A = TypeVar("A")
B = TypeVar("B")

_KEYWORD = inspect.Parameter.KEYWORD_ONLY
_VAR_KEYWORD = inspect.Parameter.VAR_KEYWORD


def keyword_options_of(
    template: Callable[Concatenate[Any, Any, Any, Any, P], object],
) -> Callable[
    [Callable[Concatenate[S, A, B, ...], Awaitable[R]]],
    Callable[Concatenate[S, A, B, P], Coroutine[Any, Any, R]],
]:
    """Give a method ``(self, a, b, **options)`` the keyword-only parameters of ``template``.

    ``template`` is a function of four positional parameters and the keyword options (as
    ``aioras.copy``). Type checkers see the method take those options by name, type and
    default; so do ``inspect.signature`` and ``help()``. A call is bound to that signature
    (an unknown option raises TypeError) and the method receives every option, defaults
    filled in.
    """
    keywords = [p for p in inspect.signature(template).parameters.values() if p.kind is _KEYWORD]

    def decorate(
        method: Callable[Concatenate[S, A, B, ...], Awaitable[R]],
    ) -> Callable[Concatenate[S, A, B, P], Coroutine[Any, Any, R]]:
        own = inspect.signature(method)
        positional = [p for p in own.parameters.values() if p.kind is not _VAR_KEYWORD]
        signature = own.replace(parameters=[*positional, *keywords])

        @functools.wraps(method)
        async def call(*args: Any, **kwargs: Any) -> R:
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            return await method(*bound.args, **bound.kwargs)

        call.__dict__["__signature__"] = signature
        return call

    return decorate


def gather(kind: type[Options], arguments: Mapping[str, Any]) -> Options:
    """A ``kind`` whose every field is the argument of that name in ``arguments``.

    ``arguments`` is a call's ``locals()``; names that are no field (``self``, the target)
    are left out. Raises KeyError for a field the call does not take.
    """
    return kind(**{option.name: arguments[option.name] for option in fields(kind)})
