"""Header values aioras sends, checked before they can leak, and scrubbed out of messages.

A value with CR or LF (a token pasted with its newline) is refused by the HTTP library with
an error that quotes the whole header, secret included; so values are checked here first,
with errors that name the header and never show the value. `scrub` removes quoted
values from messages that come from the HTTP libraries.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from ..exceptions import InvalidHeaderValue

__all__ = ["CREDENTIAL_HEADERS", "check_header", "check_headers", "header_number", "scrub"]

CREDENTIAL_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie"})
"""Headers that carry a credential: never sent to another origin than the registry's."""

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# Visible ASCII, space and tab: what a header value can carry without encoding games.
_VALUE = re.compile(r"[\t\x20-\x7e]*")
# A number in a header: ASCII digits only. str.isdigit() also takes "²" and "٣", which int()
# refuses or reads as a number the HTTP grammar does not have; 30 digits keep int() far below
# its digit limit (a longer value is no count any registry means).
_NUMBER = re.compile(r"[0-9]{1,30}")
# Quoted literals in library messages: b'...', bytearray(b"..."), '...' (escapes kept whole).
_QUOTED = re.compile(r"""(?:bytearray\()?b?(?:'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")\)?""")


def check_header(name: str, value: str, *, what: str = "") -> str:
    """Return ``value`` when ``name: value`` can be sent as it is.

    Raises [`InvalidHeaderValue`][aioras.exceptions.InvalidHeaderValue] for a name that is not an
    HTTP token, or a value with a control character (CR, LF, NUL ...) or non-ASCII character.
    ``what`` names the value in the message instead of the header (``"registry token"``).
    The message never contains the value.
    """
    if not isinstance(name, str) or not _TOKEN.fullmatch(name):
        raise InvalidHeaderValue("a header name is not a valid HTTP token", name="")
    if not isinstance(value, str) or not _VALUE.fullmatch(value):
        label = what or f"the value of header {name}"
        raise InvalidHeaderValue(
            f"{label} contains a control character (CR, LF, NUL...) or a non-ASCII "
            "character; refused (the value is not shown)",
            name=name,
        )
    return value


def check_headers(headers: Mapping[str, str]) -> None:
    """`check_header` for every item of ``headers``."""
    for name, value in headers.items():
        check_header(name, value)


def header_number(value: str | None) -> int | None:
    """The non-negative decimal number a header value holds (spaces around allowed), or None.

    Only ASCII digits count (RFC 9110's ``1*DIGIT``): a value with anything else, such as
    superscript or other scripts' digits, a sign or a fraction, is no number and gives None,
    as an absent header does. Never raises.
    """
    if value is None:
        return None
    found = _NUMBER.fullmatch(value.strip(" \t"))
    return int(found.group()) if found else None


def scrub(text: str) -> str:
    """``text`` with every quoted literal replaced by ``'…'``.

    HTTP library errors quote the header line or value they choke on (``Illegal header
    value b'Bearer ...'``); whatever is quoted may be a secret.
    """
    return _QUOTED.sub("'…'", text)
