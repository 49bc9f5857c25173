"""Names that are safe to write under: checks shared by archives, layouts and pulls.

Pure string checks, no file system access and no transport.
"""

from __future__ import annotations

import os
import re

from ..exceptions import UnsafePathError

__all__ = ["CONTROL_RE", "DRIVE_RE", "safe_title"]

# A Windows drive prefix (``C:``, ``C:\\``, ``C:/``): an absolute path on that platform.
DRIVE_RE = re.compile(r"^[A-Za-z]:(?:[\\/]|$)")
# C0 controls, DEL and C1 controls: a newline or escape in a file name forges log lines and
# terminal output; NUL cuts the name short.
CONTROL_RE = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def safe_title(title: str) -> str:
    """Return ``title`` if it is safe as a relative output path (a layer's title annotation).

    Refused with [`UnsafePathError`][aioras.exceptions.UnsafePathError]: empty titles, control
    characters (NUL, newline, escape, DEL and the C1 range), absolute paths (``/x``, ``\\x``,
    ``C:\\x``) and any ``..`` component, with ``/`` or ``\\`` as separator.
    """
    if not isinstance(title, str) or not title:
        raise UnsafePathError("empty title", path=str(title))
    if CONTROL_RE.search(title):
        raise UnsafePathError(f"title {title!r} contains a control character", path=title)
    if title.startswith(("/", "\\")) or DRIVE_RE.match(title) or os.path.isabs(title):
        raise UnsafePathError(f"title {title!r} is an absolute path", path=title)
    if ".." in re.split(r"[\\/]", title):
        raise UnsafePathError(f"title {title!r} contains a '..' component", path=title)
    return title
