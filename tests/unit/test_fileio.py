"""File and path helpers of aioras.utils."""

from __future__ import annotations

import errno
import hashlib
import io
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

import aioras
import aioras.utils
from aioras.exceptions import UnsafePathError
from aioras.utils import fileio


def test_utils_reexports_everything() -> None:
    for name in aioras.utils.__all__:
        assert hasattr(aioras.utils, name), name
    assert set(fileio.__all__) <= set(aioras.utils.__all__)
    assert {"make_targz", "extract_targz"} <= set(aioras.utils.__all__)


def test_workdir_changes_and_restores(tmp_path: Path) -> None:
    here = os.getcwd()
    with fileio.workdir(tmp_path):
        assert os.getcwd() == str(tmp_path.resolve())
    assert os.getcwd() == here
    with pytest.raises(RuntimeError), fileio.workdir(str(tmp_path)):
        raise RuntimeError("boom")
    assert os.getcwd() == here


def test_sanitize_path(tmp_path: Path) -> None:
    base = tmp_path / "dl"
    base.mkdir()
    assert fileio.sanitize_path(base, base / "a" / "b.txt") == str(base.resolve() / "a" / "b.txt")
    assert fileio.sanitize_path(str(base), str(base)) == str(base.resolve())
    # The user guide's call shape.
    assert fileio.sanitize_path(str(base), os.path.join(str(base), "x")) == str(
        base.resolve() / "x"
    )
    for bad in (base / ".." / "x", tmp_path / "dlx", Path("/etc/passwd")):
        with pytest.raises(UnsafePathError):
            fileio.sanitize_path(base, bad)
    (base / "out").symlink_to(tmp_path)
    with pytest.raises(UnsafePathError):
        fileio.sanitize_path(base, base / "out" / "x")


@pytest.mark.parametrize("title", ["a.txt", "dir/a.txt", "a..b", "...", "./a", "dir/", "C", "x:y"])
def test_safe_title_accepts(title: str) -> None:
    assert fileio.safe_title(title) == title


@pytest.mark.parametrize(
    "title",
    [
        "",
        "..",
        "../a",
        "a/../b",
        "a/..",
        "/abs",
        "\\abs",
        "C:\\x",
        "c:/x",
        "C:",
        "a\\..\\b",
        "a\0b",
    ],
)
def test_safe_title_refuses(title: str) -> None:
    with pytest.raises(UnsafePathError):
        fileio.safe_title(title)


def test_get_file_hash_and_size(tmp_path: Path) -> None:
    path = tmp_path / "f"
    data = os.urandom(3 * 1024 * 1024 + 17)
    path.write_bytes(data)
    assert fileio.get_file_hash(path) == hashlib.sha256(data).hexdigest()
    assert fileio.get_file_hash(str(path), "sha512") == hashlib.sha512(data).hexdigest()
    assert fileio.get_file_hash(path, "md5") == hashlib.md5(data).hexdigest()
    assert fileio.get_size(path) == len(data)
    with pytest.raises(ValueError, match="unsupported hash type"):
        fileio.get_file_hash(path, "nope")


