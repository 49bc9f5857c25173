"""Options objects built from a public method's keyword arguments, field by field.

The public methods keep their explicit keyword-only parameters (for readers, type checkers
and the sync twins); their bodies gather those into the operation's frozen options
dataclass with `gather`, so an operation takes one object instead of a forwarded
list. A test checks that each public signature and its dataclass name the same options.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

__all__ = ["gather"]

Options = TypeVar("Options", bound="DataclassInstance")


def gather(kind: type[Options], arguments: Mapping[str, Any]) -> Options:
    """A ``kind`` whose every field is the argument of that name in ``arguments``.

    ``arguments`` is a call's ``locals()``; names that are no field (``self``, the target)
    are left out. Raises KeyError for a field the call does not take.
    """
    return kind(**{option.name: arguments[option.name] for option in fields(kind)})
