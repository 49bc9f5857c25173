"""What a pull costs in requests and worker-thread hops (counts, not timings).

Against the real registry. Several pulls of tags that share a layer, started at once on one
``AsyncRegistry``, fetch that layer once: the others copy the verified file, hashed and
verified again. A pull of small layers hands its file-system work to worker threads in few
calls (each hop costs the event loop more than the work in it), on a few threads.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from pathlib import Path
from typing import Any

import anyio
import anyio.from_thread
import anyio.to_thread
import pytest

from aioras import AsyncRegistry, defaults
from aioras import digest as digest_module
from aioras._files import blobio
from aioras.exceptions import StorageError, UnreadableArchive
from aioras.operations import pull as pull_operation
from aioras.remote._downloads import SharedDownload
from aioras.testing import LocalRegistry
from support.hops import count_thread_hops
from support.rawartifacts import Layer, archive, entry, fresh_reference, plain, push_layers

pytestmark = pytest.mark.anyio

TAGS = 5


async def push_tags(areg: AsyncRegistry, registry: LocalRegistry, tmp: Path) -> list[str]:
    """``TAGS`` tags of one repository: a shared layer and one of each tag's own."""
    (tmp / "shared.bin").write_bytes(os.urandom(300_000))
    repo = registry.reference(f"shared/{os.urandom(5).hex()}")
    refs = []
    for tag in range(TAGS):
        own = tmp / f"own{tag}.bin"
        own.write_bytes(os.urandom(50_000))
        refs.append(f"{repo}:t{tag}")
        await areg.push(refs[-1], files=[str(tmp / "shared.bin"), str(own)])
    return refs


async def push_two_small_files(areg: AsyncRegistry, registry: LocalRegistry, repo: str) -> str:
    """An artifact of a.txt and b.txt (20 kB each, written in the working directory)."""
    for name in ("a.txt", "b.txt"):
        Path(name).write_bytes(os.urandom(20_000))
    ref = registry.reference(f"{repo}/{os.urandom(5).hex()}:v1")
    await areg.push(ref, files=["a.txt", "b.txt"])
    return ref


