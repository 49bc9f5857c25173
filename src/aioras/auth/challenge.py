"""Parsing of ``WWW-Authenticate`` headers (RFC 9110 section 11.6.1).

One header may hold several challenges (``Basic realm="x", Bearer realm="y",scope="z"``);
parameter values may be quoted strings with escapes or bare tokens. Registries in the wild
also send unquoted URLs as values, which the parser accepts.
"""

from __future__ import annotations

import string
from dataclasses import dataclass, field

__all__ = ["Challenge", "parse_www_authenticate"]

_TOKEN_CHARS = frozenset("!#$%&'*+-.^_`|~" + string.digits + string.ascii_letters)


@dataclass(frozen=True)
class Challenge:
    """One authentication challenge: its scheme (lower-cased) and parameters.

    Parameter names are lower-cased; values are kept as sent.
    """

    scheme: str
    params: dict[str, str] = field(default_factory=dict)

    @property
    def realm(self) -> str | None:
        """The ``realm`` parameter, if any."""
        return self.params.get("realm")

    @property
    def service(self) -> str | None:
        """The ``service`` parameter (bearer token service name), if any."""
        return self.params.get("service")

    @property
    def scopes(self) -> tuple[str, ...]:
        """The space-separated ``scope`` parameter, split."""
        return tuple(self.params.get("scope", "").split())

    @property
    def error(self) -> str | None:
        """The ``error`` parameter (``insufficient_scope``, ``invalid_token`` ...), if any."""
        return self.params.get("error")


class _Scanner:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def skip(self, chars: str = " \t") -> None:
        while self.pos < len(self.text) and self.text[self.pos] in chars:
            self.pos += 1

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def token(self) -> str:
        start = self.pos
        while self.pos < len(self.text) and self.text[self.pos] in _TOKEN_CHARS:
            self.pos += 1
        return self.text[start : self.pos]

    def quoted(self) -> str:
        self.pos += 1  # opening quote
        out: list[str] = []
        while self.pos < len(self.text):
            ch = self.text[self.pos]
            self.pos += 1
            if ch == "\\" and self.pos < len(self.text):
                out.append(self.text[self.pos])
                self.pos += 1
            elif ch == '"':
                break
            else:
                out.append(ch)
        return "".join(out)

    def bare_value(self) -> str:
        # Lenient: an unquoted value runs to the next comma (URLs contain ':' and '/').
        start = self.pos
        while self.pos < len(self.text) and self.text[self.pos] not in ", \t":
            self.pos += 1
        return self.text[start : self.pos]


def parse_www_authenticate(header: str) -> list[Challenge]:
    """Parse a ``WWW-Authenticate`` value into its challenges, in order.

    Unparseable fragments are skipped rather than raised: a registry's odd header must not
    turn an authentication problem into a parsing crash.
    """
    s = _Scanner(header or "")
    challenges: list[Challenge] = []
    current: Challenge | None = None
    while True:
        s.skip(" \t,")
        if not s.peek():
            break
        name = s.token()
        if not name:
            s.pos += 1  # stray character
            continue
        s.skip()
        if s.peek() == "=" and current is not None:
            s.pos += 1
            s.skip()
            value = s.quoted() if s.peek() == '"' else s.bare_value()
            current.params[name.lower()] = value
            continue
        if s.peek() == "=":
            # A parameter with no scheme before it (or token68 padding): nothing to attach to.
            s.pos += 1
            continue
        current = Challenge(scheme=name.lower())
        challenges.append(current)
    return challenges
