"""Archives never destroy user data: typed errors, whole rollback, limits on what they expand to.

Artifacts are pushed to the real registry; ``out`` holds the user's own files before each
pull, and a refused pull must leave it exactly as it was.
"""

from __future__ import annotations

import contextlib
import gzip
import os
import tarfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from aioras.exceptions import OutputPathError, UnpackLimitExceeded, UnsafePathError
from aioras.registry import AsyncRegistry
from aioras.testing import LocalRegistry
from support.rawartifacts import (
    Layer,
    archive,
    entry,
    fresh_reference,
    plain,
    push_layers,
    symlink,
    tree,
)

pytestmark = pytest.mark.anyio

MiB = 1 << 20
GiB = 1 << 30


@pytest.fixture
def out(tmp_path: Path) -> Path:
    """An output directory already holding the user's files."""
    root = tmp_path / "out"
    (root / "sub").mkdir(parents=True)
    (root / "d").write_text("user data in d")
    (root / "sub" / "own.txt").write_text("user data in sub")
    (root / "keep.txt").write_text("kept")
    return root


CONFLICTS = {
    # d is made a file, then used as a directory: the user's d was unlinked and lost.
    "file-then-member-below-it": [entry("d", b"from the archive"), entry("d/x")],
    # The last member's name is too long for the file system, after d was replaced.
    "name-too-long": [entry("new.txt"), entry("d", b"replaced"), entry("n" * 300)],
    # A file where the user has a directory, after d was replaced.
    "directory-in-the-way": [entry("d", b"replaced"), entry("sub", b"a file")],
}


@pytest.mark.parametrize("members", list(CONFLICTS.values()), ids=list(CONFLICTS))
async def test_failing_archive_leaves_every_existing_file_intact(
    areg: AsyncRegistry,
    registry: LocalRegistry,
    out: Path,
    members: list[tuple[tarfile.TarInfo, bytes | None]],
) -> None:
    ref = fresh_reference(registry, "archive")
    await push_layers(areg, ref, [archive("bundle", *members)])
    before = tree(out)

    with pytest.raises(OutputPathError):
        await areg.pull(ref, outdir=str(out))

    assert tree(out) == before


@pytest.mark.parametrize("title", ["bundle", "sub"], ids=["title-absent", "title-exists"])
async def test_overwrite_false_keeps_existing_archive_members(
    areg: AsyncRegistry, registry: LocalRegistry, out: Path, title: str
) -> None:
    ref = fresh_reference(registry, "archive")
    members = [entry("d", b"theirs"), entry("sub/own.txt", b"theirs"), entry("sub/new.txt", b"new")]
    await push_layers(areg, ref, [archive(title, *members)])
    before = tree(out)

    await areg.pull(ref, outdir=str(out), overwrite=False)

    assert tree(out) == {**before, "sub/new.txt": "new"}


async def test_title_naming_an_existing_directory_is_a_typed_error_leaving_no_temporary_file(
    areg: AsyncRegistry, registry: LocalRegistry, out: Path
) -> None:
    ref = fresh_reference(registry, "archive")
    await push_layers(areg, ref, [plain("new.txt", b"new"), plain("sub", b"not a directory")])
    before = tree(out)

    with pytest.raises(OutputPathError):
        await areg.pull(ref, outdir=str(out), concurrency=1)

    assert tree(out) == before


@pytest.mark.parametrize("title", ["n" * 300, "deep/" + "n" * 300], ids=["top", "nested"])
async def test_title_too_long_for_the_file_system_is_a_typed_error_leaving_nothing(
    areg: AsyncRegistry, registry: LocalRegistry, out: Path, title: str
) -> None:
    ref = fresh_reference(registry, "archive")
    await push_layers(areg, ref, [plain(title, b"data")])
    before = tree(out)

    with pytest.raises(OutputPathError):
        await areg.pull(ref, outdir=str(out))

    assert tree(out) == before


