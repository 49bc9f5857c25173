"""list_repositories: the registry's catalog, paged and capped like tag lists."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from aioras import AsyncRegistry, OrasClient, Registry
from aioras.exceptions import RegistryError
from aioras.testing import LocalRegistry

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
