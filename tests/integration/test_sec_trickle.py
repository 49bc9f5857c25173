"""A server trickling one byte every 0.5 s cannot hold a call: TimeoutError within 30 s.

Every read gets a byte well within ``timeout=2``, so no read ever times out; what stops the
trickle is the deadline on a non-blob answer (headers, manifest, tag list complete within
the read timeout of the request being sent) and the minimum rate of a blob body. With the
default retry policy each call must fail with :class:`aioras.exceptions.TimeoutError`
within 30 s, retries and resumes included. The four calls run at once to keep the run
short; the real registry cannot trickle, so a small server on 127.0.0.1 does. A token
service trickling its answer ends the call too (as an AuthenticationError: it is not retried).
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from pathlib import Path

import anyio
import pytest

from aioras import defaults, exceptions
from aioras._retry import DEFAULT_RETRY
from aioras.layout import Layout
from aioras.registry import AsyncRegistry

pytestmark = pytest.mark.anyio

PACE = 0.5  # seconds between two bytes
SPEC_BOUND = 30.0  # seconds: the promise under test
BLOB = b"b" * 4096
BLOB_DIGEST = "sha256:" + hashlib.sha256(BLOB).hexdigest()


class Trickler:
    """An HTTP/1.1 server on 127.0.0.1 answering every request with ``fast`` then ``slow``.

    ``fast`` goes out at once; ``slow`` one byte every :data:`PACE` seconds, until it ends
    or the client hangs up. ``requests`` counts the requests received. A request whose head
    contains a key of ``whole`` gets that answer at once instead.
    """

    def __init__(
        self,
        fast: bytes,
        slow: Callable[[], Iterable[int]],
        whole: Mapping[bytes, bytes] | None = None,
    ) -> None:
        self.fast = fast
        self.slow = slow
        self.whole = dict(whole or {})
        self.requests = 0
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> Trickler:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    @property
    def host(self) -> str:
        assert self._server is not None
        return f"127.0.0.1:{self._server.sockets[0].getsockname()[1]}"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await reader.readuntil(b"\r\n\r\n")
            self.requests += 1
            answer = next((a for key, a in self.whole.items() if key in request), None)
            if answer is not None:
                writer.write(answer)
                await writer.drain()
                return
            writer.write(self.fast)
            await writer.drain()
            for byte in self.slow():
                writer.write(bytes([byte]))
                await writer.drain()
                try:
                    if await asyncio.wait_for(reader.read(1), PACE) == b"":
                        return  # the client hung up
                except TimeoutError:
                    pass
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()


def head(content_type: str, length: int) -> bytes:
    return (
        f"HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nContent-Length: {length}\r\n\r\n"
    ).encode()


def trickled_headers() -> Trickler:
    def endless() -> Iterable[int]:
        return itertools.chain(b"HTTP/1.1 200 OK\r\nX-Trickle: ", itertools.repeat(ord("a")))

    return Trickler(b"", endless)


def trickled_body(content_type: str, body: bytes) -> Trickler:
    return Trickler(head(content_type, len(body)), lambda: body)


async def timed(call: Callable[[], Awaitable[object]]) -> tuple[BaseException | None, float]:
    started = time.monotonic()
    try:
        await call()
    except Exception as error:
        return error, time.monotonic() - started
    return None, time.monotonic() - started


async def test_trickling_server_fails_each_call_with_a_timeout_within_30_s(
    tmp_path: Path,
) -> None:
    manifest = b'{"schemaVersion": 2' + b" " * 4000 + b"}"
    tags = b'{"name": "t/r", "tags": ["v1"' + b" " * 4000 + b"]}"
    servers = {
        "headers": trickled_headers(),
        "manifest body": trickled_body(defaults.default_manifest_media_type, manifest),
        "tag list": trickled_body("application/json", tags),
        "4 KiB blob": trickled_body("application/octet-stream", BLOB),
    }
    outfile = tmp_path / "blob.bin"
    results: dict[str, tuple[BaseException | None, float]] = {}

    async def run(name: str, call: Callable[[AsyncRegistry, str], Awaitable[object]]) -> None:
        async with servers[name] as server, AsyncRegistry(insecure=True, timeout=2) as reg:
            results[name] = await timed(lambda: call(reg, server.host))

    calls: dict[str, Callable[[AsyncRegistry, str], Awaitable[object]]] = {
        "headers": lambda reg, host: reg.get_tags(f"{host}/t/r"),
        "manifest body": lambda reg, host: reg.get_manifest(f"{host}/t/r:v1"),
        "tag list": lambda reg, host: reg.get_tags(f"{host}/t/r"),
        "4 KiB blob": lambda reg, host: reg.download_blob(
            f"{host}/t/r", BLOB_DIGEST, outfile, size=len(BLOB)
        ),
    }
    # Past the bound by a margin, so that a call the trickle holds fails the test, not CI.
    with anyio.fail_after(SPEC_BOUND + 15):
        async with anyio.create_task_group() as tasks:
            for name, call in calls.items():
                tasks.start_soon(run, name, call)

    for name, (error, elapsed) in results.items():
        assert isinstance(error, exceptions.TimeoutError), f"{name}: {error!r}"
        assert elapsed < SPEC_BOUND, f"{name}: failed after {elapsed:.1f} s"
        # Retried (a blob: resumed) as any timeout is, all within the bound.
        tries = DEFAULT_RETRY.resumes if name == "4 KiB blob" else DEFAULT_RETRY.attempts
        assert servers[name].requests == tries + 1, name
    assert list(tmp_path.iterdir()) == []


async def test_trickling_token_service_fails_the_call_within_the_timeout() -> None:
    token = b'{"token": "' + b"t" * 4000 + b'"}'
    async with trickled_body("application/json", token) as realm:
        challenge = (
            "HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n"
            f'WWW-Authenticate: Bearer realm="http://{realm.host}/token",service="s"\r\n\r\n'
        ).encode()
        async with (
            Trickler(challenge, lambda: b"") as registry,
            AsyncRegistry(insecure=True, timeout=2) as reg,
        ):
            with anyio.fail_after(SPEC_BOUND + 15):
                error, elapsed = await timed(lambda: reg.get_tags(f"{registry.host}/t/r"))

    # A token service is not retried: the deadline on its answer ends the call.
    assert isinstance(error, exceptions.AuthenticationError), repr(error)
    assert "ReadTimeout" in str(error)
    assert elapsed < SPEC_BOUND
    assert realm.requests == 1


async def test_layout_pull_of_a_trickled_blob_fails_with_a_timeout_within_30_s(
    tmp_path: Path,
) -> None:
    # aioras.layout copies blobs from the registry into the layout: a blob body that comes
    # slower than the minimum rate is a timeout there too, as in download_blob.
    blob = {"mediaType": "application/octet-stream", "digest": BLOB_DIGEST, "size": len(BLOB)}
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": defaults.default_manifest_media_type,
            "config": {**blob, "mediaType": "application/vnd.oci.empty.v1+json"},
            "layers": [blob],
        }
    ).encode()
    whole = {b"/manifests/": head(defaults.default_manifest_media_type, len(manifest)) + manifest}
    server = Trickler(head("application/octet-stream", len(BLOB)), lambda: BLOB, whole)
    layout = Layout(str(tmp_path / "layout"), validate=False)
    with anyio.fail_after(SPEC_BOUND + 15):
        async with server, AsyncRegistry(insecure=True, timeout=2) as reg:
            container = reg.get_container(f"{server.host}/t/r:v1")
            error, elapsed = await timed(lambda: layout._pull(reg, container, "v1"))
    assert isinstance(error, exceptions.TimeoutError), repr(error)
    assert elapsed < SPEC_BOUND
