"""File and path helpers: safe paths, temporary files, atomic writes, hashing, JSON.

Names and positional parameters follow oras-py's ``oras.utils`` so ported code keeps working;
what oras-py raised as a bare ``Exception`` is a typed error here.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import pathlib
import re
import shutil
import stat
import sys
import tempfile
from collections.abc import Generator, Iterator, Mapping
from typing import IO, Any, AnyStr, Literal, NamedTuple, overload

from .. import defaults
from .._files.atomic import replace_file
from .._files.paths import DRIVE_RE, safe_title
from .._http.urls import merge_query
from .._jsondoc import load_json
from ..exceptions import UnsafePathError

__all__ = [
    "PathAndOptionalContent",
    "append_url_params",
    "copyfile",
    "get_file_hash",
    "get_size",
    "get_tmpdir",
    "get_tmpfile",
    "mkdir_p",
    "print_json",
    "read_file",
    "read_in_chunks",
    "read_json",
    "readline",
    "recursive_find",
    "safe_title",
    "sanitize_path",
    "split_path_and_content",
    "workdir",
    "write_file",
    "write_json",
]

PathLike = str | os.PathLike[str]


@contextlib.contextmanager
def workdir(path: PathLike) -> Iterator[None]:
    """Change into ``path`` for the duration of the block, then back.

    The working directory is process-wide: do not use this while other threads rely on it.
    """
    here = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(here)


def sanitize_path(expected_dir: PathLike, path: PathLike) -> str:
    """Return the absolute, resolved ``path`` if it lies in ``expected_dir`` (or is it).

    Symlinks and ``..`` are resolved before the check, and ``~`` is expanded. Raises
    [`UnsafePathError`][aioras.exceptions.UnsafePathError] when the path resolves outside
    ``expected_dir``.
    """
    base = pathlib.Path(expected_dir).expanduser().resolve()
    resolved = pathlib.Path(path).expanduser().resolve()
    if resolved != base and base not in resolved.parents:
        # oras-py's wording, which callers match on.
        raise UnsafePathError(f"Filename {resolved} is not in {base} directory", path=str(path))
    return str(resolved)


def get_file_hash(path: PathLike, algorithm: str = "sha256") -> str:
    """Return the hex digest of a file, read in chunks; any ``hashlib`` algorithm works.

    Raises ``ValueError`` for an unknown algorithm and ``OSError`` when the file is unreadable.
    """
    hasher = hashlib.new(algorithm)
    buf = bytearray(defaults.io_chunk_size)
    view = memoryview(buf)
    with open(path, "rb", buffering=0) as fd:
        while n := fd.readinto(buf):
            hasher.update(view[:n])
    return hasher.hexdigest()


def get_size(path: PathLike) -> int:
    """Return the size of a file in bytes."""
    return os.stat(path).st_size


def mkdir_p(path: PathLike) -> None:
    """Create ``path`` and its parents; an existing directory is fine.

    Raises ``FileExistsError`` when ``path`` exists and is not a directory.
    """
    os.makedirs(path, exist_ok=True)


def get_tmpdir(tmpdir: PathLike | None = None, prefix: str = "", create: bool = True) -> str:
    """Return a new, uniquely named directory path under ``tmpdir`` (default: system temp).

    The name starts with ``prefix`` (default ``oras-tmp``, as in oras-py). With ``create``
    (the default) the directory is created, private to the user; without, only a fresh name
    is returned.
    """
    parent = os.fspath(tmpdir) if tmpdir else tempfile.gettempdir()
    path = tempfile.mkdtemp(prefix=f"{prefix or 'oras-tmp'}.", dir=parent)
    if not create:
        os.rmdir(path)
    return path


def get_tmpfile(tmpdir: PathLike | None = None, prefix: str = "", suffix: str = "") -> str:
    """Create an empty temporary file and return its path; the caller removes it.

    It goes in ``tmpdir`` when given (created if missing), else the system temp directory.
    """
    if tmpdir:
        os.makedirs(tmpdir, exist_ok=True)
    fd, path = tempfile.mkstemp(
        prefix=os.path.basename(prefix) or "aioras-", suffix=suffix, dir=tmpdir or None
    )
    os.close(fd)
    return path


def recursive_find(base: PathLike, pattern: str | None = None) -> Generator[str, None, None]:
    """Yield the absolute paths of files under ``base`` whose path matches regex ``pattern``."""
    regex = re.compile(pattern) if pattern else None
    for root, _dirs, files in os.walk(base):
        for name in sorted(files):
            path = os.path.abspath(os.path.join(root, name))
            if regex is None or regex.search(path):
                yield path


def copyfile(source: PathLike, destination: PathLike, force: bool = True) -> str:
    """Copy a file's content; an existing ``destination`` is kept unless ``force``."""
    destination = os.fspath(destination)
    if os.path.exists(destination) and not force:
        return destination
    shutil.copyfile(source, destination)
    return destination


