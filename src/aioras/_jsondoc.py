"""Parsing JSON that comes from outside (registries, token services, files) safely.

`load_json` is the one JSON loader of the library. Python's parser recurses once per
nesting level, so a document nested a few thousand levels deep raises ``RecursionError``,
an error no caller expects. Here the nesting is measured first, without recursion, and a
document deeper than the limit is refused with a ``ValueError`` like any malformed JSON,
which each caller turns into the typed error of its context.
"""

from __future__ import annotations

import json
import re
from typing import Any

from . import defaults

__all__ = ["load_json"]

# A JSON string (escapes included), in the unrolled form that does not backtrack.
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_BRACKET = re.compile(r"[\[\]{}]")


def load_json(data: bytes | bytearray | str, *, max_depth: int = defaults.max_json_depth) -> Any:
    """Parse ``data`` (text, or bytes in a JSON encoding) nested at most ``max_depth`` deep.

    Raises ``ValueError`` when it is not JSON, not decodable, or nested deeper than
    ``max_depth`` arrays and objects.
    """
    if isinstance(data, (bytes, bytearray)):
        text = bytes(data).decode(json.detect_encoding(data))
    else:
        text = data
    _check_depth(text, max_depth)
    return json.loads(text)


def _check_depth(text: str, max_depth: int) -> None:
    if text.count("[") + text.count("{") <= max_depth:
        return  # not enough brackets to nest that deep: the common case, no scan
    depth = 0
    # Brackets inside strings do not nest: drop the strings, then count.
    for match in _BRACKET.finditer(_STRING.sub('""', text)):
        if match.group() in "[{":
            depth += 1
            if depth > max_depth:
                raise ValueError(f"JSON nested deeper than {max_depth} levels")
        else:
            depth -= 1
