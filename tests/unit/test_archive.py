"""Reproducible archives and safe extraction, with real tar files."""

from __future__ import annotations

import gzip
import io
import os
import stat
import tarfile
from collections.abc import Iterable
from pathlib import Path

import pytest

from aioras.exceptions import UnsafePathError
from aioras.utils import extract_targz, make_targz

LONG = "l" * 120


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "src" / "mydir"
    (root / "sub" / "deeper").mkdir(parents=True)
    (root / "empty").mkdir()
    (root / "a.txt").write_text("alpha\n")
    (root / "sub" / "b.bin").write_bytes(os.urandom(70_000))
    (root / "sub" / "deeper" / "c").write_text("c")
    (root / "run.sh").write_text("#!/bin/sh\necho hi\n")
    (root / "run.sh").chmod(0o700)
    (root / "ünïcode.txt").write_text("u")
    (root / LONG).write_text("long name")
    (root / "link").symlink_to("a.txt")
    os.link(root / "a.txt", root / "hard")
    return root


def all_files(base: Path) -> dict[str, tuple[str, bytes | str]]:
    """Map relative path -> (kind, content or link target) for everything under base."""
    out: dict[str, tuple[str, bytes | str]] = {}
    for dirpath, dirnames, filenames in os.walk(base):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            rel = str(path.relative_to(base))
            if path.is_symlink():
                out[rel] = ("link", os.readlink(path))
            elif path.is_dir():
                out[rel] = ("dir", "")
            else:
                out[rel] = ("file", path.read_bytes())
    return out


# make_targz ---------------------------------------------------------------------------------


def test_same_tree_gives_same_bytes(tree: Path, tmp_path: Path) -> None:
    first = Path(make_targz(str(tree), str(tmp_path / "one.tar.gz")))
    second = Path(make_targz(str(tree), str(tmp_path / "two-other-name.tar.gz")))
    assert first.read_bytes() == second.read_bytes()

    # Touching every entry and loosening modes changes nothing either.
    for dirpath, dirnames, filenames in os.walk(tree):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            if not os.path.islink(path):
                os.utime(path, (1_700_000_000, 1_700_000_000))
                os.chmod(path, os.stat(path).st_mode | stat.S_IWGRP)
    third = Path(make_targz(str(tree), str(tmp_path / "three.tar.gz")))
    assert third.read_bytes() == first.read_bytes()


def test_temp_archive_default(tree: Path) -> None:
    path = make_targz(tree)
    try:
        assert path.endswith(".tar.gz")
        assert tarfile.is_tarfile(path)
    finally:
        os.unlink(path)


def test_gzip_header_has_no_mtime_or_name(tree: Path, tmp_path: Path) -> None:
    data = Path(make_targz(tree, tmp_path / "x.tar.gz")).read_bytes()
    assert data[:2] == b"\x1f\x8b"
    assert data[3] & 0x08 == 0  # FNAME flag clear
    assert data[4:8] == b"\0\0\0\0"  # MTIME zero


def test_members_are_normalised_and_sorted(tree: Path, tmp_path: Path) -> None:
    path = make_targz(tree, tmp_path / "x.tar.gz")
    with tarfile.open(path) as tar:
        members = tar.getmembers()
    names = [m.name for m in members]
    assert names[0] == "mydir"
    assert all(n == "mydir" or n.startswith("mydir/") for n in names)
    assert names == [
        "mydir",
        "mydir/a.txt",
        "mydir/empty",
        "mydir/hard",
        "mydir/link",
        f"mydir/{LONG}",
        "mydir/run.sh",
        "mydir/sub",
        "mydir/sub/b.bin",
        "mydir/sub/deeper",
        "mydir/sub/deeper/c",
        "mydir/ünïcode.txt",
    ]
    for m in members:
        assert (m.mtime, m.uid, m.gid, m.uname, m.gname) == (0, 0, 0, "", "")
    by_name = {m.name: m for m in members}
    assert by_name["mydir"].mode == 0o755
    assert by_name["mydir/a.txt"].mode == 0o644
    assert by_name["mydir/run.sh"].mode == 0o755
    assert by_name["mydir/link"].issym()
    assert by_name["mydir/link"].linkname == "a.txt"
    assert by_name["mydir/hard"].islnk()
    assert by_name["mydir/hard"].linkname == "mydir/a.txt"


def test_make_targz_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        make_targz(tmp_path / "missing", tmp_path / "out.tar.gz")
    assert not (tmp_path / "out.tar.gz").exists()


def test_archive_written_inside_its_own_tree_skips_itself(tree: Path) -> None:
    dest = tree / "self.tar.gz"
    make_targz(tree, dest)
    with tarfile.open(dest) as tar:
        assert "mydir/self.tar.gz" not in tar.getnames()


