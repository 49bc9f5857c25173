"""Refusing mirror patterns whose matching time could grow without bound (ReDoS).

Python's ``re`` backtracks, has no timeout and holds the GIL while it matches, so one
pattern such as ``^(v?\\d+\\.?)+$`` against a 31-character tag can stall a mirror (and the
event loop it runs on) for minutes. Matching in a subprocess with a deadline would bound
it, at the cost of a process per listing; instead the shapes that make a backtracking
engine slow are refused when the plan is built, with the names matched kept short: every
listed tag (at most 128 characters) and repository name (at most 255) passes the
distribution grammar before any pattern sees it, so only the characters that grammar
allows (letters, digits, ``_ . - /``) are considered below.

A pattern is refused when it holds:

1. a repetition (``*``, ``+``, ``{m,n}`` with n > 1) of a variable-width body that can end
   with a character it can start with, such as ``(\\d+\\.?)+`` or ``(a|aa)*``: one name
   splits into iterations in exponentially many ways. ``(\\.\\d+)*`` (a separator starts
   each iteration and cannot end one) is accepted;
2. inside such a repetition, an alternation whose branches can start with the same
   character, or more than one of which can match nothing (``(x|xy)*``);
3. a run of more than three variable-width parts that can trade characters, each next to
   the previous one or separated only by what it can absorb (``\\d*\\d*\\d*\\d*``): the
   time grows with the name's length to the power of the run's length.

Possessive repeats and atomic groups do not backtrack and are exempt from 1 and 2.
Anything these rules accept matches a name of the grammar's length in a time bounded by a
small power of that length.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass
from re import _constants as sre  # type: ignore[attr-defined]
from re import _parser as sre_parse  # type: ignore[attr-defined]
from typing import Any

__all__ = ["backtracking_risk"]

# The characters a tag or repository name can hold (see aioras.container).
_ALPHABET = frozenset(string.ascii_letters + string.digits + "_.-/")
_CATEGORIES = {
    "CATEGORY_DIGIT": r"\d",
    "CATEGORY_NOT_DIGIT": r"\D",
    "CATEGORY_WORD": r"\w",
    "CATEGORY_NOT_WORD": r"\W",
    "CATEGORY_SPACE": r"\s",
    "CATEGORY_NOT_SPACE": r"\S",
}
# Longest run of parts trading characters that is accepted (time ~ length ** run).
_MAX_RUN = 3


class _Refused(Exception):
    """A shape of rules 1-3 found; the message says which."""


@dataclass(frozen=True)
class _Info:
    """What a part of a pattern can match: width bounds and its first and last characters."""

    low: int
    high: int | None  # None: unbounded
    first: frozenset[str]
    last: frozenset[str]

    @property
    def nullable(self) -> bool:
        return self.low == 0

    @property
    def variable(self) -> bool:
        return self.high != self.low


_EMPTY = _Info(0, 0, frozenset(), frozenset())


def backtracking_risk(pattern: str) -> str | None:
    """Why ``pattern`` could backtrack without bound (see the module doc), or None.

    ``pattern`` must compile (``re.error`` otherwise).
    """
    parsed = sre_parse.parse(pattern)
    try:
        _sequence(list(parsed), bool(parsed.state.flags & re.IGNORECASE), repeated=False)
    except _Refused as why:
        return str(why)
    return None


def _sequence(items: list[Any], fold: bool, *, repeated: bool) -> _Info:
    infos = [_item(op, av, fold, repeated=repeated) for op, av in items]
    _check_runs(infos)
    low = 0
    high: int | None = 0
    first: set[str] = set()
    for info in infos:
        first |= info.first
        if not info.nullable:
            break
    last: set[str] = set()
    for info in reversed(infos):
        last |= info.last
        if not info.nullable:
            break
    for info in infos:
        low += info.low
        high = None if high is None or info.high is None else high + info.high
    return _Info(low, high, frozenset(first), frozenset(last))


def _check_runs(infos: list[_Info]) -> None:
    """Rule 3: runs of variable parts that can pass characters to one another."""
    run, chars = 0, frozenset[str]()
    for info in infos:
        if info.variable and info.first | info.last:
            traded = info.first & chars
            run = run + 1 if traded else 1
            chars = info.first | info.last if not traded else chars | info.last
            if run > _MAX_RUN:
                raise _Refused(f"more than {_MAX_RUN} repeats in a row can trade characters")
        elif info.high == 0 or (info.first and info.first <= chars):
            continue  # an anchor, or what the run before can absorb: the run goes on
        else:
            run, chars = 0, frozenset()


def _item(op: Any, av: Any, fold: bool, *, repeated: bool) -> _Info:
    if op in (sre.LITERAL, sre.NOT_LITERAL, sre.ANY, sre.IN):
        chars = frozenset(c for c in _ALPHABET if _matches(op, av, c, fold))
        return _Info(1, 1, chars, chars)
    if op is sre.SUBPATTERN:
        _group, add, remove, sub = av
        fold = bool((fold or add & re.IGNORECASE) and not remove & re.IGNORECASE)
        return _sequence(list(sub), fold, repeated=repeated)
    if op is sre.ATOMIC_GROUP:
        return _sequence(list(av), fold, repeated=False)
    if op is sre.BRANCH:
        return _branch([list(b) for b in av[1]], fold, repeated=repeated)
    if op is sre.GROUPREF_EXISTS:
        _group, yes, no = av
        return _branch([list(yes), list(no) if no else []], fold, repeated=repeated)
    if op in (sre.MAX_REPEAT, sre.MIN_REPEAT, sre.POSSESSIVE_REPEAT):
        return _repeat(op, av, fold, repeated=repeated)
    if op in (sre.ASSERT, sre.ASSERT_NOT):
        _sequence(list(av[1]), fold, repeated=False)  # its own shapes count; it is 0 wide
        return _EMPTY
    if op is sre.GROUPREF:
        # A backreference can be any of the group's strings: unknown width and characters.
        return _Info(0, None, _ALPHABET, _ALPHABET)
    return _EMPTY  # anchors (AT) and the like: zero width


def _branch(branches: list[list[Any]], fold: bool, *, repeated: bool) -> _Info:
    infos = [_sequence(b, fold, repeated=repeated) for b in branches]
    if repeated:
        seen: set[str] = set()
        for info in infos:
            if info.first & seen:
                raise _Refused("alternatives inside a repeat can start with the same character")
            seen |= info.first
        if sum(info.nullable for info in infos) > 1:
            raise _Refused("alternatives inside a repeat can both match nothing")
    highs = [i.high for i in infos]
    return _Info(
        min(i.low for i in infos),
        None if None in highs else max(h for h in highs if h is not None),
        frozenset().union(*(i.first for i in infos)),
        frozenset().union(*(i.last for i in infos)),
    )


def _repeat(op: Any, av: Any, fold: bool, *, repeated: bool) -> _Info:
    low, high, sub = av
    many = high > 1  # MAXREPEAT (unbounded) included
    backtracks = op is not sre.POSSESSIVE_REPEAT
    body = _sequence(list(sub), fold, repeated=(repeated or many) and backtracks)
    if many and backtracks and body.variable and body.first & body.last:
        raise _Refused(
            "a repeat holds a part of varying length that can end with what it starts with"
        )
    top = None if high == sre.MAXREPEAT or body.high is None else high * body.high
    return _Info(low * body.low, top, body.first, body.last)


def _matches(op: Any, av: Any, char: str, fold: bool) -> bool:
    if fold:
        return any(_matches(op, av, c, False) for c in {char, char.lower(), char.upper()})
    if op is sre.LITERAL:
        return char == chr(av)
    if op is sre.NOT_LITERAL:
        return char != chr(av)
    if op is sre.ANY:
        return True  # the alphabet has no newline
    if op is sre.RANGE:
        return bool(av[0] <= ord(char) <= av[1])
    if op is sre.CATEGORY:
        category = _CATEGORIES.get(str(av))
        return category is None or re.fullmatch(category, char) is not None
    if op is sre.IN:
        negated = bool(av) and av[0][0] is sre.NEGATE
        hit = any(_matches(o, a, char, False) for o, a in av if o is not sre.NEGATE)
        return hit != negated
    return True  # an item this table does not know: assume it matches (refuse more)