def test_mkdir_p(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "c"
    fileio.mkdir_p(target)
    fileio.mkdir_p(str(target))
    assert target.is_dir()
    (tmp_path / "file").write_text("")
    with pytest.raises(FileExistsError):
        fileio.mkdir_p(tmp_path / "file")


def test_get_tmpdir(tmp_path: Path) -> None:
    made = fileio.get_tmpdir(tmp_path, prefix="pre")
    assert os.path.isdir(made)
    assert os.path.basename(made).startswith("pre.")
    assert os.path.dirname(made) == str(tmp_path)
    other = fileio.get_tmpdir(tmp_path, create=False)
    assert not os.path.exists(other)
    assert os.path.basename(other).startswith("oras-tmp.")  # oras-py's default
    assert other != made
    default = fileio.get_tmpdir()
    try:
        assert os.path.isdir(default)
    finally:
        os.rmdir(default)


def test_get_tmpfile(tmp_path: Path) -> None:
    path = fileio.get_tmpfile(tmp_path / "new", prefix="x/pre-", suffix=".tar.gz")
    assert os.path.isfile(path)
    assert os.path.getsize(path) == 0
    assert os.path.dirname(path) == str(tmp_path / "new")
    assert os.path.basename(path).startswith("pre-")
    assert path.endswith(".tar.gz")
    default = fileio.get_tmpfile()
    try:
        assert os.path.isfile(default)
    finally:
        os.unlink(default)


def test_write_and_read_json_atomically(tmp_path: Path) -> None:
    path = tmp_path / "doc.json"
    assert fileio.write_json({"a": [1, "é"]}, path) == str(path)
    assert fileio.read_json(path) == {"a": [1, "é"]}
    assert json.loads(path.read_text()) == {"a": [1, "é"]}
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    path.chmod(0o600)
    fileio.write_json({"b": 2}, str(path))
    assert fileio.read_json(str(path)) == {"b": 2}
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["doc.json"]


def test_failed_write_keeps_old_content(tmp_path: Path) -> None:
    path = tmp_path / "f.txt"
    fileio.write_file(path, "old")
    with pytest.raises(TypeError):
        fileio.write_file(path, b"bytes in text mode")
    assert path.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.txt"]


# In a child whose files may not grow past 64 KiB (SIGXFSZ ignored, so the kernel cuts the
# write short and then refuses with EFBIG, as a full disk does with ENOSPC).
_FULL_DISK_WRITE = """
import resource, signal, sys
from aioras.utils import fileio
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (65536, 65536))
try:
    fileio.write_file(sys.argv[1], b"n" * 200_000, "wb")
except OSError as error:
    print(type(error).__name__, error.errno)
"""


def test_write_file_on_a_full_disk_fails_typed_and_keeps_old_content(tmp_path: Path) -> None:
    path = tmp_path / "f.bin"
    path.write_bytes(b"old")
    env = {**os.environ, "PYTHONPATH": str(Path(aioras.__file__).parent.parent)}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    done = subprocess.run(
        [sys.executable, "-c", _FULL_DISK_WRITE, str(path)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.split() == ["StorageError", str(errno.EFBIG)]
    assert path.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.bin"]


def test_write_file_modes(tmp_path: Path) -> None:
    path = tmp_path / "f"
    fileio.write_file(str(path), "a")
    fileio.write_file(path, "b", mode="a")
    assert fileio.read_file(path) == "ab"
    fileio.write_file(path, b"\x00\x01", mode="wb")
    assert fileio.read_file(path, "rb") == b"\x00\x01"
    fileio.write_file(path, b"\x02", mode="ab", make_exec=True)
    assert fileio.read_file(str(path), mode="rb") == b"\x00\x01\x02"
    assert path.stat().st_mode & 0o111 == 0o111
    with pytest.raises(ValueError, match="mode"):
        fileio.write_file(path, "x", mode="r+")


def test_print_json_and_copyfile(tmp_path: Path) -> None:
    assert fileio.print_json({"a": 1}) == '{\n    "a": 1\n}'
    src, dst = tmp_path / "s", tmp_path / "d"
    src.write_text("one")
    assert fileio.copyfile(src, dst) == str(dst)
    src.write_text("two")
    fileio.copyfile(src, dst, force=False)
    assert dst.read_text() == "one"
    fileio.copyfile(src, dst)
    assert dst.read_text() == "two"


def test_recursive_find_and_read_in_chunks(tmp_path: Path) -> None:
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "x.lua").write_text("")
    (tmp_path / "a" / "b" / "y.lua").write_text("")
    (tmp_path / "z.txt").write_text("")
    found = sorted(fileio.recursive_find(tmp_path, r"\.lua$"))
    assert found == [str(tmp_path / "a" / "b" / "y.lua"), str(tmp_path / "a" / "x.lua")]
    assert len(list(fileio.recursive_find(str(tmp_path)))) == 3
    assert list(fileio.read_in_chunks(io.BytesIO(b"abcde"), 2)) == [b"ab", b"cd", b"e"]
    assert list(fileio.read_in_chunks(io.StringIO("abc"), 2)) == ["ab", "c"]


def test_readline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("  secret \nsecond\n"))
    assert fileio.readline() == "secret"


@pytest.mark.parametrize(
    ("ref", "path", "content"),
    [
        ("artifact.txt", "artifact.txt", None),
        (
            "path/to/config:application/vnd.oci.image.config.v1+json",
            "path/to/config",
            "application/vnd.oci.image.config.v1+json",
        ),
        ("/dev/null:application/vnd.x+json", "/dev/null", "application/vnd.x+json"),
        ("C:\\myconfig", "C:\\myconfig", None),
        ("C:\\myconfig:application/vnd.x+json", "C:\\myconfig", "application/vnd.x+json"),
        (
            "C:/dir/f.tar:application/vnd.oci.image.layer.v1.tar",
            "C:/dir/f.tar",
            ("application/vnd.oci.image.layer.v1.tar"),
        ),
        ("c:", "c:", None),
        ("file:", "file", None),
        ("a:b:text/plain", "a:b", "text/plain"),
        ("name:application/vnd.cyclonedx+json", "name", "application/vnd.cyclonedx+json"),
    ],
)
def test_split_path_and_content(ref: str, path: str, content: str | None) -> None:
    result = fileio.split_path_and_content(ref)
    assert result == fileio.PathAndOptionalContent(path, content)
    assert (result.path, result.content) == (path, content)


def test_split_path_existing_file_with_colon(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    Path("odd:name").write_text("")
    assert fileio.split_path_and_content("odd:name") == ("odd:name", None)


@pytest.mark.parametrize(
    ("url", "params", "expected"),
    [
        (
            "https://r.io/v2/a/blobs/uploads/",
            {"digest": "sha256:ab"},
            ("https://r.io/v2/a/blobs/uploads/?digest=sha256%3Aab"),
        ),
        (
            "https://r.io/u?_state=x%2By&a=1",
            {"digest": "d"},
            "https://r.io/u?_state=x%2By&a=1&digest=d",
        ),
        ("https://r.io/u?n=1&last=a", {"n": 5}, "https://r.io/u?last=a&n=5"),
    ],
)
def test_append_url_params(url: str, params: dict[str, str | int], expected: str) -> None:
    assert fileio.append_url_params(url, params) == expected
