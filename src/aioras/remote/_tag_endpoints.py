"""``TagMixin``: tags and the catalog of :class:`~aioras.remote.registry.AsyncRegistry`.

Tag and repository listings, their pagination checked as it is followed, and tag deletes
(the tag alone where the registry can, otherwise its manifest, naming the tags it took).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

import httpx

from .. import defaults
from .. import exceptions as exc
from .._concurrency import map_bounded
from .._http.responses import raise_for_status
from .._http.urls import redact, resolve_location, same_origin
from .._jsondoc import load_json
from ..container import Container, parse_registry
from ._core import ContainerLike, RegistryCore

__all__ = ["TagMixin"]

logger = logging.getLogger(__name__)
_MAX_TAG_PAGES = 10_000
# Tag-list pages in a row that bring no new tag before pagination is declared broken.
_MAX_IDLE_PAGES = 3


class TagMixin(RegistryCore):
    """Tag and catalog listings and tag deletes: ``get_tags`` ... ``delete_tags``."""

    # -- tags ----------------------------------------------------------------------------
    async def get_tags(
        self,
        container: ContainerLike,
        N: int | None = None,
        *,
        page_size: int | None = None,
        max_pages: int = _MAX_TAG_PAGES,
        max_names: int = defaults.max_listed_names,
    ) -> list[str]:
        """List the repository's tags, following ``Link`` pagination; at most ``N``.

        ``page_size`` asks the registry for pages of that many tags (``n=``). Pagination
        is refused with a :class:`~aioras.exceptions.RegistryError` when it leaves the
        registry's origin, revisits a page, brings no new tag for several pages in a row,
        or runs past ``max_pages`` pages (default 10,000). A listing of more than
        ``max_names`` tags across its pages (default 1,000,000,
        :data:`aioras.defaults.max_listed_names`) raises
        :class:`~aioras.exceptions.ResponseTooLarge` (pass ``N`` to take the first ones).
        """
        container = self.get_container(container)
        if N is not None and N <= 0:
            return []
        n = page_size if page_size is not None else N
        url = self._url(container.tags_url(n))
        what = f"tag list of {container.api_prefix}"
        return await self._list_pages(
            url, "tags", "tag", what, N, max_pages=max_pages, max_names=max_names
        )

    async def list_repositories(
        self,
        hostname: str | None = None,
        N: int | None = None,
        *,
        page_size: int | None = None,
        max_pages: int = _MAX_TAG_PAGES,
        max_names: int = defaults.max_listed_names,
    ) -> list[str]:
        """List the repositories of a registry (its catalog), following pagination; at most ``N``.

        ``hostname`` defaults to this object's. Pagination is checked as in
        :meth:`get_tags` (same origin, no page twice, new names coming, at most
        ``max_pages`` pages) and refused with a :class:`~aioras.exceptions.RegistryError`;
        more than ``max_names`` names (default 1,000,000) raise
        :class:`~aioras.exceptions.ResponseTooLarge`.
        Registries that keep their catalog private answer
        :class:`~aioras.exceptions.PermissionDenied` or
        :class:`~aioras.exceptions.NotFoundError`; raises ValueError without a hostname.
        """
        host = hostname or self.hostname
        if not host:
            raise ValueError("list_repositories() needs a hostname")
        if N is not None and N <= 0:
            return []
        n = page_size if page_size is not None else N
        query = f"?n={int(n)}" if n is not None else ""
        url = self._url(f"{parse_registry(host)}/v2/_catalog{query}")
        return await self._list_pages(
            url,
            "repositories",
            "repository",
            f"catalog of {host}",
            N,
            max_pages=max_pages,
            max_names=max_names,
        )

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
        seen: set[str] = set()
        idle = 0

        def broken(why: str) -> exc.RegistryError:
            return exc.RegistryError(
                f"{what}: pagination {why}", status_code=200, method="GET", url=redact(url)
            )

        for _ in range(max_pages):
            seen.add(url)
            response = await self._send("GET", url)
            await raise_for_status(response, (200,), what=what)
            try:
                page = load_json(response.content).get(key) or []
            except (ValueError, AttributeError) as error:
                raise exc.RegistryError(
                    f"{what} is not a JSON object", status_code=200, method="GET", url=redact(url)
                ) from error
            if not isinstance(page, list):
                raise broken(f"gives {key} that are not a list")
            fresh = [t for t in page if isinstance(t, str) and t not in known]
            known.update(fresh)
            names.extend(fresh)
            if N is not None and len(names) >= N:
                return names[:N]
            if len(names) > max_names:
                # Each page is capped in bytes, but not how many pages come: bound the whole.
                raise exc.ResponseTooLarge(
                    f"{what} lists more than {max_names} names; pass max_names= to allow more "
                    f"(or N= to take the first ones)",
                    size=len(names),
                    limit=max_names,
                    status_code=200,
                    method="GET",
                    url=redact(url),
                )
            next_url = _next_link(response)
            if not next_url:
                return names
            idle = 0 if fresh else idle + 1
            if idle >= _MAX_IDLE_PAGES:
                raise broken(f"brought no new {noun} in {idle} pages in a row")
            next_url = resolve_location(url, next_url)
            if not same_origin(next_url, url) or next_url in seen:
                raise broken(
                    f"points to {redact(next_url)}, off the registry or back to a seen page"
                )
            url = next_url
        raise broken(f"exceeds {max_pages} pages")

    # Answers to DELETE by tag from a registry that cannot delete a tag alone: the OCI spec
    # allows 400 and 405 (the CNCF registry sends 400 DIGEST_INVALID, or 405 UNSUPPORTED
    # with deletes disabled); 404 may also mean that the route is unknown.
    _TAG_DELETE_REFUSED = (400, 404, 405)
    # At most this many other tags are resolved to name those a manifest delete takes along.
    _MAX_SIBLING_TAGS = 1000

    async def delete_tag(self, container: ContainerLike, tag: str) -> bool:
        """Delete ``tag``; True when deleted, False when there was no such tag.

        Tries the OCI 1.1 tag deletion first (``DELETE /v2/<name>/manifests/<tag>``),
        which removes the tag alone. Where the registry refuses it (the CNCF registry
        does), the manifest the tag points at is deleted instead, and with it every tag
        pointing there: a warning is logged naming those other tags. Raises
        :class:`~aioras.exceptions.UnsupportedOperation` when deletes are disabled.
        """
        container = self.get_container(container).with_reference(tag)
        response = await self._send("DELETE", self._url(container.manifest_url()))
        if response.status_code not in self._TAG_DELETE_REFUSED:
            await raise_for_status(response, (202, 200, 204), what=f"delete tag {tag}")
            return True
        try:
            descriptor = await self._registry.resolve(container)
        except exc.NotFoundError:
            return False
        digest = descriptor["digest"]
        others = await self._tags_pointing_at(container, digest, besides=tag)
        await self._registry.delete_manifest(container, digest)
        if others:
            logger.warning(
                "%s cannot delete a tag alone: deleting tag %s deleted manifest %s and "
                "with it the tags %s",
                container.registry,
                tag,
                digest,
                ", ".join(others),
            )
        return True

    async def _tags_pointing_at(
        self, container: Container, digest: str, *, besides: str
    ) -> list[str]:
        """The repository's tags other than ``besides`` that resolve to ``digest``.

        Only looked up when the warning would be logged; a tag list or a tag the registry
        will not give counts as no tag. The first ``_MAX_SIBLING_TAGS`` tags are checked.
        """
        if not logger.isEnabledFor(logging.WARNING):
            return []
        try:
            tags = await self.get_tags(container, self._MAX_SIBLING_TAGS + 1)
        except exc.RegistryError as error:
            logger.debug("cannot list the tags of %s: %s", container.api_prefix, error)
            return []
        candidates = [t for t in tags if t != besides][: self._MAX_SIBLING_TAGS]

        async def same(other: str) -> bool:
            try:
                found = await self._registry.resolve(container.with_reference(other))
            except exc.RegistryError:
                return False
            return bool(found["digest"] == digest)

        matches = await map_bounded(same, candidates, limit=self.pull_concurrency)
        return [t for t, match in zip(candidates, matches, strict=True) if match]

    async def delete_tags(self, name: ContainerLike, tags: str | Iterable[str]) -> list[str]:
        """Delete each of ``tags``; return those that were deleted."""
        container = self.get_container(name)
        deleted = []
        for tag in [tags] if isinstance(tags, str) else list(tags):
            if await self.delete_tag(container, tag):
                deleted.append(tag)
        return deleted


def _next_link(response: httpx.Response) -> str | None:
    for value in response.headers.get_list("link"):
        for part in value.split(","):
            url, _, params = part.partition(";")
            if 'rel="next"' in params.replace(" ", "") or "rel=next" in params.replace(" ", ""):
                return url.strip().strip("<>")
    return None