def read_in_chunks(
    fd: IO[AnyStr], chunk_size: int = defaults.io_chunk_size
) -> Generator[AnyStr, None, None]:
    """Yield successive chunks of an open file until its end."""
    while chunk := fd.read(chunk_size):
        yield chunk


def write_file(
    filename: PathLike, content: str | bytes, mode: str = "w", make_exec: bool = False
) -> str:
    """Write ``content`` to ``filename`` and return the filename.

    Modes ``"w"``/``"wb"`` replace the file atomically (temporary file + rename); ``"a"``/``"ab"``
    append in place. ``make_exec`` adds execute permission for user, group and others.
    Raises ``ValueError`` for another mode and, in modes ``"w"``/``"wb"``,
    [`StorageError`][aioras.exceptions.StorageError] (an ``OSError``) when the content cannot be
    written whole (a full disk), leaving ``filename`` as it was and no temporary file.
    """
    filename = os.fspath(filename)
    binary = "b" in mode
    if mode.replace("b", "") == "a":
        with open(filename, mode, encoding=None if binary else "utf-8") as fd:
            fd.write(content)
    elif mode.replace("b", "") == "w":
        if isinstance(content, str) == binary:  # as open(filename, mode).write refuses it
            kind = "a bytes-like object" if binary else "str"
            raise TypeError(f"write_file mode {mode!r} takes {kind}, not {type(content).__name__}")
        replace_file(filename, content)
    else:
        raise ValueError(f"write_file mode must be 'w', 'wb', 'a' or 'ab', not {mode!r}")
    if make_exec:
        st = os.stat(filename)
        os.chmod(filename, st.st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return filename


def print_json(json_obj: Any) -> str:
    """Return ``json_obj`` as indented JSON text (oras-py's name; nothing is printed)."""
    return json.dumps(json_obj, indent=4, separators=(",", ": "))


def write_json(json_obj: Any, filename: PathLike, mode: str = "w") -> str:
    """Write ``json_obj`` as indented JSON to ``filename`` (atomically for mode ``"w"``)."""
    return write_file(filename, print_json(json_obj), mode)


@overload
def read_file(filename: PathLike, mode: Literal["r"] = ...) -> str: ...
@overload
def read_file(filename: PathLike, mode: Literal["rb"]) -> bytes: ...
def read_file(filename: PathLike, mode: str = "r") -> str | bytes:
    """Return the whole content of a small file, as text (UTF-8) or, with ``"rb"``, bytes."""
    if mode == "rb":
        with open(filename, "rb") as fd:
            return fd.read()
    with open(filename, encoding="utf-8") as fd:
        return fd.read()


def read_json(filename: PathLike, mode: str = "r") -> Any:
    """Parse a JSON file; raises ``ValueError`` when it is not JSON or nested too deeply."""
    with open(filename, "rb") as fd:
        return load_json(fd.read())


def readline() -> str:
    """Read one line from standard input, without surrounding whitespace (for passwords)."""
    return sys.stdin.readline().strip()


class PathAndOptionalContent(NamedTuple):
    """A path and the media type (``content``) that may follow it after a colon."""

    path: str
    content: str | None = None


def split_path_and_content(ref: str) -> PathAndOptionalContent:
    """Split oras's ``path[:mediaType]`` syntax.

    The media type follows the last colon, so media types such as
    ``application/vnd.oci.image.config.v1+json`` and paths holding colons both work. A leading
    Windows drive (``C:\\x``, ``C:/x``) is part of the path on every platform, and a string
    naming an existing file is taken whole. An empty media type (``"file:"``) counts as none.
    """
    if ":" not in ref or os.path.exists(ref):
        return PathAndOptionalContent(ref, None)
    drive = 2 if DRIVE_RE.match(ref) else 0
    colon = ref.rfind(":")
    if colon < drive:
        return PathAndOptionalContent(ref, None)
    return PathAndOptionalContent(ref[:colon], ref[colon + 1 :] or None)


def append_url_params(url: str, params: Mapping[str, str | int]) -> str:
    """Return ``url`` with ``params`` merged into its query, replacing keys already there."""
    return merge_query(url, {key: str(value) for key, value in params.items()})