def zero_bomb(expanded: int) -> bytes:
    """A tar.gz of one file of ``expanded`` zero bytes, built without compressing it all."""
    info = tarfile.TarInfo("pkg/zeros.bin")
    info.size = expanded
    header = info.tobuf(format=tarfile.USTAR_FORMAT)
    # Concatenated gzip members are one gzip stream: one compressed MiB, repeated.
    zeros = gzip.compress(bytes(MiB), mtime=0)
    tail = gzip.compress(bytes(1024), mtime=0)  # the end-of-archive blocks
    return gzip.compress(header, mtime=0) + zeros * (expanded // MiB) + tail


@pytest.fixture(scope="module")
def bomb() -> bytes:
    data = zero_bomb(2 * GiB)
    assert len(data) < 2.5 * MiB
    return data


@contextlib.contextmanager
def peak_size(root: Path) -> Iterator[list[int]]:
    """Watch the bytes stored under ``root`` while the block runs; yields [peak]."""
    peak = [0]
    done = threading.Event()

    def watch() -> None:
        while not done.wait(0.005):
            total = 0
            for dirpath, _dirs, files in os.walk(root):
                for name in files:
                    with contextlib.suppress(OSError):
                        total += os.lstat(os.path.join(dirpath, name)).st_size
            peak[0] = max(peak[0], total)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        yield peak
    finally:
        done.set()
        watcher.join()


async def test_decompression_bomb_is_refused_before_256_mib_are_written(
    areg: AsyncRegistry, registry: LocalRegistry, out: Path, bomb: bytes
) -> None:
    # 2 MiB that expand to 2 GiB, pulled with the default limits.
    ref = fresh_reference(registry, "archive")
    await push_layers(areg, ref, [Layer(bomb, "pkg", unpack=True)])
    before = tree(out)

    with peak_size(out) as peak, pytest.raises(UnpackLimitExceeded) as info:
        await areg.pull(ref, outdir=str(out))

    assert info.value.what == "ratio"
    assert peak[0] < 256 * MiB
    assert tree(out) == before


async def test_unpack_limits_are_options_of_each_pull(
    areg: AsyncRegistry, registry: LocalRegistry, tmp_path: Path
) -> None:
    many, big = fresh_reference(registry, "archive"), fresh_reference(registry, "archive")
    await push_layers(
        areg, many, [archive("pkg", *(entry(f"pkg/{i}.txt", b"x") for i in range(20)))]
    )
    await push_layers(areg, big, [archive("pkg", entry("pkg/random.bin", os.urandom(MiB)))])

    with pytest.raises(UnpackLimitExceeded) as info:
        await areg.pull(many, outdir=str(tmp_path / "a"), unpack_max_members=19)
    assert (info.value.what, info.value.limit) == ("members", 19)
    with pytest.raises(UnpackLimitExceeded) as info:
        await areg.pull(big, outdir=str(tmp_path / "b"), unpack_max_bytes=MiB)
    assert (info.value.what, info.value.limit) == ("bytes", MiB)
    assert tree(tmp_path) == {}

    await areg.pull(many, outdir=str(tmp_path / "a"), unpack_max_members=20)
    await areg.pull(big, outdir=str(tmp_path / "b"), unpack_max_bytes=2 * MiB)
    assert len(tree(tmp_path / "a" / "pkg")) == 20
    assert len(tree(tmp_path / "b" / "pkg")) == 1


CONTROL = {
    "title-newline": plain("evil\nname.txt", b"x"),
    "title-escape": plain("evil\x1b[2Jname.txt", b"x"),
    "title-c1": plain("evil\x9bname.txt", b"x"),
    "member-newline": archive("pkg", entry("pkg/evil\nname.txt")),
    "member-delete": archive("pkg", entry("pkg/evil\x7fname.txt")),
    "symlink-target-newline": archive("pkg", entry("pkg/a"), symlink("pkg/l", "a\n")),
}


@pytest.mark.parametrize("layer", list(CONTROL.values()), ids=list(CONTROL))
async def test_control_characters_in_titles_and_member_names_are_refused(
    areg: AsyncRegistry, registry: LocalRegistry, out: Path, layer: Layer
) -> None:
    ref = fresh_reference(registry, "archive")
    await push_layers(areg, ref, [layer])
    before = tree(out)

    with pytest.raises(UnsafePathError):
        await areg.pull(ref, outdir=str(out))

    assert tree(out) == before
