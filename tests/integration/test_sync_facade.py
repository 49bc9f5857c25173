"""The synchronous facade ``Registry`` against the real CNCF registry.

Covers byte-identical round trips, calls made from inside a running event loop, the oras-py
user guide's subclass examples ported with ``aioras`` names, streaming through the portal,
and the lifecycle of the loop thread (close, reuse, context manager, GC, interpreter exit).
"""

from __future__ import annotations

import asyncio
import gc
import hashlib
import importlib.util
import inspect
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import httpx
import pytest

import aioras
import aioras.defaults
import aioras.oci
import aioras.provider
import aioras.utils
from aioras import defaults
from aioras.container import Container
from aioras.exceptions import AuthenticationError, InvalidReference, NotFoundError
from aioras.registry import AsyncRegistry
from aioras.sync import Registry
from aioras.sync._twins import twin
from aioras.testing import LocalRegistry

if TYPE_CHECKING:
    from support.harness import BasicAuthUser


def unique(name: str) -> str:
    return f"sync/{name}-{uuid.uuid4().hex[:10]}"


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def portal_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if "portal" in t.name}


def threads_back_to(before: set[threading.Thread], timeout: float = 5.0) -> bool:
    """True once only the threads of ``before`` remain.

    The portal thread is joined by ``close()``; anyio's worker threads (file hashing) are told
    to stop when their loop ends and exit a moment later.
    """
    deadline = time.monotonic() + timeout
    while set(threading.enumerate()) - before:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


@pytest.fixture
def reg(registry: LocalRegistry) -> Iterator[Registry]:
    with Registry(registry.host, insecure=True) as r:
        yield r


