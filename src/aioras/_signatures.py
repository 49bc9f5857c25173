"""One parameter list serving two callables: a method that forwards takes its target's.

A method that hands its arguments on unchanged (``Session.send`` to ``Transport.send``,
the sync ``Registry.__init__`` to ``AsyncRegistry.__init__``) is written
``(self, *args, **kwargs)`` and decorated with `same_parameters_as`, so the list of
parameters is written once, where it is used.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, Concatenate, ParamSpec, TypeVar

__all__ = ["same_parameters_as"]

P = ParamSpec("P")
R = TypeVar("R")
S = TypeVar("S")


def same_parameters_as(
    method: Callable[Concatenate[Any, P], R],
) -> Callable[[Callable[Concatenate[S, ...], R]], Callable[Concatenate[S, P], R]]:
    """Give a method ``(self, *args, **kwargs)`` the parameters of ``method`` after its ``self``.

    For the type checker (callers see ``method``'s parameters, checked) and for
    ``inspect.signature`` and ``help()`` (through ``__wrapped__``); the decorated function
    is otherwise unchanged, and its own docstring stays.
    """

    def decorate(function: Callable[Concatenate[S, ...], R]) -> Callable[Concatenate[S, P], R]:
        functools.update_wrapper(function, method, assigned=(), updated=())
        return function

    return decorate
