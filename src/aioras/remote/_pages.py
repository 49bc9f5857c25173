"""Link pagination, followed one way for every listing (tags, catalog, referrers).

A listing answers one page at a time with a ``Link: <next>; rel="next"`` header. The next
page is resolved against the current one and refused when it leaves the registry's origin,
comes back to a page already read, or the pages run past a bound, each a
[`RegistryError`][aioras.exceptions.RegistryError]: a registry (or what answers for it) cannot lead
a client elsewhere with its credentials, or round in circles.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import httpx

from .. import exceptions as exc
from .._http.urls import redact, resolve_location, same_origin

__all__ = ["follow_pages", "next_link", "pagination_error"]


def next_link(response: httpx.Response) -> str | None:
    """The ``rel="next"`` target of the response's ``Link`` headers, as written (unresolved)."""
    for value in response.headers.get_list("link"):
        for part in value.split(","):
            target, _, params = part.partition(";")
            if "rel=next" in params.replace(" ", "").replace('"', ""):
                return target.strip().strip("<>")
    return None


def pagination_error(what: str, why: str, url: str) -> exc.RegistryError:
    """The error refusing ``what``'s pagination ``why``, at ``url`` (redacted)."""
    return exc.RegistryError(
        f"{what}: pagination {why}", status_code=200, method="GET", url=redact(url)
    )


async def follow_pages(
    url: str,
    read_page: Callable[[str], Awaitable[httpx.Response | None]],
    *,
    what: str,
    max_pages: int,
) -> None:
    """Call ``read_page`` on ``url`` and on each next page, until one has no next.

    ``read_page`` fetches and takes in one page, and returns its response, or None to stop
    there (it has what it wanted). Raises [`RegistryError`][aioras.exceptions.RegistryError] for a
    next page off the origin or already read, and past ``max_pages`` pages.
    """
    seen: set[str] = set()
    for _ in range(max_pages):
        seen.add(url)
        response = await read_page(url)
        target = None if response is None else next_link(response)
        if target is None:
            return
        following = resolve_location(url, target)
        if not same_origin(following, url) or following in seen:
            raise pagination_error(
                what, f"points to {redact(following)}, off the registry or back to a seen page", url
            )
        url = following
    raise pagination_error(what, f"exceeds {max_pages} pages", url)
