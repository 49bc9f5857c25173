"""Content digests: parsing, streaming hashers and verification (sha256 and sha512).

A digest is ``<algorithm>:<encoded>``; aioras verifies ``sha256`` (64 lowercase hex) and
``sha512`` (128 lowercase hex), the two algorithms the image-spec registers.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
from typing import IO

import anyio

from . import defaults
from .exceptions import DigestMismatch, InvalidDigest, SizeMismatch

__all__ = [
    "ALGORITHMS",
    "Hasher",
    "Verifier",
    "digest_bytes",
    "digest_file",
    "digest_file_sync",
    "parse_digest",
    "validate_digest",
    "verify_bytes",
]

ALGORITHMS: dict[str, int] = {"sha256": 64, "sha512": 128}
# The image-spec's general digest grammar; registered algorithms are checked more tightly below.
_LOWER_HEX = re.compile("[0-9a-f]+")
_DIGEST_RE = re.compile(r"^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$")


def parse_digest(digest: str) -> tuple[str, str]:
    """Split a digest into ``(algorithm, hex)``.

    Raises [`InvalidDigest`][aioras.exceptions.InvalidDigest] when it is malformed or its algorithm
    is not one aioras can verify.
    """
    if not isinstance(digest, str) or not _DIGEST_RE.match(digest):
        raise InvalidDigest(f"malformed digest {digest!r}", value=str(digest))
    algorithm, encoded = digest.split(":", 1)
    length = ALGORITHMS.get(algorithm)
    if length is None:
        raise InvalidDigest(
            f"unsupported digest algorithm {algorithm!r} (use sha256 or sha512)", value=digest
        )
    if len(encoded) != length or not _LOWER_HEX.fullmatch(encoded):
        raise InvalidDigest(
            f"{algorithm} digest must be {length} lowercase hex characters: {digest!r}",
            value=digest,
        )
    return algorithm, encoded


def validate_digest(digest: str) -> str:
    """Return ``digest`` unchanged if it is valid; raise
    [`InvalidDigest`][aioras.exceptions.InvalidDigest] otherwise."""
    parse_digest(digest)
    return digest


class Hasher:
    """An incremental hasher that also counts bytes: ``update`` as data streams by."""

    __slots__ = ("_h", "algorithm", "size")

    def __init__(self, algorithm: str = "sha256") -> None:
        if algorithm not in ALGORITHMS:
            raise InvalidDigest(f"unsupported digest algorithm {algorithm!r}", value=algorithm)
        self.algorithm = algorithm
        self._h = hashlib.new(algorithm)
        self.size = 0

    def update(self, data: bytes | bytearray | memoryview) -> None:
        """Feed the next piece of content."""
        self._h.update(data)
        self.size += len(data)

    def copy(self) -> Hasher:
        """An independent hasher in the same state (to continue two ways from here)."""
        clone = Hasher.__new__(Hasher)
        clone.algorithm = self.algorithm
        clone._h = self._h.copy()
        clone.size = self.size
        return clone

    def resume_from(self, other: Hasher) -> None:
        """Continue from ``other``'s state, as if fed what it was fed (same algorithm).

        For content written to several files from one buffer, hashed once: each file's
        verifier takes that hash as its own.
        """
        if other.algorithm != self.algorithm:
            raise ValueError(f"cannot resume a {self.algorithm} hash from {other.algorithm}")
        self._h = other._h.copy()
        self.size = other.size

    @property
    def digest(self) -> str:
        """The digest of everything fed so far, as ``<algorithm>:<hex>``."""
        return f"{self.algorithm}:{self._h.hexdigest()}"


class Verifier(Hasher):
    """A `Hasher` that checks the result against an expected digest and size."""

    __slots__ = ("expected_digest", "expected_size")

    def __init__(self, expected_digest: str, expected_size: int | None = None) -> None:
        algorithm, _ = parse_digest(expected_digest)
        super().__init__(algorithm)
        self.expected_digest = expected_digest
        self.expected_size = expected_size

    def verify(self, what: str = "content") -> None:
        """Raise [`SizeMismatch`][aioras.exceptions.SizeMismatch] or
        [`DigestMismatch`][aioras.exceptions.DigestMismatch] unless the content matches."""
        if self.expected_size is not None and self.size != self.expected_size:
            raise SizeMismatch(expected=self.expected_size, actual=self.size, what=what)
        if self.digest != self.expected_digest:
            raise DigestMismatch(expected=self.expected_digest, actual=self.digest, what=what)


def digest_bytes(data: bytes, algorithm: str = "sha256") -> str:
    """Return the digest of ``data``."""
    h = Hasher(algorithm)
    h.update(data)
    return h.digest


def _hash_stream(fd: IO[bytes], algorithm: str, chunk_size: int) -> tuple[str, int]:
    h = Hasher(algorithm)
    # readinto a reused buffer: no allocation per chunk, and hashlib releases the GIL on it.
    buf = bytearray(chunk_size)
    view = memoryview(buf)
    while n := fd.readinto(buf):  # type: ignore[attr-defined]
        h.update(view[:n])
    return h.digest, h.size


def digest_file_sync(
    path: str | os.PathLike[str] | int,
    algorithm: str = "sha256",
    *,
    chunk_size: int = defaults.io_chunk_size,
) -> tuple[str, int]:
    """Hash a file in constant memory; return ``(digest, size)``.

    ``path`` may be an open descriptor (an ``int``): the file is hashed from its first
    byte, and the descriptor is left open (at the file's end).
    """
    if isinstance(path, int):
        with open(path, "rb", buffering=0, closefd=False) as fd:
            fd.seek(0)
            return _hash_stream(fd, algorithm, chunk_size)
    with open(path, "rb", buffering=0) as fd:
        return _hash_stream(fd, algorithm, chunk_size)


async def digest_file(
    path: str | os.PathLike[str],
    algorithm: str = "sha256",
    *,
    chunk_size: int = defaults.io_chunk_size,
) -> tuple[str, int]:
    """Hash a file in a worker thread; return ``(digest, size)``.

    One thread call for the whole file: per-chunk hops through aiofiles cost more than the
    hashing itself, and hashlib releases the GIL so several files hash in parallel.
    """
    return await anyio.to_thread.run_sync(
        functools.partial(digest_file_sync, path, algorithm, chunk_size=chunk_size)
    )


def verify_bytes(data: bytes, expected_digest: str, *, what: str = "content") -> None:
    """Raise [`DigestMismatch`][aioras.exceptions.DigestMismatch] unless ``data`` hashes to
    ``expected_digest``."""
    algorithm, _ = parse_digest(expected_digest)
    actual = digest_bytes(data, algorithm)
    if actual != expected_digest:
        raise DigestMismatch(expected=expected_digest, actual=actual, what=what)