def tree_files(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


# -- round trips -----------------------------------------------------------------------------


def test_round_trip_files_and_directory_byte_identical(
    registry: LocalRegistry, tmp_cwd: Path
) -> None:
    (tmp_cwd / "hello.txt").write_bytes(b"hello, sync world\n")
    (tmp_cwd / "random.bin").write_bytes(os.urandom(3 * (1 << 20) + 11))
    (tmp_cwd / "empty.dat").write_bytes(b"")
    tree = tmp_cwd / "tree"
    (tree / "nested" / "deeper").mkdir(parents=True)
    (tree / "top.txt").write_text("top\n")
    (tree / "nested" / "mid.bin").write_bytes(os.urandom(70_000))
    (tree / "nested" / "deeper" / "leaf.txt").write_text("leaf\n")
    target = registry.reference(unique("roundtrip") + ":v1")

    with Registry(insecure=True) as r:
        response = r.push(target, files=["hello.txt", "random.bin", "empty.dat", "tree"])
        assert response.status_code == 201
        response.close()  # a finished response closes like any sync httpx response
        out = tmp_cwd / "out"
        paths = r.pull(target, outdir=out)

    assert sorted(Path(p).name for p in paths) == sorted(
        ["hello.txt", "random.bin", "empty.dat", "tree"]
    )
    for name in ("hello.txt", "random.bin", "empty.dat"):
        assert (out / name).read_bytes() == (tmp_cwd / name).read_bytes()
    assert tree_files(out / "tree") == tree_files(tree)


def test_chunked_push_and_manifest_endpoints(reg: Registry, tmp_cwd: Path) -> None:
    data = os.urandom(2 * (1 << 20) + 3)
    (tmp_cwd / "big.bin").write_bytes(data)
    target = f"{unique('chunked')}:v1"  # short name: the registry's hostname applies
    reg.push(target, files=["big.bin"], do_chunked=True, chunk_size=1 << 20)

    manifest, descriptor = reg.fetch_manifest(target)
    assert reg.resolve(target)["digest"] == descriptor["digest"]
    assert reg.get_manifest(target) == manifest
    layer = manifest["layers"][0]
    assert layer["digest"] == sha256(data)
    assert reg.blob_exists(layer, target)
    assert reg.get_tags(target) == ["v1"]
    assert reg.delete_tag(target, "v1") is True
    assert reg.get_tags(target) == []


# -- inside a running event loop -------------------------------------------------------------


@pytest.mark.anyio
async def test_sync_calls_from_inside_a_running_event_loop(
    registry: LocalRegistry, tmp_cwd: Path
) -> None:
    asyncio.get_running_loop()  # this test body runs on an event loop
    (tmp_cwd / "inloop.txt").write_bytes(b"called from a coroutine\n")
    target = registry.reference(unique("inloop") + ":v1")

    r = Registry(insecure=True)
    try:
        assert r.push(target, files=["inloop.txt"]).status_code == 201
        paths = r.pull(target, outdir=tmp_cwd / "out")
        assert Path(paths[0]).read_bytes() == b"called from a coroutine\n"
        assert r.get_tags(target) == ["v1"]
    finally:
        r.close()


def test_sync_calls_inside_asyncio_run(reg: Registry, tmp_cwd: Path) -> None:
    (tmp_cwd / "f.txt").write_bytes(b"x")
    target = f"{unique('asyncio-run')}:v1"

    async def main() -> list[str]:
        reg.push(target, files=["f.txt"])
        await asyncio.sleep(0)
        return reg.get_tags(target)

    assert asyncio.run(main()) == ["v1"]
    assert reg.get_tags(target) == ["v1"]  # the same registry keeps working afterwards


# -- the user guide's subclasses, as examples/guide/ ports them ------------------------------

GUIDE = Path(__file__).resolve().parents[2] / "examples" / "guide"


def load_guide_example(stem: str) -> Any:
    """Import ``examples/guide/<stem>.py`` (its name starts with a digit, so not by name)."""
    spec = importlib.util.spec_from_file_location(f"guide_{stem}", GUIDE / f"{stem}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


custom_push = load_guide_example("05_custom_push")
custom_push_list = load_guide_example("06_custom_push_list")
custom_pull = load_guide_example("09_custom_pull")
ArchivesRegistry = custom_push.Registry
ListRegistry = custom_push_list.Registry
PullRegistry = custom_pull.Registry
DINOSAUR_TYPE = custom_push_list.DATATYPE


def test_guide_custom_push_with_archives_dict_and_annotations(
    registry: LocalRegistry, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    work = tmp_path / "pakages-tmp"
    work.mkdir()
    package_dir = tmp_path / "pakages-0.0.16"
    package_dir.mkdir()
    (package_dir / "setup.py").write_bytes(os.urandom(50_000))
    tarball = Path(aioras.utils.make_targz(package_dir, work / "pakages-0.0.16.tar.gz"))
    sbom = work / "sbom.json"
    sbom.write_text(json.dumps({"bomFormat": "CycloneDX"}))
    docs = work / "docs"
    (docs / "sub").mkdir(parents=True)
    (docs / "sub" / "readme.md").write_text("# docs\n")
    annotation_file = tmp_path / "annotations.json"
    annotation_file.write_text(
        json.dumps(
            {
                "$manifest": {"org.dinosaur.tool.food": "avocado"},
                "$config": {"org.dinosaur.config": "yes"},
                str(sbom): {"org.dinosaur.kind": "sbom"},
            }
        )
    )
    archives = {
        str(tarball): "application/vnd.oci.image.layer.v1.tar+gzip",
        str(sbom): "application/vnd.cyclonedx",
        str(docs): "application/vnd.oci.image.layer.v1.tar+gzip",
    }
    uri = registry.reference(unique("excellent-dinosaur") + ":latest")

    with ArchivesRegistry(insecure=True) as r:
        response = r.push(uri, archives, annotations=str(annotation_file))
        assert response.status_code in (200, 201)
        assert f"Successfully pushed {registry.host}/" in capsys.readouterr().out

        manifest = r.get_manifest(uri)
        assert manifest["annotations"] == {"org.dinosaur.tool.food": "avocado"}
        assert manifest["config"]["annotations"] == {"org.dinosaur.config": "yes"}
        assert manifest["config"]["digest"] == defaults.blank_config_hash
        layers = manifest["layers"]
        assert [layer["annotations"][defaults.annotation_title] for layer in layers] == [
            "pakages-0.0.16.tar.gz",
            "sbom.json",
            "docs",
        ]
        assert [layer["mediaType"] for layer in layers] == list(archives.values())
        assert layers[1]["annotations"]["org.dinosaur.kind"] == "sbom"
        assert r.get_blob(uri, layers[0]["digest"]).content == tarball.read_bytes()
        assert r.get_blob(uri, layers[1]["digest"]).content == sbom.read_bytes()
        assert r.get_blob(uri, manifest["config"]["digest"]).content == b"{}"

        out = tmp_path / "pulled"
        r.pull(uri, outdir=out)
    assert (out / "sbom.json").read_bytes() == sbom.read_bytes()
    # pull unpacks tar+gzip layers, as oras-py does
    assert (out / "pakages-0.0.16" / "setup.py").read_bytes() == (
        package_dir / "setup.py"
    ).read_bytes()
    assert (out / "docs" / "sub" / "readme.md").read_text() == "# docs\n"
    assert sorted(p.name for p in work.iterdir()) == [
        "docs",
        "pakages-0.0.16.tar.gz",
        "sbom.json",
    ]


def test_guide_custom_push_list_with_workdir_and_custom_pull(
    basic_auth_registry: LocalRegistry,
    htpasswd_user: BasicAuthUser,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ORAS_USER", htpasswd_user.username)
    monkeypatch.setenv("ORAS_PASS", htpasswd_user.password)
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker"))
    root = tmp_path / "cache"
    root.mkdir()
    contents = {"prices.csv": b"a,b\n1,2\n", "notes.txt": os.urandom(10_000)}
    for name, data in contents.items():
        (root / name).write_bytes(data)
    uri = basic_auth_registry.reference(unique("dinosaur-tool") + ":v1")
    cwd = os.getcwd()

    custom_push_list.push(uri, str(root))
    assert os.getcwd() == cwd  # workdir() went back

    with PullRegistry(insecure=True) as puller:
        puller.set_basic_auth(htpasswd_user.username, htpasswd_user.password)
        manifest = puller.get_manifest(uri)
        assert manifest["annotations"] == {}
        assert manifest["config"]["annotations"] == {}
        by_title = {
            layer["annotations"][defaults.annotation_title]: layer for layer in manifest["layers"]
        }
        assert set(by_title) == set(contents)
        for name, layer in by_title.items():
            assert layer["mediaType"] == DINOSAUR_TYPE
            assert layer["annotations"]["size"] == str(len(contents[name]))
            datetime.fromisoformat(layer["annotations"]["creationTime"])

        download_dir = tmp_path / "downloads" / "not-yet-there"
        paths = puller.download_layers(str(download_dir), uri, DINOSAUR_TYPE)
        assert sorted(Path(p).name for p in paths) == sorted(contents)
        for p in paths:
            assert Path(p).read_bytes() == contents[Path(p).name]
        assert puller.download_layers(str(download_dir), uri, "application/vnd.no-such-type") == []


def test_guide_custom_pull_selects_layers_by_media_type(
    reg: Registry, registry: LocalRegistry, tmp_cwd: Path
) -> None:
    (tmp_cwd / "prices.json").write_text('{"usd": 1}')
    (tmp_cwd / "prices-web.json").write_text('{"web": true}')
    (tmp_cwd / "aws.json").write_text('{"aws": 2}')
    package = registry.reference(unique("prices") + ":v1")
    reg.push(
        package,
        files=[
            "prices.json:application/vnd.google.prices",
            "prices-web.json:application/vnd.google.prices-web",
            "aws.json:application/vnd.aws.prices",
        ],
    )
    with PullRegistry(insecure=True) as r:
        paths = r.download_layers(str(tmp_cwd / "dl"), package, "application/vnd.google.prices")
    assert [Path(p).name for p in paths] == ["prices.json"]
    assert Path(paths[0]).read_text() == '{"usd": 1}'
    assert not (tmp_cwd / "dl" / "aws.json").exists()


# -- streaming -------------------------------------------------------------------------------


def test_get_blob_stream_iterates_through_the_portal(reg: Registry, tmp_cwd: Path) -> None:
    data = os.urandom(3 * (1 << 20) + 5)
    (tmp_cwd / "stream.bin").write_bytes(data)
    target = f"{unique('stream')}:v1"
    reg.push(target, files=["stream.bin"])
    digest = sha256(data)

    response = reg.get_blob(target, digest, stream=True)
    assert isinstance(response, httpx.Response)
    assert response.status_code == 200
    assert response.headers["docker-content-digest"] == digest
    chunks = list(response.iter_bytes(chunk_size=256 * 1024))
    assert len(chunks) > 1
    assert b"".join(chunks) == data
    assert response.is_closed  # reading to the end closes it
    response.close()  # and closing again is harmless

    # Closing part way releases the connection; the registry keeps working.
    partial = reg.get_blob(target, digest, stream=True)
    first = next(partial.iter_raw())
    assert data.startswith(first)
    partial.close()
    assert partial.is_closed

    with reg.stream_blob(target, digest) as streamed:
        assert streamed.read() == data
    assert streamed.is_closed

    whole = reg.get_blob(target, digest)
    assert whole.content == data
    whole.close()
    head = reg.get_blob(target, digest, head=True)
    assert int(head.headers["content-length"]) == len(data)

    url = f"http://{reg.hostname}/v2/{Container(target, reg.hostname).api_prefix}/blobs/{digest}"
    raw = reg.do_request(url, stream=True)
    assert raw.status_code == 200
    assert b"".join(raw.iter_bytes()) == data


def test_download_blob_and_upload_endpoints(reg: Registry, tmp_path: Path) -> None:
    data = os.urandom(100_000)
    blob = tmp_path / "blob.bin"
    blob.write_bytes(data)
    layer = aioras.oci.NewLayer(blob)
    target = f"{unique('endpoints')}:v1"
    assert not reg.blob_exists(layer, target)
    assert reg.put_upload(blob, target, layer).status_code == 201
    assert reg.blob_exists(layer, target)
    other = f"{unique('endpoints-chunked')}:v1"
    assert reg.chunked_upload(blob, other, layer, chunk_size=30_000).status_code == 201
    mounted = f"{unique('endpoints-mount')}:v1"
    assert reg.mount_blob(mounted, layer["digest"], Container(target, reg.hostname).api_prefix)
    out = reg.download_blob(mounted, layer["digest"], tmp_path / "copy.bin", size=len(data))
    assert Path(out).read_bytes() == data
    reg.delete_blob(other, layer["digest"])
    assert not reg.blob_exists(layer, other)


# -- lifecycle -------------------------------------------------------------------------------


def test_close_then_reuse_and_no_leaked_threads(registry: LocalRegistry, tmp_cwd: Path) -> None:
    (tmp_cwd / "f.txt").write_bytes(b"reuse")
    target = registry.reference(unique("reuse") + ":v1")
    before = set(threading.enumerate())

    r = Registry(insecure=True)
    assert set(threading.enumerate()) == before  # nothing starts before the first call
    r.push(target, files=["f.txt"])
    assert len(portal_threads() - before) == 1
    r.close()
    assert not portal_threads() - before  # joined by close()
    assert threads_back_to(before)
    r.close()  # idempotent

    # A closed Registry restarts cleanly: new loop thread, new pool, same credentials.
    assert r.get_tags(target) == ["v1"]
    assert len(portal_threads() - before) == 1
    r.close()
    assert threads_back_to(before)


def test_context_manager_stops_the_thread(registry: LocalRegistry) -> None:
    before = set(threading.enumerate())
    with Registry(registry.host, insecure=True) as r:
        assert r.ping().status_code == 200
        assert len(portal_threads() - before) == 1
    assert threads_back_to(before)


def test_garbage_collected_registry_stops_its_thread(registry: LocalRegistry) -> None:
    before = set(threading.enumerate())
    r = Registry(registry.host, insecure=True)
    r.ping()
    assert len(portal_threads() - before) == 1
    del r
    gc.collect()
    assert threads_back_to(before)


def test_interpreter_exit_closes_an_open_registry(registry: LocalRegistry, tmp_path: Path) -> None:
    script = textwrap.dedent(
        f"""
        import aioras
        reg = aioras.Registry({registry.host!r}, insecure=True)
        assert reg.ping().status_code == 200
        print("done")
        """
    )
    # -W error::ResourceWarning-style strictness: any warning at exit would print to stderr.
    env = {**os.environ, "PYTHONWARNINGS": "error,always::ResourceWarning"}
    proc = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env=env,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "done"
    assert proc.stderr == ""


class _Recorder(httpx.AsyncBaseTransport):
    """Passes requests to a real transport and notes which loop sent them and what came back."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.loops: set[int] = set()
        self.statuses: list[int] = []
        self.lock = threading.Lock()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        with self.lock:
            self.loops.add(id(asyncio.get_running_loop()))
            self.statuses.append(response.status_code)
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


def test_threads_share_one_loop_pool_and_learned_auth(
    basic_auth_registry: LocalRegistry,
    htpasswd_user: BasicAuthUser,
    tmp_cwd: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_cwd / "docker"))
    recorder = _Recorder()
    names = [f"t{i}.txt" for i in range(6)]
    for i, name in enumerate(names):
        (tmp_cwd / name).write_bytes(f"thread {i}\n".encode())
    base = unique("threads")
    with Registry(basic_auth_registry.host, insecure=True, transport=recorder) as r:
        r.set_basic_auth(htpasswd_user.username, htpasswd_user.password)
        assert r.ping().status_code == 200
        assert recorder.statuses.count(401) == 1  # the challenge, answered once

        errors: list[BaseException] = []

        # One repository per thread: concurrent uploads of the same blob (the empty config)
        # into one repository race inside the CNCF registry (MANIFEST_BLOB_UNKNOWN).
        def work(i: int) -> None:
            try:
                r.push(f"{base}-{i}:t{i}", files=[names[i]])
            except BaseException as error:
                errors.append(error)

        threads = [threading.Thread(target=work, args=(i,)) for i in range(len(names))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        for i in range(len(names)):
            assert r.get_tags(f"{base}-{i}") == [f"t{i}"]
    assert len(recorder.loops) == 1
    assert recorder.statuses.count(401) == 1  # credentials went up front ever after


# -- errors, attributes, signatures, hooks ---------------------------------------------------


def test_typed_errors_propagate_unchanged(
    reg: Registry, basic_auth_registry: LocalRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(NotFoundError) as info:
        reg.get_manifest(f"{unique('missing')}:v1")
    assert info.value.status_code == 404
    assert any(str(entry.path).endswith("registry.py") for entry in info.traceback)
    with pytest.raises(InvalidReference):
        reg.get_tags("UPPER/case:bad tag")
    monkeypatch.delenv("ORAS_USER", raising=False)
    monkeypatch.delenv("ORAS_PASS", raising=False)
    with (
        Registry(basic_auth_registry.host, insecure=True) as anonymous,
        pytest.raises(AuthenticationError),
    ):
        anonymous.get_tags("sync/anything")


def test_attributes_forward_to_the_async_registry(registry: LocalRegistry) -> None:
    r = Registry(registry.host, insecure=True, headers={"X-Test": "1"})
    assert isinstance(r.aregistry, AsyncRegistry)
    assert r.hostname == registry.host
    assert r.insecure is True
    assert r.prefix == "http"
    assert r.auth is r.aregistry.auth
    assert r.headers is r.aregistry.headers
    assert r.headers["X-Test"] == "1"
    r.set_header("X-Other", "2")
    assert r.aregistry.headers["X-Other"] == "2"
    r.hostname = "example.invalid:5000"
    assert r.aregistry.hostname == "example.invalid:5000"
    assert r.get_container("repo/name:v1").registry == "example.invalid:5000"
    assert isinstance(r.version(), str)
    items = r.version(return_items=True)
    assert isinstance(items, dict)
    assert items["Version"] == aioras.__version__
    assert "Registry(hostname='example.invalid:5000'" in repr(r)
    r.close()


# oras-py's private methods that subclasses override: they have twins like public ones.
TWINNED_PRIVATE = {"_check_200_response", "_parse_manifest_ref"}


def test_every_async_method_has_a_sync_twin_with_the_same_signature_and_docstring() -> None:
    # close() is aclose's sync counterpart; without_credentials returns a Registry of its own.
    skip = {"aclose", "without_credentials"}
    for name, member in inspect.getmembers(AsyncRegistry, inspect.isfunction):
        if (name.startswith("_") and name not in TWINNED_PRIVATE) or name in skip:
            continue
        twin = getattr(Registry, name, None)
        assert twin is not None, f"Registry has no twin of AsyncRegistry.{name}"
        async_params = list(inspect.signature(member).parameters.values())
        sync_params = list(inspect.signature(twin).parameters.values())
        assert [(p.name, p.kind, p.default) for p in sync_params] == [
            (p.name, p.kind, p.default) for p in async_params
        ], name
        assert twin.__doc__ == member.__doc__, name
        assert (twin.__name__, twin.__qualname__) == (name, f"Registry.{name}")
        assert not inspect.iscoroutinefunction(twin), name
        assert not inspect.isasyncgenfunction(twin), name
    sync_init = inspect.signature(Registry.__init__).parameters.values()
    async_init = inspect.signature(AsyncRegistry.__init__).parameters.values()
    assert [(p.name, p.kind, p.default) for p in sync_init] == [
        (p.name, p.kind, p.default) for p in async_init
    ]
    assert aioras.provider.Registry is aioras.Registry is Registry
    assert aioras.provider.AsyncRegistry is AsyncRegistry


def test_async_class_hook_changes_how_push_uploads(reg: Registry, tmp_cwd: Path) -> None:
    uploaded: list[str] = []

    class Counting(AsyncRegistry):
        async def upload_blob(
            self, blob: Any, container: Any, layer: Any, *a: Any, **k: Any
        ) -> Any:
            uploaded.append(layer["digest"])
            return await super().upload_blob(blob, container, layer, *a, **k)

    class CountingRegistry(Registry):
        async_class = Counting

    (tmp_cwd / "c.txt").write_bytes(b"count me")
    with CountingRegistry(reg.hostname, insecure=True) as r:
        assert isinstance(r.aregistry, Counting)
        r.push(f"{unique('hook')}:v1", files=["c.txt"])
    assert sha256(b"count me") in uploaded
    assert defaults.blank_config_hash in uploaded


def test_subclass_get_container_is_used_for_string_references(reg: Registry, tmp_cwd: Path) -> None:
    repo = unique("aliased")

    class Aliasing(Registry):
        def get_container(self, name: str | Container) -> Container:
            if isinstance(name, str) and name.startswith("alias:"):
                name = f"{repo}:{name.removeprefix('alias:')}"
            return super().get_container(name)

    (tmp_cwd / "a.txt").write_bytes(b"alias")
    with Aliasing(reg.hostname, insecure=True) as r:
        r.push("alias:v2", files=["a.txt"])
        assert r.get_tags("alias:v2") == ["v2"]
    assert reg.get_tags(repo) == ["v2"]


def test_temporary_empty_config() -> None:
    with aioras.provider.temporary_empty_config() as path:
        assert Path(path).read_bytes() == b"{}"
    assert not Path(path).exists()
    assert isinstance("x", aioras.provider.container_type)
    assert isinstance(Container("a/b"), aioras.provider.container_type)


def test_interrupted_call_cancels_its_task() -> None:
    started, cancelled = threading.Event(), threading.Event()

    async def stall(request: httpx.Request) -> httpx.Response:
        started.set()
        try:
            await anyio.sleep(30)
        except anyio.get_cancelled_exc_class():
            cancelled.set()
            raise
        return httpx.Response(200)

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGALRM, interrupt)
    signal.setitimer(signal.ITIMER_REAL, 0.3)
    try:
        with (
            Registry("registry.test", transport=httpx.MockTransport(stall)) as r,
            pytest.raises(KeyboardInterrupt),
        ):
            r.ping()
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert started.is_set()
    assert cancelled.wait(5)


def test_twin_refuses_what_is_not_a_coroutine_method() -> None:
    class Core(AsyncRegistry):
        async def entries(self) -> AsyncIterator[str]:
            yield "an async generator needs a twin kind of its own"

    with pytest.raises(TypeError, match="not a coroutine function"):
        twin(Core.entries)
    with pytest.raises(TypeError, match="not a coroutine function"):
        twin(AsyncRegistry.version)  # type: ignore[arg-type]
