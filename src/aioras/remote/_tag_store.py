"""``TagStore``: the tag and catalog requests of one registry client, on a `Session`.

Tag and repository listings, their pagination checked as it is followed, and the DELETE
of a tag alone. What to do when a registry refuses that (delete the manifest, naming the
tags it took along) is the client's ``delete_tag``, built on its overridable methods.
"""

from __future__ import annotations

import httpx

from .. import exceptions as exc
from .._http.responses import raise_for_status
from .._http.urls import redact
from .._jsondoc import load_json
from ..container import Container, parse_registry
from ._pages import follow_pages, next_link, pagination_error
from ._session import Session

__all__ = ["MAX_PAGES", "TagStore"]

MAX_PAGES = 10_000
# Tag-list pages in a row that bring no new tag before pagination is declared broken.
_MAX_IDLE_PAGES = 3
# Answers to DELETE by tag from a registry that cannot delete a tag alone: the OCI spec
# allows 400 and 405 (the CNCF registry sends 400 DIGEST_INVALID, or 405 UNSUPPORTED
# with deletes disabled); 404 may also mean that the route is unknown.
_TAG_DELETE_REFUSED = (400, 404, 405)


class TagStore:
    """The tags and catalog of one registry client; see the module docstring."""

    def __init__(self, session: Session) -> None:
        self.session = session

    async def tags(
        self,
        container: Container,
        N: int | None,
        *,
        page_size: int | None,
        max_pages: int,
        max_names: int,
    ) -> list[str]:
        """The repository's tags, at most ``N``, asking for pages of ``page_size``."""
        if N is not None and N <= 0:
            return []
        n = page_size if page_size is not None else N
        url = self.session.url(container.tags_url(n))
        what = f"tag list of {container.api_prefix}"
        return await self._list_pages(
            url, "tags", "tag", what, N, max_pages=max_pages, max_names=max_names
        )

    async def catalog(
        self, host: str, N: int | None, *, page_size: int | None, max_pages: int, max_names: int
    ) -> list[str]:
        """The repositories of ``host``, at most ``N``, asking for pages of ``page_size``."""
        if N is not None and N <= 0:
            return []
        n = page_size if page_size is not None else N
        query = f"?n={int(n)}" if n is not None else ""
        url = self.session.url(f"{parse_registry(host)}/v2/_catalog{query}")
        return await self._list_pages(
            url,
            "repositories",
            "repository",
            f"catalog of {host}",
            N,
            max_pages=max_pages,
            max_names=max_names,
        )

    async def delete_alone(self, container: Container) -> bool:
        """DELETE the container's tag alone: True when deleted, False when the registry cannot."""
        response = await self.session.send("DELETE", self.session.url(container.manifest_url()))
        if response.status_code in _TAG_DELETE_REFUSED:
            return False
        await raise_for_status(response, (202, 200, 204), what=f"delete tag {container.tag}")
        return True

    async def _list_pages(
        self,
        url: str,
        key: str,
        noun: str,
        what: str,
        N: int | None,
        *,
        max_pages: int,
        max_names: int,
    ) -> list[str]:
        """The names under ``key`` (each a ``noun``) of a paginated listing, at most ``N``."""
        names: list[str] = []
        known: set[str] = set()
        idle = 0

        async def read_page(page_url: str) -> httpx.Response | None:
            nonlocal idle
            response = await self.session.send("GET", page_url)
            await raise_for_status(response, (200,), what=what)
            try:
                page = load_json(response.content).get(key) or []
            except (ValueError, AttributeError) as error:
                raise exc.RegistryError(
                    f"{what} is not a JSON object",
                    status_code=200,
                    method="GET",
                    url=redact(page_url),
                ) from error
            if not isinstance(page, list):
                raise pagination_error(what, f"gives {key} that are not a list", page_url)
            fresh = [t for t in page if isinstance(t, str) and t not in known]
            known.update(fresh)
            names.extend(fresh)
            if N is not None and len(names) >= N:
                return None
            if len(names) > max_names:
                # Each page is capped in bytes, but not how many pages come: bound the whole.
                raise exc.ResponseTooLarge(
                    f"{what} lists more than {max_names} names; pass max_names= to allow more "
                    f"(or N= to take the first ones)",
                    size=len(names),
                    limit=max_names,
                    status_code=200,
                    method="GET",
                    url=redact(page_url),
                )
            idle = 0 if fresh else idle + 1
            if idle >= _MAX_IDLE_PAGES and next_link(response) is not None:
                raise pagination_error(
                    what, f"brought no new {noun} in {idle} pages in a row", page_url
                )
            return response

        await follow_pages(url, read_page, what=what, max_pages=max_pages)
        return names if N is None else names[:N]
