"""ensure_container and retry, on sync and async callables."""

from __future__ import annotations

import inspect
from typing import Any

import anyio
import pytest

import aioras.decorator as decorator_module
from aioras.container import Container
from aioras.decorator import ensure_container, retry
from aioras.exceptions import (
    ConnectError,
    InvalidReference,
    NotFoundError,
    ServerError,
    TimeoutError,
    TooManyRequests,
    TransportError,
)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Registry:
    """Has get_container, like aioras's registries: the default host applies."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    def get_container(self, name: str | Container) -> Container:
        if isinstance(name, Container):
            return name
        self.asked.append(name)
        return Container(name, registry="localhost:5000")

    @ensure_container
    def get_tags(self, container: str | Container, N: int | None = None) -> Any:
        """Docstring kept."""
        return container, N

    @ensure_container
    async def aget_tags(self, container: str | Container, N: int | None = None) -> Any:
        return container, N

    @ensure_container
    def upload_blob(self, blob: str, container: str | Container, layer: dict[str, Any]) -> Any:
        return blob, container

    @ensure_container
    def download_layers(self, download_dir: str, package: str | Container, media_type: str) -> Any:
        # The user guide's method: the reference is ``package``, not the first argument.
        return download_dir, package

    @ensure_container
    def first_param(self, anything: Any, other: Any = None) -> Any:
        return anything, other


class Plain:
    @ensure_container
    def get(self, container: str | Container) -> Any:
        return container


def test_sync_positional_and_keyword() -> None:
    reg = Registry()
    got, n = reg.get_tags("dinosaur/artifact:v1", 5)
    assert isinstance(got, Container)
    assert got.uri == "localhost:5000/dinosaur/artifact:v1"
    assert n == 5
    got, _ = reg.get_tags(container="a/b")
    assert got == Container("localhost:5000/a/b")
    assert reg.asked == ["dinosaur/artifact:v1", "a/b"]


def test_container_passes_unchanged() -> None:
    reg = Registry()
    c = Container("ghcr.io/a/b:1")
    assert reg.get_tags(c)[0] is c
    assert reg.asked == []


def test_without_get_container_builds_container() -> None:
    got = Plain().get("ghcr.io/x/y")
    assert isinstance(got, Container)
    assert got.uri == "ghcr.io/x/y:latest"


def test_parameter_named_container_wins_over_position() -> None:
    blob, container = Registry().upload_blob("/tmp/blob.txt", "a/b", {})
    assert blob == "/tmp/blob.txt"
    assert isinstance(container, Container)
    blob, container = Registry().upload_blob("/tmp/blob.txt", container="a/b", layer={})
    assert isinstance(container, Container)


def test_user_guide_download_layers_shape() -> None:
    download_dir, package = Registry().download_layers("/tmp/out", "a/b:v1", "text/plain")
    assert download_dir == "/tmp/out"
    assert isinstance(package, Container)
    _, package = Registry().download_layers("/tmp/out", package="a/b:v1", media_type="x/y")
    assert isinstance(package, Container)


def test_first_parameter_fallback() -> None:
    got, other = Registry().first_param("a/b", "c/d")
    assert isinstance(got, Container)
    assert other == "c/d"
    # Non-strings pass through untouched.
    assert Registry().first_param(42) == (42, None)


def test_invalid_reference_raises() -> None:
    with pytest.raises(InvalidReference):
        Plain().get("UPPER/case")


def test_wraps_preserves_metadata() -> None:
    assert Registry.get_tags.__name__ == "get_tags"
    assert Registry.get_tags.__doc__ == "Docstring kept."
    assert str(inspect.signature(Registry.get_tags)) == (
        "(self, container: 'str | Container', N: 'int | None' = None) -> 'Any'"
    )
    assert inspect.iscoroutinefunction(Registry.aget_tags)
    assert not inspect.iscoroutinefunction(Registry.get_tags)


@pytest.mark.anyio
async def test_async_method() -> None:
    reg = Registry()
    got, n = await reg.aget_tags("a/b", N=3)
    assert got == Container("localhost:5000/a/b")
    assert n == 3
    got, _ = await reg.aget_tags(container="c/d")
    assert got == Container("localhost:5000/c/d")


class AsyncGetter:
    async def get_container(self, name: str) -> Container:
        return Container(name, registry="async.example:1")

    @ensure_container
    async def get(self, container: str | Container) -> Any:
        return container

    @ensure_container
    async def get_kw(self, *, container: str | Container) -> Any:
        return container


@pytest.mark.anyio
async def test_async_get_container_is_awaited() -> None:
    obj = AsyncGetter()
    assert (await obj.get("a/b")).registry == "async.example:1"
    assert (await obj.get_kw(container="a/b")).registry == "async.example:1"


# retry --------------------------------------------------------------------------------------


class Flaky:
    def __init__(self, errors: list[Exception]) -> None:
        self.errors = errors
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "ok"


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    slept: list[float] = []
    monkeypatch.setattr(decorator_module.time, "sleep", slept.append)

    async def fake_sleep(delay: float) -> None:
        slept.append(delay)

    monkeypatch.setattr(anyio, "sleep", fake_sleep)
    return slept


def server_error() -> ServerError:
    return ServerError("boom", status_code=503)


def test_retry_recovers_with_exponential_backoff(sleeps: list[float]) -> None:
    flaky = Flaky([TransportError("reset"), server_error(), ConnectError("refused")])
    assert retry(attempts=5, timeout=2)(flaky)() == "ok"
    assert flaky.calls == 4
    assert sleeps == [2, 4, 8]


def test_retry_gives_up_with_last_error(sleeps: list[float]) -> None:
    errors: list[Exception] = [TimeoutError(f"t{i}") for i in range(3)]
    flaky = Flaky(list(errors))
    with pytest.raises(TimeoutError) as info:
        retry(attempts=3, timeout=0.5)(flaky)()
    assert info.value is errors[-1]
    assert flaky.calls == 3
    assert sleeps == [0.5, 1.0]


def test_retry_does_not_retry_other_errors(sleeps: list[float]) -> None:
    flaky = Flaky([NotFoundError("gone", status_code=404)])
    with pytest.raises(NotFoundError):
        retry()(flaky)()
    assert flaky.calls == 1
    assert sleeps == []


def test_retry_honours_retry_after_within_cap(sleeps: list[float]) -> None:
    flaky = Flaky(
        [
            TooManyRequests("slow down", status_code=429, retry_after=7),
            TooManyRequests("slow down", status_code=429, retry_after=1000),
            TooManyRequests("slow down", status_code=429),
        ]
    )
    assert retry(attempts=4, timeout=1, max_delay=30)(flaky)() == "ok"
    assert sleeps == [7, 30, 4]


def test_retry_rejects_zero_attempts() -> None:
    with pytest.raises(ValueError, match="attempts"):
        retry(attempts=0)


def test_retry_single_attempt_never_sleeps(sleeps: list[float]) -> None:
    with pytest.raises(ServerError):
        retry(attempts=1)(Flaky([server_error()]))()
    assert sleeps == []


def test_retry_keeps_metadata() -> None:
    @retry()
    def fetch(x: int) -> int:
        """Fetch it."""
        return x

    assert fetch(3) == 3
    assert fetch.__name__ == "fetch"
    assert fetch.__doc__ == "Fetch it."


@pytest.mark.anyio
async def test_async_retry_sleeps_with_anyio(sleeps: list[float]) -> None:
    calls = 0

    @retry(attempts=3, timeout=1)
    async def fetch() -> str:
        nonlocal calls
        calls += 1
        if calls < 3:
            raise server_error()
        return "done"

    assert inspect.iscoroutinefunction(fetch)
    assert await fetch() == "done"
    assert calls == 3
    assert sleeps == [1, 2]


@pytest.mark.anyio
async def test_async_retry_exhausted(sleeps: list[float]) -> None:
    @retry(attempts=2, timeout=0)
    async def fetch() -> str:
        raise TransportError("down")

    with pytest.raises(TransportError):
        await fetch()
    assert sleeps == [0]