async def test_concurrent_pulls_of_a_shared_layer_fetch_it_once(
    registry: LocalRegistry, tmp_cwd: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with AsyncRegistry(registry.host, insecure=True) as pusher:
        refs = await push_tags(pusher, registry, tmp_cwd)
    async with AsyncRegistry(registry.host, insecure=True) as areg:
        shared_digest = (await areg.get_manifest(refs[0]))["layers"][0]["digest"]
        areg._transport.pacer.sent.clear()
        # Only downloads in flight at once are shared: the first of the shared layer waits
        # until every pull has asked for it, so that the count does not hang on timing.
        asked = 0
        everyone = anyio.Event()
        download_blob, download = areg.download_blob, areg._blobs._download

        async def asking(container: Any, digest: str, outfile: Any, **kw: Any) -> str:
            nonlocal asked
            if digest == shared_digest:
                asked += 1
                if asked == TAGS:
                    everyone.set()
            return await download_blob(container, digest, outfile, **kw)

        async def leading(get: Any, *args: Any) -> str:
            if get.digest == shared_digest:
                await everyone.wait()
            return await download(get, *args)

        monkeypatch.setattr(areg, "download_blob", asking)
        monkeypatch.setattr(areg._blobs, "_download", leading)
        async with anyio.create_task_group() as tg:
            for i, ref in enumerate(refs):
                tg.start_soon(lambda ref=ref, i=i: areg.pull(ref, outdir=str(tmp_cwd / f"o{i}")))
        gets = areg._transport.pacer.sent[(registry.host, "GET")]
    # One manifest per tag, the shared layer once, each tag's own layer (was 3 per tag).
    assert gets == TAGS + 1 + TAGS
    shared = (tmp_cwd / "shared.bin").read_bytes()
    for i in range(TAGS):
        assert (tmp_cwd / f"o{i}" / "shared.bin").read_bytes() == shared
        assert (tmp_cwd / f"o{i}" / f"own{i}.bin").read_bytes() == (
            tmp_cwd / f"own{i}.bin"
        ).read_bytes()


async def test_a_shared_file_changed_since_it_was_verified_is_not_copied(
    tmp_path: Path,
) -> None:
    """A follower re-verifies the leader's file: altered bytes make it download instead."""
    good = b"the blob" * 1000
    digest = "sha256:" + hashlib.sha256(good).hexdigest()
    source = tmp_path / "leader"
    source.write_bytes(good[:-1] + b"!")  # changed after the leader verified it
    shared = _kept(source)
    shared.finish()
    out = tmp_path / "copy"
    assert await shared.copy_into(out, digest, len(good)) is None
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["leader"]  # no temporary file left


def _kept(source: Path, followers: int = 1) -> SharedDownload:
    """A shared download whose leader kept ``source`` open, with ``followers`` joined."""
    shared = SharedDownload()
    for _ in range(followers):
        shared.join()
    fd = os.open(source, os.O_RDONLY)
    try:
        shared.keep(fd)
    finally:
        os.close(fd)
    return shared


def _finished_leader(source: Path, content: bytes, followers: int = 1) -> SharedDownload:
    """A shared download whose leader verified ``content`` into ``source`` and finished."""
    source.write_bytes(content)
    shared = _kept(source, followers)
    shared.finish()
    return shared


def _sha256(content: bytes) -> str:
    return "sha256:" + hashlib.sha256(content).hexdigest()


def _open_descriptors() -> int:
    return len(os.listdir("/proc/self/fd"))


async def test_a_leader_nobody_waits_for_keeps_no_descriptor(tmp_path: Path) -> None:
    """No follower when the leader's file is verified: nothing is kept, a late one downloads."""
    good = b"the blob" * 1000
    source = tmp_path / "leader"
    source.write_bytes(good)
    shared = SharedDownload()
    fd = os.open(source, os.O_RDONLY)
    try:
        before = _open_descriptors()
        shared.keep(fd)
        assert _open_descriptors() == before
    finally:
        os.close(fd)
    shared.join()  # asks after the leader's file was verified
    shared.finish()
    digest = "sha256:" + hashlib.sha256(good).hexdigest()
    assert await shared.copy_into(tmp_path / "copy", digest, len(good)) is None


async def test_a_shared_file_is_copied_whole_and_verified(tmp_path: Path) -> None:
    good = os.urandom(3 * 1024 * 1024 + 17)  # several reads of the copy
    digest = "sha256:" + hashlib.sha256(good).hexdigest()
    source = tmp_path / "leader"
    source.write_bytes(good)
    shared = _kept(source)
    source.unlink()  # the leader's file moved on: the kept descriptor still reads it
    shared.finish()
    out = tmp_path / "copy"
    assert await shared.copy_into(out, digest, len(good)) == str(out)
    assert out.read_bytes() == good


async def test_a_shared_file_is_copied_verified_and_renamed_in_one_thread_hop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A follower's copy of a 2 MiB layer: copy, verify and rename in one call (it was two)."""
    good = os.urandom(2 * 1024 * 1024)
    shared = _finished_leader(tmp_path / "leader", good)
    hops = count_thread_hops(monkeypatch)
    out = tmp_path / "copy"
    assert await shared.copy_into(out, _sha256(good), len(good)) == str(out)
    assert hops[0] == 1
    assert out.read_bytes() == good


async def _copy_all(
    shared: SharedDownload, outs: list[Path], content: bytes, sizes: list[int] | None = None
) -> list[str | BaseException | None]:
    """Every follower's ``copy_into`` at once (expecting ``sizes``, default the content's);
    what each returned or raised, in order."""
    results: list[str | BaseException | None] = [None] * len(outs)
    expected = sizes or [len(content)] * len(outs)

    async def one(i: int) -> None:
        try:
            results[i] = await shared.copy_into(outs[i], _sha256(content), expected[i])
        except Exception as error:
            results[i] = error

    async with anyio.create_task_group() as group:
        for i in range(len(outs)):
            group.start_soon(one, i)
    return results


async def test_followers_woken_together_are_copied_in_one_thread_call_hashing_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Four followers of a 2 MiB layer: one read and one hash of it, not four of each."""
    good = os.urandom(2 * 1024 * 1024)
    shared = _finished_leader(tmp_path / "leader", good, followers=4)
    hashed = [0]
    real_update = digest_module.Hasher.update

    def counted(self: digest_module.Hasher, data: bytes | bytearray | memoryview) -> None:
        hashed[0] += len(data)
        real_update(self, data)

    monkeypatch.setattr(digest_module.Hasher, "update", counted)
    hops = count_thread_hops(monkeypatch)
    outs = [tmp_path / f"copy{i}" for i in range(4)]
    assert await _copy_all(shared, outs, good) == [str(out) for out in outs]
    assert hops[0] == 1
    assert hashed[0] == len(good)  # it was 4 x
    for out in outs:
        assert out.read_bytes() == good


async def test_followers_copied_together_from_a_changed_file_each_download_instead(
    tmp_path: Path,
) -> None:
    good = b"the blob" * 1000
    shared = _finished_leader(tmp_path / "leader", good[:-1] + b"!", followers=3)
    outs = [tmp_path / f"copy{i}" for i in range(3)]
    assert await _copy_all(shared, outs, good) == [None, None, None]
    assert [p.name for p in tmp_path.iterdir()] == ["leader"]  # no temporary file left


@pytest.mark.parametrize("wrong_first", [True, False])
async def test_followers_expecting_another_size_are_each_checked_against_their_own(
    tmp_path: Path, wrong_first: bool
) -> None:
    """Two manifests giving one digest two sizes: whichever copies first, only the right
    size is committed; the other follower is sent to download (and fail) on its own."""
    good = os.urandom(300_000)
    shared = _finished_leader(tmp_path / "leader", good, followers=2)
    sizes = [len(good) + 1, len(good)] if wrong_first else [len(good), len(good) + 1]
    outs = [tmp_path / "copy0", tmp_path / "copy1"]
    results = await _copy_all(shared, outs, good, sizes)
    right = sizes.index(len(good))
    assert results[right] == str(outs[right])
    assert results[1 - right] is None
    assert outs[right].read_bytes() == good
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["leader", outs[right].name])


async def test_a_follower_whose_copy_cannot_be_written_fails_alone(tmp_path: Path) -> None:
    good = os.urandom(300_000)
    shared = _finished_leader(tmp_path / "leader", good, followers=3)
    (tmp_path / "a-file").write_bytes(b"in the way")
    outs = [tmp_path / "copy0", tmp_path / "a-file" / "copy1", tmp_path / "copy2"]
    results = await _copy_all(shared, outs, good)
    assert results[0] == str(outs[0])
    assert results[2] == str(outs[2])
    assert isinstance(results[1], StorageError)
    assert outs[0].read_bytes() == outs[2].read_bytes() == good
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file", "copy0", "copy2", "leader"]


async def test_a_pull_of_two_small_layers_takes_four_thread_hops(
    areg: AsyncRegistry, registry: LocalRegistry, tmp_cwd: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ref = await push_two_small_files(areg, registry, "hops")
    hops = count_thread_hops(monkeypatch)
    await areg.pull(ref, outdir=str(tmp_cwd / "out"))
    # Plan and open the output (1); per layer, create+write+verify+rename (1); put both in
    # place, check links and commit (1). It was 12 (a hop for each step), then 6.
    assert hops[0] == 1 + 2 + 1
    assert (tmp_cwd / "out" / "a.txt").read_bytes() == (tmp_cwd / "a.txt").read_bytes()


async def test_concurrent_pushes_of_a_shared_layer_ask_for_it_once_each(
    registry: LocalRegistry, tmp_cwd: Path
) -> None:
    """A push that waited for another's upload of the same blob takes its answer: no HEAD."""
    (tmp_cwd / "shared.bin").write_bytes(os.urandom(300_000))
    for tag in range(TAGS):
        (tmp_cwd / f"own{tag}.bin").write_bytes(os.urandom(50_000))
    repo = registry.reference(f"pushshared/{os.urandom(5).hex()}")
    async with AsyncRegistry(registry.host, insecure=True) as areg:
        async with anyio.create_task_group() as tg:
            for tag in range(TAGS):
                tg.start_soon(
                    lambda tag=tag: areg.push(
                        f"{repo}:t{tag}", files=["shared.bin", f"own{tag}.bin"]
                    )
                )
        heads = areg._transport.pacer.sent[(registry.host, "HEAD")]
        for tag in range(TAGS):
            layers = (await areg.get_manifest(f"{repo}:t{tag}"))["layers"]
            assert [layer["annotations"]["org.opencontainers.image.title"] for layer in layers] == [
                "shared.bin",
                f"own{tag}.bin",
            ]
    # Each push asks once for each of its three blobs (config, shared, own) at most; a push
    # that came while another checked for or sent the shared layer or the config asks no
    # more (7 in all when every push arrives in time: tests/unit/test_upload_once.py).
    assert heads <= 3 * TAGS


async def test_many_pulls_at_once_do_their_file_work_on_a_few_threads(
    areg: AsyncRegistry, registry: LocalRegistry, tmp_cwd: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # With anyio's 40 threads, 16 pulls at once kept ~16 threads writing and placing files,
    # each taking the GIL from the event loop; defaults.file_threads is the cap.
    ref = await push_two_small_files(areg, registry, "threads")
    lock = threading.Lock()
    running = [0, 0]  # now, most at once
    real = anyio.to_thread.run_sync

    def overlapping(func: Any) -> Any:
        def run(*args: Any) -> Any:
            with lock:
                running[0] += 1
                running[1] = max(running)
            try:
                time.sleep(0.005)  # long enough for calls of other pulls to overlap
                return func(*args)
            finally:
                with lock:
                    running[0] -= 1

        return run

    async def tracked(func: Any, *args: Any, **kwargs: Any) -> Any:
        return await real(overlapping(func), *args, **kwargs)

    monkeypatch.setattr(anyio.to_thread, "run_sync", tracked)
    async with anyio.create_task_group() as tg:
        for i in range(16):
            tg.start_soon(lambda i=i: areg.pull(ref, outdir=str(tmp_cwd / f"o{i}")))
    assert 1 <= running[1] <= defaults.file_threads, running
    for i in range(16):
        assert (tmp_cwd / f"o{i}" / "b.txt").read_bytes() == (tmp_cwd / "b.txt").read_bytes()


async def test_layers_are_put_in_place_in_the_manifest_order_whatever_order_they_arrive(
    areg: AsyncRegistry, registry: LocalRegistry, tmp_cwd: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An archive holding d/x.txt, then a file titled d/x.txt: the file is the later layer.
    first = archive("d", entry("d/x.txt", b"from the archive"))
    ref = fresh_reference(registry, "order")
    await push_layers(areg, ref, [first, plain("d/x.txt", b"from the file")])
    slow = "sha256:" + hashlib.sha256(first.blob).hexdigest()
    download_blob = areg.download_blob

    async def archive_last(container: Any, digest: str, outfile: Any, **kw: Any) -> str:
        if digest == slow:
            await anyio.sleep(0.3)  # the file's download finishes first
        return await download_blob(container, digest, outfile, **kw)

    monkeypatch.setattr(areg, "download_blob", archive_last)
    await areg.pull(ref, outdir=str(tmp_cwd / "out"))
    assert (tmp_cwd / "out" / "d" / "x.txt").read_bytes() == b"from the file"


async def test_an_archive_is_unpacked_while_later_layers_still_download(
    areg: AsyncRegistry, registry: LocalRegistry, tmp_cwd: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    later = plain("later.txt", os.urandom(1000))
    ref = fresh_reference(registry, "overlap")
    await push_layers(areg, ref, [archive("d", entry("d/x.txt", b"x")), later])
    slow = "sha256:" + hashlib.sha256(later.blob).hexdigest()
    seen_while_downloading: list[bool] = []
    download_blob = areg.download_blob
    unpacked = anyio.Event()
    real_unpack = pull_operation.unpack_into

    def unpack_and_tell(*args: Any, **kwargs: Any) -> None:
        real_unpack(*args, **kwargs)
        anyio.from_thread.run_sync(unpacked.set)

    async def slow_later(container: Any, digest: str, outfile: Any, **kw: Any) -> str:
        if digest == slow:
            with anyio.move_on_after(10):  # an archive left for the end is not unpacked by then
                await unpacked.wait()
            seen_while_downloading.append((tmp_cwd / "out" / "d" / "x.txt").exists())
        return await download_blob(container, digest, outfile, **kw)

    monkeypatch.setattr(pull_operation, "unpack_into", unpack_and_tell)
    monkeypatch.setattr(areg, "download_blob", slow_later)
    await areg.pull(ref, outdir=str(tmp_cwd / "out"))
    assert seen_while_downloading == [True]
    assert (tmp_cwd / "out" / "later.txt").read_bytes() == later.blob


async def test_a_file_placed_before_a_failing_archive_is_rolled_back(
    areg: AsyncRegistry, registry: LocalRegistry, tmp_cwd: Path
) -> None:
    ref = fresh_reference(registry, "rollback")
    not_a_tar = Layer(b"not a tar archive at all", "bad", unpack=True)
    await push_layers(areg, ref, [plain("a.txt", b"first"), not_a_tar])
    (tmp_cwd / "out").mkdir()
    with pytest.raises(UnreadableArchive):
        await areg.pull(ref, outdir=str(tmp_cwd / "out"))
    assert list((tmp_cwd / "out").iterdir()) == []


async def test_a_progress_callback_failing_at_done_rolls_the_pull_back(
    areg: AsyncRegistry, registry: LocalRegistry, tmp_cwd: Path
) -> None:
    ref = fresh_reference(registry, "donefails")
    await push_layers(areg, ref, [plain("a.txt", b"first"), plain("b.txt", b"second")])

    def refuse(event: Any) -> None:
        if event.kind == "done":
            raise RuntimeError("the caller gives up")

    (tmp_cwd / "out").mkdir()
    with pytest.raises(RuntimeError, match="gives up"):
        await areg.pull(ref, outdir=str(tmp_cwd / "out"), progress=refuse)
    assert list((tmp_cwd / "out").iterdir()) == []


async def test_a_large_shared_copy_takes_several_short_thread_calls(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(blobio, "_COPY_CALL", 1024 * 1024)
    good = os.urandom(3 * 1024 * 1024 + 17)
    shared = _finished_leader(tmp_path / "leader", good)
    hops = count_thread_hops(monkeypatch)
    out = tmp_path / "copy"
    assert await shared.copy_into(out, _sha256(good), len(good)) == str(out)
    assert out.read_bytes() == good
    assert hops[0] == 4  # four calls of at most 1 MiB, the last also verifying and renaming
