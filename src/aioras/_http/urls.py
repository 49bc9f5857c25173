"""URL helpers for registry traffic: resolving ``Location``, merging queries, redaction."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

__all__ = ["Origin", "merge_query", "origin", "redact", "resolve_location", "same_origin"]

_DEFAULT_PORTS = {"http": 80, "https": 443}

Origin = tuple[str, str, int]
"""``(scheme, host, port)``: what credentials are scoped to."""


def resolve_location(base_url: str, location: str) -> str:
    """Resolve a ``Location`` header against the URL of the request that returned it.

    Relative and absolute forms are both legal; the query (the CNCF registry keeps upload
    state in ``_state``) is kept exactly as sent.
    """
    return urljoin(base_url, location)


def merge_query(url: str, params: dict[str, str]) -> str:
    """Return ``url`` with ``params`` added to its query, replacing keys already there."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in params]
    query.extend(params.items())
    return urlunsplit(parts._replace(query=urlencode(query)))


def origin(url: str) -> Origin:
    """Return ``(scheme, host, port)``, the port made explicit."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    return scheme, (parts.hostname or "").lower(), parts.port or _DEFAULT_PORTS.get(scheme, 0)


def same_origin(a: str, b: str) -> bool:
    """True when both URLs share scheme, host and port."""
    return origin(a) == origin(b)


def redact(url: str) -> str:
    """Drop user info and query from a URL, for log lines and error messages.

    Queries can hold presigned-storage signatures; user info can hold passwords.
    """
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))
