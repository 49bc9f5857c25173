"""What HTTP says about retrying: the ``Retry-After`` header, read as seconds to wait.

The retry engine itself (`Retrying`, [`RetryPolicy`][aioras.RetryPolicy])
sits at the package root, below every layer that retries: the transport, downloads and
uploads, output directories, login's lock and copy.
"""

from __future__ import annotations

import email.utils
import time

from .headers import header_number

__all__ = ["parse_retry_after"]


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    seconds = header_number(value)
    if seconds is not None:
        return float(seconds)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())
