"""A small semantic-version range matcher for tag selection (no dependency).

Versions: ``MAJOR[.MINOR[.PATCH]][-PRERELEASE][+BUILD]`` with an optional leading ``v``;
missing parts count as 0 (tags such as ``1.2`` or ``v3`` are versions). Ranges, in the
npm-like syntax most mirrors use:

- comparators ``>=1.2.0``, ``>1.2``, ``<=2``, ``<2.0.0``, ``=1.2.3`` or ``1.2.3``;
- ``^1.2.3`` (same major; for ``0.x`` same minor), ``~1.2.3`` (same minor);
- x-ranges ``1.2.x``, ``1.x``, ``*`` (also written ``1.2`` or ``1`` when bare);
- comparators separated by spaces or commas must all hold; ``||`` joins alternatives.

A pre-release tag (``2.0.0-rc.1``) matches only when the range itself names a pre-release.
Nothing longer than a tag (128 characters) is read as a version, so a version's numbers stay
far below the size ``int`` refuses to parse: a longer tag is no version, a longer term of a
range a ValueError.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["SemverRange", "Version", "parse_version"]

_VERSION = re.compile(
    r"v?(?P<major>0|[1-9]\d*)(?:\.(?P<minor>0|[1-9]\d*))?(?:\.(?P<patch>0|[1-9]\d*))?"
    r"(?:-(?P<pre>[0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?",
    re.ASCII,
)
_PART = r"(?:0|[1-9]\d*|[xX*])"
_PATTERN = re.compile(
    rf"v?(?P<major>{_PART})(?:\.(?P<minor>{_PART}))?(?:\.(?P<patch>{_PART}))?"
    r"(?:-(?P<pre>[0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?",
    re.ASCII,
)
# The longest tag the distribution grammar allows; nothing longer is a version.
_MAX_LENGTH = 128
_OPERATORS = (">=", "<=", ">", "<", "=", "^", "~")


@dataclass(frozen=True, order=False)
class Version:
    """A parsed version; compares by semver precedence (build metadata ignored)."""

    major: int
    minor: int
    patch: int
    pre: tuple[int | str, ...] = ()

    def key(self) -> tuple[int, int, int, int, tuple[tuple[int, int | str], ...]]:
        # A release sorts after its pre-releases; numeric identifiers before alphanumeric.
        pre = tuple((0, p) if isinstance(p, int) else (1, p) for p in self.pre)
        return (self.major, self.minor, self.patch, 0 if self.pre else 1, pre)

    def __lt__(self, other: Version) -> bool:
        return self.key() < other.key()

    def __le__(self, other: Version) -> bool:
        return self.key() <= other.key()


def _pre(text: str | None) -> tuple[int | str, ...]:
    if not text:
        return ()
    return tuple(int(p) if p.isdigit() else p for p in text.split("."))


def parse_version(tag: str) -> Version | None:
    """The version a tag spells, or None when it is not one (or longer than a tag)."""
    match = _VERSION.fullmatch(tag) if len(tag) <= _MAX_LENGTH else None
    if match is None:
        return None
    return Version(
        int(match["major"]),
        int(match["minor"] or 0),
        int(match["patch"] or 0),
        _pre(match["pre"]),
    )


_Comparator = tuple[str, Version]


class SemverRange:
    """A parsed range; ``r.matches(tag)`` for a tag. ValueError for a malformed range."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.alternatives: list[list[_Comparator]] = []
        for alternative in text.split("||"):
            terms = [t for t in re.split(r"[\s,]+", alternative.strip()) if t]
            comparators: list[_Comparator] = []
            for term in terms or ["*"]:
                comparators.extend(_comparators(term, text))
            self.alternatives.append(comparators)
        self.allows_pre = any(v.pre for alt in self.alternatives for _, v in alt)

    def __repr__(self) -> str:
        return f"SemverRange({self.text!r})"

    def matches(self, tag: str) -> bool:
        """Whether ``tag`` is a version inside the range."""
        version = parse_version(tag)
        if version is None or (version.pre and not self.allows_pre):
            return False
        return any(
            all(_holds(version, op, bound) for op, bound in alt) for alt in self.alternatives
        )


def _holds(version: Version, op: str, bound: Version) -> bool:
    a, b = version.key(), bound.key()
    return {
        ">=": a >= b,
        "<=": a <= b,
        ">": a > b,
        "<": a < b,
        "=": a == b,
    }[op]


def _comparators(term: str, text: str) -> list[_Comparator]:
    op = next((o for o in _OPERATORS if term.startswith(o)), "")
    match = _PATTERN.fullmatch(term[len(op) :]) if len(term) <= _MAX_LENGTH else None
    if match is None:
        raise ValueError(f"semver range {text!r}: cannot read {term!r}")
    parts = [match["major"], match["minor"], match["patch"]]
    wild = next((i for i, p in enumerate(parts) if p is None or p in "xX*"), 3)
    if any(p is not None and p not in "xX*" for p in parts[wild:]):
        raise ValueError(f"semver range {text!r}: {term!r} has a number after a wildcard")
    nums = [int(p) if i < wild and p is not None else 0 for i, p in enumerate(parts)]
    low = Version(nums[0], nums[1], nums[2], _pre(match["pre"]))
    if op in ("^", "~"):
        return _caret_tilde(op, low, wild)
    if wild == 0:
        return [] if op in ("", "=", ">=", "<=") else [("<", Version(0, 0, 0, (0,)))]
    if wild == 3:
        return [(op or "=", low)]
    high = _bump(low, wild - 1)
    return {
        "": [(">=", low), ("<", high)],
        "=": [(">=", low), ("<", high)],
        ">=": [(">=", low)],
        ">": [(">=", high)],
        "<": [("<", low)],
        "<=": [("<", high)],
    }[op]


def _bump(version: Version, index: int) -> Version:
    """The first release after every version sharing ``version``'s parts up to ``index``."""
    if index == 0:
        return Version(version.major + 1, 0, 0)
    if index == 1:
        return Version(version.major, version.minor + 1, 0)
    return Version(version.major, version.minor, version.patch + 1)


def _caret_tilde(op: str, low: Version, wild: int) -> list[_Comparator]:
    if op == "~":
        return [(">=", low), ("<", _bump(low, 0 if wild == 1 else 1))]
    # ^: the left-most non-zero part among those given is kept.
    given = [low.major, low.minor, low.patch][: max(wild, 1)]
    index = next((i for i, n in enumerate(given) if n != 0), len(given) - 1)
    return [(">=", low), ("<", _bump(low, index))]
