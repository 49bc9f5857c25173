"""list_repositories: the registry's catalog, paged and capped like tag lists (and the cap on
names across the pages of tag, catalog and referrers listings)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from aioras import AsyncRegistry, OrasClient, Registry, defaults
from aioras.exceptions import RegistryError, ResponseTooLarge
from aioras.testing import LocalRegistry
from support.hostileregistry import Answer, Script, hostile_registry, json_answer

pytestmark = pytest.mark.anyio

NAMES = ["alpha/one", "alpha/two", "beta", "gamma/deep/three", "zeta"]


@pytest.fixture
def filled(fresh_registry: LocalRegistry, tmp_cwd: Path) -> LocalRegistry:
    (tmp_cwd / "a.txt").write_text("a")
    with Registry(fresh_registry.host, insecure=True) as reg:
        for name in NAMES:
            reg.push(f"{fresh_registry.host}/{name}:v1", files=["a.txt"])
    return fresh_registry


async def test_catalog_lists_every_repository_across_pages(filled: LocalRegistry) -> None:
    async with AsyncRegistry(filled.host, insecure=True) as areg:
        assert await areg.list_repositories() == NAMES
        assert await areg.list_repositories(page_size=2) == NAMES
        assert await areg.list_repositories(N=3, page_size=2) == NAMES[:3]
        assert await areg.list_repositories(N=0) == []


def test_sync_twins_list_the_catalog(filled: LocalRegistry) -> None:
    with Registry(insecure=True) as reg:
        assert reg.list_repositories(filled.host, page_size=2) == NAMES
    with OrasClient(hostname=filled.host, insecure=True) as client:
        assert client.list_repositories(N=2) == NAMES[:2]


def scripted(pages: dict[str, tuple[list[str], str | None]]) -> httpx.MockTransport:
    """A catalog whose page at each query answers names and a ``Link`` target."""

    def handler(request: httpx.Request) -> httpx.Response:
        names, link = pages[request.url.query.decode()]
        headers = {"Link": f'<{link}>; rel="next"'} if link else {}
        return httpx.Response(200, json={"repositories": names}, headers=headers)

    return httpx.MockTransport(handler)


@pytest.mark.parametrize(
    ("pages", "why"),
    [
        (
            {"n=1": (["a"], "/v2/_catalog?n=1&last=a"), "n=1&last=a": (["b"], "/v2/_catalog?n=1")},
            "seen page",
        ),
        ({"n=1": (["a"], "http://elsewhere.test/v2/_catalog?n=1&last=a")}, "off the registry"),
        (
            {f"n=1&last={i}": (["same"], f"/v2/_catalog?n=1&last={i + 1}") for i in range(10)}
            | {"n=1": (["same"], "/v2/_catalog?n=1&last=0")},
            "no new repository",
        ),
    ],
    ids=["loop", "off-origin", "idle"],
)
async def test_broken_catalog_pagination_is_refused(
    pages: dict[str, tuple[list[str], str | None]], why: str
) -> None:
    async with AsyncRegistry("catalog.test", insecure=True, transport=scripted(pages)) as areg:
        with pytest.raises(RegistryError, match=why):
            await areg.list_repositories(page_size=1)


async def test_catalog_without_a_hostname_is_a_value_error() -> None:
    async with AsyncRegistry(insecure=True) as areg:
        with pytest.raises(ValueError, match="hostname"):
            await areg.list_repositories()


def endless_listing(key: str, per_page: int) -> Script:
    """A catalog or tag list whose every page brings ``per_page`` fresh names, and a next."""

    def script(method: str, path: str, query: str) -> Answer | None:
        if not path.endswith(("/_catalog", "/tags/list")):
            return None
        start = int(query.rpartition("last=")[2] or 0) if "last=" in query else 0
        names = [f"{i:x}" for i in range(start, start + per_page)]
        link = f"<{path}?n={per_page}&last={start + per_page}>; " + 'rel="next"'
        return json_answer({key: names}, Link=link)

    return script


@pytest.mark.parametrize("listing", ["catalog", "tags"])
async def test_endless_listing_stops_at_max_names_across_pages(listing: str) -> None:
    key = "repositories" if listing == "catalog" else "tags"
    with hostile_registry(endless_listing(key, 100)) as server:
        async with AsyncRegistry(server.host, insecure=True) as areg:

            async def names(**options: int) -> list[str]:
                if listing == "catalog":
                    return await areg.list_repositories(**options)
                return await areg.get_tags(server.ref("x"), **options)

            with pytest.raises(ResponseTooLarge, match="max_names=") as info:
                await names(max_names=250)
            # N below the cap takes the first names and stops there.
            assert len(await names(N=120, max_names=250)) == 120
        listed = [p for m, p in server.requests if "/v2/_catalog" in p or "tags/list" in p]
    assert (info.value.size, info.value.limit) == (300, 250)
    assert len(listed) == 3 + 2  # refused at the third page; then two pages for N=120


def test_endless_catalog_stops_at_the_default_cap() -> None:
    # Pages of 250,000 short names (under 3 MiB each): the default cap ends the fifth.
    with (
        hostile_registry(endless_listing("repositories", 250_000)) as server,
        Registry(server.host, insecure=True) as reg,
        pytest.raises(ResponseTooLarge) as info,
    ):
        reg.list_repositories()
    pages = [p for m, p in server.requests if "/v2/_catalog" in p]
    assert info.value.limit == defaults.max_listed_names == 1_000_000
    assert len(pages) == 5


async def test_endless_referrers_listing_stops_at_the_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(defaults, "max_listed_names", 5)
    index = "application/vnd.oci.image.index.v1+json"

    def script(method: str, path: str, query: str) -> Answer | None:
        if "/referrers/" not in path:
            return None
        page = int(query.rpartition("page=")[2] or 0) if "page=" in query else 0
        entries = [
            {"mediaType": index, "digest": f"sha256:{page * 3 + i:064x}", "size": 1}
            for i in range(3)
        ]
        doc = {"schemaVersion": 2, "mediaType": index, "manifests": entries}
        link = f'<{path}?page={page + 1}>; rel="next"'
        return 200, {"Content-Type": index, "Link": link}, doc

    subject = {"mediaType": index, "digest": "sha256:" + "a" * 64, "size": 1}
    with hostile_registry(script) as server:
        async with AsyncRegistry(server.host, insecure=True) as areg:
            repo = areg.repository(areg.get_container(server.ref("x")))
            with pytest.raises(ResponseTooLarge) as info:
                await repo.referrers(subject)
        pages = [p for m, p in server.requests if "/referrers/" in p]
    assert (info.value.size, info.value.limit, len(pages)) == (6, 5, 2)
