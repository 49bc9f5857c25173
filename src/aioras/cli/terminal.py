"""The one gate between what a registry says and the user's terminal.

Tag and repository names, artifact types, error messages, warnings and titles come from
registries and manifests that may be hostile: an ESC, CSI or OSC sequence among them could
retitle the window, erase lines, move the cursor or fake output, and a bidi override could
reorder what the user reads. Every text the command writes goes through `safe`, which
shows each such character as a visible escape (``\\x1b``, ``\\u202e``) instead of sending
it; the writers here (`write_out`, `write_err`, `SafeFormatter`) apply it
so that no print path of the command line can skip it. JSON documents need no gate: they
are written with every non-ASCII and control character escaped.
"""

from __future__ import annotations

import logging
import sys
from typing import TextIO

__all__ = ["SafeFormatter", "safe", "write_err", "write_out"]

# Short forms for the escapes people know; every other character is shown by its code point.
_NAMED = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}


def _escape(char: str) -> str:
    named = _NAMED.get(char)
    if named is not None:
        return named
    code = ord(char)
    if code <= 0xFF:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def safe(text: str, *, newlines: bool = False) -> str:
    """``text`` with every character a terminal would act on shown as a visible escape.

    Escaped: C0 controls (ESC, BEL, CR, tab, ...), DEL, C1 controls (CSI ``\\x9b``, OSC
    ``\\x9d`` ...), format characters (bidi overrides and isolates, zero-width ones),
    line and paragraph separators, surrogates, private-use and unassigned code points, and
    spaces other than the plain one: what `str.isprintable` refuses. ``newlines``
    keeps ``\\n`` as a line break (for text the command itself split into lines); a
    registry's own strings are passed without it, so that one name cannot pose as two lines.
    The result is printable, so applying `safe` again changes nothing.
    """
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() or (newlines and c == "\n") else _escape(c) for c in text)


def _write(stream: TextIO, text: str) -> None:
    stream.write(safe(text, newlines=True))
    stream.flush()


def write_out(text: str) -> None:
    """Write ``text`` (lines joined by ``\\n``) to stdout, through `safe`."""
    _write(sys.stdout, text)


def write_err(text: str) -> None:
    """Write ``text`` (lines joined by ``\\n``) to stderr, through `safe`."""
    _write(sys.stderr, text)


class SafeFormatter(logging.Formatter):
    """A log formatter whose lines (messages, tracebacks) have passed through `safe`.

    Log lines quote what registries sent (``Warning`` headers, error bodies, tag names).
    """

    def format(self, record: logging.LogRecord) -> str:
        return safe(super().format(record), newlines=True)