def test_special_files_are_skipped(tmp_path: Path) -> None:
    src = tmp_path / "d"
    src.mkdir()
    os.mkfifo(src / "fifo")
    (src / "f").write_text("f")
    with tarfile.open(make_targz(src, tmp_path / "x.tar.gz")) as tar:
        assert tar.getnames() == ["d", "d/f"]


# Round trip ---------------------------------------------------------------------------------


def test_round_trip(tree: Path, tmp_path: Path) -> None:
    archive = make_targz(tree, tmp_path / "x.tar.gz")
    out = tmp_path / "out" / "nested"
    assert extract_targz(archive, out) == [str(out / "mydir")]
    assert all_files(out / "mydir") == all_files(tree)
    assert os.stat(out / "mydir" / "run.sh").st_mode & 0o111
    assert not os.stat(out / "mydir" / "a.txt").st_mode & 0o111
    assert os.path.samefile(out / "mydir" / "a.txt", out / "mydir" / "hard")
    # Extracting again over the same tree works (files are replaced).
    assert extract_targz(archive, out) == [str(out / "mydir")]
    assert all_files(out / "mydir") == all_files(tree)


def make_tar(path: Path, members: Iterable[tuple[tarfile.TarInfo, bytes]], gz: bool = True) -> Path:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in members:
            info.size = len(data) if info.isreg() else 0
            tar.addfile(info, io.BytesIO(data) if info.isreg() else None)
    raw = buf.getvalue()
    path.write_bytes(gzip.compress(raw) if gz else raw)
    return path


def reg(
    name: str, data: bytes = b"x", mode: int = 0o644, mtime: int = 0
) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.mode = mode
    info.mtime = mtime
    return info, data


def special(name: str, kind: bytes, linkname: str = "") -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    info.mode = 0o755 if kind == tarfile.DIRTYPE else 0o644
    return info, b""


def test_plain_tar_dot_prefix_and_mtime(tmp_path: Path) -> None:
    archive = make_tar(
        tmp_path / "x.tar",
        [
            special("./", tarfile.DIRTYPE),
            reg("./top.txt", b"top", mtime=1_600_000_000),
            reg("./d/inner.txt", b"in", mode=0o4777),
            special("./d/rel", tarfile.SYMTYPE, "../top.txt"),
        ],
        gz=False,
    )
    out = tmp_path / "out"
    out.mkdir()
    assert extract_targz(archive, out) == [str(out / "top.txt"), str(out / "d")]
    assert (out / "top.txt").read_bytes() == b"top"
    assert os.stat(out / "top.txt").st_mtime == 1_600_000_000
    # setuid and world-write never survive; the executable bit does.
    assert stat.S_IMODE(os.stat(out / "d" / "inner.txt").st_mode) & 0o7022 == 0
    assert os.stat(out / "d" / "inner.txt").st_mode & 0o100
    assert (out / "d" / "rel").read_bytes() == b"top"


def test_safe_links_inside_are_kept(tmp_path: Path) -> None:
    archive = make_tar(
        tmp_path / "x.tar.gz",
        [
            reg("a/file", b"data"),
            special("a/sib", tarfile.SYMTYPE, "file"),
            special("a/dirlink", tarfile.SYMTYPE, "../b"),
            special("b", tarfile.DIRTYPE),
            special("a/hard", tarfile.LNKTYPE, "a/file"),
        ],
    )
    out = tmp_path / "out"
    extract_targz(archive, out)
    assert (out / "a" / "sib").read_bytes() == b"data"
    assert os.readlink(out / "a" / "dirlink") == "../b"
    assert os.path.samefile(out / "a" / "hard", out / "a" / "file")


HOSTILE: dict[str, list[tuple[tarfile.TarInfo, bytes]]] = {
    "dotdot": [reg("ok.txt"), reg("../escape.txt")],
    "dotdot-inner": [reg("a/../../escape.txt")],
    "dotdot-only": [reg("..")],
    "absolute": [reg("/tmp/aioras-absolute-escape.txt")],
    "backslash-dotdot": [reg("a\\..\\..\\escape.txt")],
    "symlink-absolute": [special("l", tarfile.SYMTYPE, "/etc/passwd")],
    "symlink-out": [special("l", tarfile.SYMTYPE, "../escape.txt")],
    "symlink-out-deep": [special("a/b/l", tarfile.SYMTYPE, "../../../escape.txt")],
    "symlink-via-link-dotdot": [
        special("d", tarfile.SYMTYPE, "."),
        special("l", tarfile.SYMTYPE, "d/.."),
    ],
    "symlink-chain-out": [
        special("a", tarfile.SYMTYPE, "b/.."),
        special("b", tarfile.SYMTYPE, "c/.."),
        special("c", tarfile.SYMTYPE, ".."),
    ],
    "symlink-loop": [special("a", tarfile.SYMTYPE, "b"), special("b", tarfile.SYMTYPE, "a/x")],
    "write-through-symlink": [
        special("sub", tarfile.DIRTYPE),
        special("l", tarfile.SYMTYPE, "sub"),
        reg("l/x.txt"),
    ],
    "write-through-outward-symlink": [
        special("l", tarfile.SYMTYPE, ".."),
        reg("l/escape.txt"),
    ],
    "hardlink-out": [special("h", tarfile.LNKTYPE, "../escape.txt")],
    "hardlink-absolute": [special("h", tarfile.LNKTYPE, "/etc/passwd")],
    "hardlink-to-missing": [special("h", tarfile.LNKTYPE, "not-in-archive")],
    "hardlink-to-dir": [special("d", tarfile.DIRTYPE), special("h", tarfile.LNKTYPE, "d")],
    "chardev": [special("dev", tarfile.CHRTYPE)],
    "blockdev": [special("dev", tarfile.BLKTYPE)],
    "fifo": [special("fifo", tarfile.FIFOTYPE)],
    "empty-name": [reg("")],
}


def snapshot(base: Path) -> set[str]:
    return {str(p.relative_to(base)) for p in base.rglob("*")}


@pytest.fixture(params=["stdlib-filter", "own-checks-only"])
def stdlib_filter(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run twice: with tarfile's data filter as second opinion, and as if it did not exist."""
    if request.param == "own-checks-only":
        monkeypatch.delattr(tarfile, "data_filter", raising=False)


@pytest.mark.usefixtures("stdlib_filter")
@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_members_are_refused_before_writing(tmp_path: Path, name: str) -> None:
    work = tmp_path / "work"
    work.mkdir()
    archive = make_tar(tmp_path / "evil.tar.gz", [reg("first.txt"), *HOSTILE[name]])
    before = snapshot(tmp_path)
    out = work / "out"
    with pytest.raises(UnsafePathError):
        extract_targz(archive, out)
    # Nothing at all was written: not outside, not even inside.
    assert snapshot(tmp_path) == before
    assert not out.exists()
    assert not Path("/tmp/aioras-absolute-escape.txt").exists()


@pytest.mark.usefixtures("stdlib_filter")
def test_existing_symlink_in_outdir_is_not_followed_out(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    out = tmp_path / "out"
    out.mkdir()
    (out / "pre").symlink_to(outside)
    archive = make_tar(
        tmp_path / "x.tar.gz",
        [reg("made-first.txt"), reg("newdir/x"), reg("pre/sub/escape.txt")],
    )
    with pytest.raises(UnsafePathError):
        extract_targz(archive, out)
    assert list(outside.iterdir()) == []
    # What the call created before failing is gone; what was there stays.
    assert sorted(p.name for p in out.iterdir()) == ["pre"]


@pytest.mark.usefixtures("stdlib_filter")
def test_existing_symlink_target_escaping_via_outdir_link(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    out = tmp_path / "out"
    out.mkdir()
    (out / "pre").symlink_to(outside)
    archive = make_tar(tmp_path / "x.tar.gz", [special("l", tarfile.SYMTYPE, "pre/secret")])
    with pytest.raises(UnsafePathError):
        extract_targz(archive, out)
    assert sorted(p.name for p in out.iterdir()) == ["pre"]


def test_existing_symlink_in_place_of_a_file(tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("original")
    out = tmp_path / "out"
    out.mkdir()
    (out / "inside.txt").write_text("inside")
    (out / "f.txt").symlink_to(victim)
    (out / "g.txt").symlink_to("inside.txt")
    # A link leading out where a file goes: refused before anything is written.
    with pytest.raises(UnsafePathError):
        extract_targz(make_tar(tmp_path / "x.tar.gz", [reg("f.txt", b"new")]), out)
    assert victim.read_text() == "original"
    # A link staying inside is replaced by the file, never written through.
    extract_targz(make_tar(tmp_path / "y.tar.gz", [reg("g.txt", b"new")]), out)
    assert (out / "inside.txt").read_text() == "inside"
    assert not (out / "g.txt").is_symlink()
    assert (out / "g.txt").read_bytes() == b"new"


def test_failure_midway_removes_created_parents(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    archive = make_tar(tmp_path / "x.tar.gz", [reg("a/b/c.txt"), reg("z/../../x")])
    out = tmp_path / "new" / "parents" / "out"
    with pytest.raises(UnsafePathError):
        extract_targz(archive, out)
    assert not (tmp_path / "new").exists()


def test_unreadable_archive(tmp_path: Path) -> None:
    bad = tmp_path / "bad.tar.gz"
    bad.write_bytes(b"not an archive at all" * 40)
    with pytest.raises(tarfile.ReadError):
        extract_targz(bad, tmp_path / "out")
    assert not (tmp_path / "out").exists()
